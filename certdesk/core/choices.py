"""Choices shared by the RA apps."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class BusinessType(models.TextChoices):
    NEW = "new", _("证书新办")
    RENEW = "renew", _("证书更新")
    CHANGE = "change", _("证书变更")
    REISSUE = "reissue", _("证书补办")
    UNLOCK = "unlock", _("在线解锁")
    REVOKE = "revoke", _("证书注销")
    REDISPATCH = "redispatch", _("改派")


# The manual's one-line description on each home-page tile.
BUSINESS_TYPE_DESCRIPTIONS = {
    BusinessType.NEW: _("用户首次申请证书时，办理此项业务"),
    BusinessType.RENEW: _("更新延长证书有效期时，办理此项业务"),
    BusinessType.CHANGE: _("证书信息发生变化时，办理此业务"),
    BusinessType.REISSUE: _("用户证书丢失时，需要办理此项业务"),
    BusinessType.UNLOCK: _("用户key被锁时，需要办理此项业务"),
    BusinessType.REVOKE: _("用户key丢失时，需要办理此项业务"),
    BusinessType.REDISPATCH: _("邮寄地址改派"),
}
