"""Shipping (邮寄) and self-pickup (自提) of written keys."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from certdesk.accounts.models import User
from certdesk.core.errors import DomainError
from certdesk.fulfilment.models import Pickup, Shipment
from certdesk.notifications.models import NotificationEvent
from certdesk.orders.models import DeliveryMethod, Order, OrderStatus
from certdesk.orders.notify import order_notify
from certdesk.orders.services import order_lock, order_transition

PICKUP_MAX_ATTEMPTS = 5


def _pickup_hmac(order: Order, code: str) -> str:
    message = f"pickup:{order.number}:{code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


@transaction.atomic
def shipment_create(*, order: Order, issuer: User, courier: str, tracking_no: str) -> Shipment:
    courier, tracking_no = courier.strip(), tracking_no.strip().upper()
    if not courier or not tracking_no:
        raise DomainError(_("请填写快递公司和快递单号。"), code="tracking_required")
    locked = order_lock(order_id=order.pk)
    if locked.delivery_method != DeliveryMethod.MAIL:
        raise DomainError(_("该订单为自提，不能邮寄；如需改为邮寄请办理改派。"), code="not_mail")
    try:
        with transaction.atomic():
            shipment = Shipment.objects.create(
                order=locked,
                courier=courier,
                tracking_no=tracking_no,
                recipient_name=locked.recipient_name,
                recipient_phone=locked.recipient_phone,
                address=locked.shipping_address,
                shipped_by=issuer,
                shipped_at=timezone.now(),
            )
    except IntegrityError:
        raise DomainError(
            _("快递单号 %(n)s 已被其他订单使用，请核对。") % {"n": tracking_no}, code="tracking_taken"
        ) from None
    order_transition(
        order=locked,
        to_status=OrderStatus.SHIPPED,
        actor=issuer,
        kind="shipped",
        note=f"{courier} {tracking_no}",
        data={"courier": courier, "tracking_no": tracking_no},
        expected_from=frozenset({OrderStatus.TO_SHIP}),
    )
    return shipment


@transaction.atomic
def pickup_ready(*, order: Order, issuer: User) -> str:
    """Move to 待自提 and text the customer a pickup code; returns the code (shown once to staff)."""
    locked = order_lock(order_id=order.pk)
    if locked.delivery_method != DeliveryMethod.PICKUP:
        raise DomainError(_("该订单为邮寄，请填写快递单号发货。"), code="not_pickup")
    code = f"{secrets.randbelow(10**6):06d}"
    Pickup.objects.update_or_create(
        order=locked,
        defaults={"code_hmac": _pickup_hmac(locked, code), "ready_at": timezone.now(), "failed_attempts": 0},
    )
    order_transition(
        order=locked,
        to_status=OrderStatus.AWAITING_PICKUP,
        actor=issuer,
        kind="ready_for_pickup",
        expected_from=frozenset({OrderStatus.TO_SHIP}),
    )
    # The code travels only in the message, never in the event history or the audit log.
    order_notify(
        order=locked,
        event=NotificationEvent.READY_TO_PICKUP,
        occurrence=str(int(Pickup.objects.get(order=locked).ready_at.timestamp())),
        extra={"pickup_code": code, "pickup_address": settings.PICKUP_ADDRESS},
    )
    return code


def pickup_hand_over(*, order: Order, staff: User, code: str) -> Order:
    """At the counter: the right code completes the order; wrong codes are counted."""
    with transaction.atomic():
        locked = order_lock(order_id=order.pk)
        pickup = Pickup.objects.select_for_update().filter(order=locked).first()
        if locked.status != OrderStatus.AWAITING_PICKUP or pickup is None:
            raise DomainError(_("该订单不在待自提状态。"), code="not_awaiting_pickup")
        if pickup.failed_attempts >= PICKUP_MAX_ATTEMPTS:
            raise DomainError(_("取件码错误次数过多，请核实身份后重新发送取件码。"), code="pickup_locked")
        right = hmac.compare_digest(_pickup_hmac(locked, (code or "").strip()), pickup.code_hmac)
        if right:
            pickup.handed_over_by = staff
            pickup.handed_over_at = timezone.now()
            pickup.save(update_fields=["handed_over_by", "handed_over_at"])
            return order_transition(
                order=locked,
                to_status=OrderStatus.COMPLETED,
                actor=staff,
                kind="picked_up",
                expected_from=frozenset({OrderStatus.AWAITING_PICKUP}),
            )
        pickup.failed_attempts += 1
        pickup.save(update_fields=["failed_attempts"])
    raise DomainError(_("取件码不正确。"), code="pickup_code_wrong")


@transaction.atomic
def shipment_confirm_receipt(*, order: Order, customer: User) -> Order:
    locked = order_lock(order_id=order.pk)
    if locked.owner_id != customer.pk:
        raise DomainError(_("订单不存在。"), code="not_found")
    Shipment.objects.filter(order=locked, received_at__isnull=True).update(received_at=timezone.now())
    return order_transition(
        order=locked,
        to_status=OrderStatus.COMPLETED,
        actor=customer,
        kind="received",
        expected_from=frozenset({OrderStatus.SHIPPED}),
    )


def shipments_auto_complete(*, now: datetime.datetime | None = None) -> int:
    """Parcels shipped long enough ago count as received (SHIPMENT_AUTO_COMPLETE_DAYS)."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(days=settings.SHIPMENT_AUTO_COMPLETE_DAYS)
    done = 0
    due = Order.objects.filter(status=OrderStatus.SHIPPED, shipments__shipped_at__lte=cutoff).distinct()
    for order in due.iterator():
        with transaction.atomic():
            locked = order_lock(order_id=order.pk)
            if locked.status != OrderStatus.SHIPPED:
                continue
            newest = Shipment.objects.filter(order=locked).order_by("-shipped_at").first()
            if newest is None or newest.shipped_at > cutoff:
                continue
            order_transition(
                order=locked,
                to_status=OrderStatus.COMPLETED,
                actor=None,
                kind="auto_received",
                note=_("发货 %(d)d 天后自动确认收货") % {"d": settings.SHIPMENT_AUTO_COMPLETE_DAYS},
            )
            done += 1
    return done


@transaction.atomic
def remote_assistance_complete(*, order: Order, staff: User, note: str) -> Order:
    """客服 closes a 远程协助 ticket once the key is unlocked over QQ remote assistance."""
    if not note.strip():
        raise DomainError(_("请填写处理说明（例如：已远程重置PIN码）。"), code="note_required")
    return order_transition(
        order=order,
        to_status=OrderStatus.COMPLETED,
        actor=staff,
        kind="assistance_done",
        note=note.strip()[:500],
        expected_from=frozenset({OrderStatus.REMOTE_ASSISTANCE}),
    )
