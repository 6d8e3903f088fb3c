"""Starting an order that acts on an existing key or order: 证书更新, 证书变更,
证书补办, 在线解锁, 证书注销 (from the key) and 改派 (from an order).

The customer identifies the key by its SN (read by the agent or typed from the
label) and the organisation's USCC. Personal data is carried over only from the
customer's own earlier order; otherwise just what the certificate itself shows
(organisation name and USCC) is filled in.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from certdesk.accounts.models import User
from certdesk.core.choices import BusinessType
from certdesk.core.errors import DomainError
from certdesk.core.validators import check_uscc
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.selectors import info_field_shown
from certdesk.orders.services import OrderInfo, order_create
from certdesk.ra.models import CertificateRole, OrderCertificate
from certdesk.tokens.models import UsbKeyStatus
from certdesk.tokens.selectors import usb_key_get

KEY_TYPES = frozenset(
    {BusinessType.RENEW, BusinessType.CHANGE, BusinessType.REISSUE, BusinessType.UNLOCK, BusinessType.REVOKE}
)
_NEEDS_CERTIFICATE = frozenset({BusinessType.RENEW, BusinessType.CHANGE, BusinessType.REVOKE})
_FINAL = (OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.REFUNDED)
REDISPATCHABLE = (OrderStatus.TO_SHIP, OrderStatus.SHIPPED, OrderStatus.AWAITING_PICKUP)
_CARRIED_ALWAYS = ("cert_org_name", "cert_uscc", "org_name", "org_uscc")


def _carry_over(*, source: Order, target: Order, owner: User) -> None:
    names = OrderInfo.field_names() if source.owner_id == owner.pk else list(_CARRIED_ALWAYS)
    for name in names:
        if name != "revoke_reason" and info_field_shown(business_type=target.business_type, name=name):
            setattr(target, name, getattr(source, name))
    target.save()


def _open_order_on_key(key_sn: str) -> Order | None:
    return (
        Order.objects.filter(key_sn=key_sn, business_type__in=KEY_TYPES)
        .exclude(status__in=_FINAL)
        .order_by("-created_at")
        .first()
    )


def current_certificate_on_key(*, key_sn: str) -> OrderCertificate | None:
    return (
        OrderCertificate.objects.select_related("order")
        .filter(key_sn=key_sn, role=CertificateRole.SIGN, status=OrderCertificate.Status.INSTALLED)
        .order_by("-installed_at", "-id")
        .first()
    )


def order_create_for_key(
    *, owner: User, business_type: BusinessType, key_sn: str, uscc: str, years: int | None = None
) -> Order:
    if business_type not in KEY_TYPES:
        raise DomainError(_("该业务不从 USB Key 开始办理。"), code="not_key_business")
    try:
        uscc = check_uscc(uscc)
    except ValidationError as error:
        raise DomainError(" ".join(error.messages), code="uscc_invalid") from None
    key_sn = key_sn.strip()
    key = usb_key_get(sn=key_sn)
    if key is None or key.owner_uscc != uscc:
        raise DomainError(
            _("没有找到序列号为 %(sn)s、属于该统一社会信用代码单位的 USB Key，请核对 Key 背面的序列号。")
            % {"sn": key_sn},
            code="key_not_found",
        )
    if key.status not in (UsbKeyStatus.ISSUED, UsbKeyStatus.LOCKED):
        raise DomainError(
            _("该 USB Key 当前状态为“%(s)s”，不能办理此业务。") % {"s": key.get_status_display()}, code="key_unusable"
        )
    certificate = current_certificate_on_key(key_sn=key.sn)
    if business_type in _NEEDS_CERTIFICATE and certificate is None:
        raise DomainError(_("该 USB Key 中没有有效的证书，请办理证书新办或补办。"), code="no_certificate")
    busy = _open_order_on_key(key.sn)
    if busy is not None:
        raise DomainError(
            _("该 USB Key 已有办理中的%(t)s订单 %(n)s，请在“订单查询”中继续办理。")
            % {"t": busy.get_business_type_display(), "n": busy.number},
            code="key_busy",
        )
    source = (
        certificate.order
        if certificate is not None
        else (
            Order.objects.filter(key_sn=key.sn, business_type__in=[BusinessType.NEW, BusinessType.REISSUE])
            .order_by("-created_at")
            .first()
        )
    )
    if source is None:
        raise DomainError(_("没有找到该 USB Key 的办理记录，请联系客服。"), code="no_history")
    chosen_years = years if years is not None else source.years
    with transaction.atomic():
        order = order_create(
            owner=owner,
            business_type=business_type,
            certificate_type_id=source.certificate_type_id,
            years=chosen_years,
        )
        order.key_sn = key.sn
        order.previous_serial = certificate.serial or "" if certificate is not None else ""
        order.related_order = source
        _carry_over(source=source, target=order, owner=owner)
    return order


def order_create_redispatch(*, owner: User, original_number: str) -> Order:
    original = Order.objects.filter(number=original_number, owner=owner).first()
    if original is None:
        raise DomainError(_("订单不存在。"), code="not_found")
    if original.status not in REDISPATCHABLE or original.business_type not in (
        BusinessType.NEW,
        BusinessType.REISSUE,
        BusinessType.REDISPATCH,
    ):
        raise DomainError(
            _("只有待发货、已发货或待自提的订单可以改派，订单 %(n)s 当前为“%(s)s”。")
            % {"n": original.number, "s": original.get_status_display()},
            code="not_redispatchable",
        )
    busy = original.follow_ups.filter(business_type=BusinessType.REDISPATCH).exclude(status__in=_FINAL).first()
    if busy is not None:
        raise DomainError(_("该订单已有办理中的改派订单 %(n)s。") % {"n": busy.number}, code="redispatch_busy")
    with transaction.atomic():
        order = order_create(
            owner=owner,
            business_type=BusinessType.REDISPATCH,
            certificate_type_id=original.certificate_type_id,
            years=original.years,
        )
        order.related_order = original
        order.key_sn = original.key_sn
        _carry_over(source=original, target=order, owner=owner)
    return order
