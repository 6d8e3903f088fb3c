from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    SMS = "sms", _("短信")
    EMAIL = "email", _("电子邮件")
    WECHAT = "wechat", _("微信公众号")


class DemoInboxMessage(models.Model):
    """What a console backend 'sent', kept only in demo mode for /demo/inbox/."""

    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=254, db_index=True)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("演示收件箱消息")
        verbose_name_plural = _("演示收件箱消息")
