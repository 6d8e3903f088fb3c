"""What happens next once an order is approved or paid, per business type
(DESIGN.md, 订单状态). Runs inside the transition's transaction, so an order
never rests in PAID when it should already be 待下载, 待解锁 or done."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from certdesk.accounts.models import User
from certdesk.core.choices import BusinessType
from certdesk.orders.models import Order, OrderEvent, OrderStatus, RevokeReason
from certdesk.orders.services import order_transition
from certdesk.pki.types import RevocationReason
from certdesk.ra.models import OrderCertificate
from certdesk.ra.services import ra_certificate_revoke
from certdesk.tokens.keymodels import key_unlock_method
from certdesk.tokens.models import UsbKeyStatus
from certdesk.tokens.selectors import usb_key_get
from certdesk.tokens.services import usb_key_mark_lost

_LIVE = (OrderCertificate.Status.ISSUED, OrderCertificate.Status.INSTALLED)


def _revoke_key_certificates(*, order: Order, key_sn: str, reason: RevocationReason, actor: User | None) -> int:
    serials = list(OrderCertificate.objects.filter(key_sn=key_sn, status__in=_LIVE).values_list("serial", flat=True))
    for serial in serials:
        if serial:
            ra_certificate_revoke(serial=serial, reason=reason, actor=actor)
    return len(serials)


def _mark_key_lost(key_sn: str, actor: User | None) -> None:
    key = usb_key_get(sn=key_sn)
    if key is not None and key.status in (UsbKeyStatus.ISSUED, UsbKeyStatus.LOCKED):
        usb_key_mark_lost(key=key, actor=actor.mobile if actor else "system")


def order_on_approved(*, order: Order, actor: User | None) -> None:
    """证书补办: the lost key's certificates are revoked as soon as the reviewer approves."""
    if order.business_type == BusinessType.REISSUE and order.key_sn:
        _revoke_key_certificates(order=order, key_sn=order.key_sn, reason=RevocationReason.KEY_COMPROMISE, actor=actor)
        _mark_key_lost(order.key_sn, actor)


def order_route_after_payment(*, order: Order, actor: User | None) -> None:
    business_type = BusinessType(order.business_type)
    if business_type in (BusinessType.RENEW, BusinessType.CHANGE):
        order_transition(order=order, to_status=OrderStatus.READY_TO_DOWNLOAD, actor=actor, kind="ready_to_download")
    elif business_type == BusinessType.UNLOCK:
        online = key_unlock_method(order.key_sn) == "online"
        order_transition(
            order=order,
            to_status=OrderStatus.READY_TO_UNLOCK if online else OrderStatus.REMOTE_ASSISTANCE,
            actor=actor,
            kind="ready_to_unlock" if online else "remote_assistance",
        )
    elif business_type == BusinessType.REVOKE:
        lost = order.revoke_reason == RevokeReason.KEY_LOST
        reason = RevocationReason.KEY_COMPROMISE if lost else RevocationReason.CESSATION_OF_OPERATION
        count = _revoke_key_certificates(order=order, key_sn=order.key_sn, reason=reason, actor=actor)
        if lost:
            _mark_key_lost(order.key_sn, actor)
        order_transition(
            order=order,
            to_status=OrderStatus.COMPLETED,
            actor=actor,
            kind="revoked",
            note=_("已注销 %(n)d 张证书（%(r)s）") % {"n": count, "r": reason.rfc_name},
        )
    elif business_type == BusinessType.REDISPATCH:
        order_transition(order=order, to_status=OrderStatus.TO_SHIP, actor=actor, kind="redispatch_ready")
        original = order.related_order
        if original is not None and original.status in (
            OrderStatus.TO_SHIP,
            OrderStatus.SHIPPED,
            OrderStatus.AWAITING_PICKUP,
        ):
            # The key now travels under the 改派 order; the original's delivery ends here.
            order_transition(
                order=original,
                to_status=OrderStatus.COMPLETED,
                actor=actor,
                kind="redispatched",
                note=_("由改派订单 %(n)s 重新发货") % {"n": order.number},
            )
    # 新办 and 补办 stay PAID until the issuance station writes the key.


def on_order_transitioned(sender: Any, *, order: Order, event: OrderEvent, actor: User | None, **_: Any) -> None:
    if event.kind == "approved":
        order_on_approved(order=order, actor=actor)
    if event.to_status == OrderStatus.PAID:
        order_route_after_payment(order=order, actor=actor)
