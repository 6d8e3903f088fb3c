"""Order writes. The only place an order's status changes.

Every transition locks the order row, checks the transition table, updates
with `WHERE status = <old>`, and writes an OrderEvent and an audit record in
the same transaction, so a transition either happens whole or not at all, and
two simultaneous attempts cannot both succeed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from typing import Any

from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from certdesk.accounts.models import User
from certdesk.audit.services import audit_log
from certdesk.catalog.selectors import certificate_type_get
from certdesk.core.choices import BusinessType
from certdesk.core.errors import DomainError, InvalidTransition
from certdesk.core.workdays import working_day_deadline
from certdesk.orders.models import Order, OrderEvent, OrderStatus
from certdesk.orders.notify import order_notify_transition
from certdesk.orders.selectors import order_missing_items
from certdesk.orders.transitions import CANCELLABLE, EDITABLE, allowed_next

# Pinyin initials of each business type open the order number: XB2611270412345.
NUMBER_PREFIX = {
    BusinessType.NEW: "XB",
    BusinessType.RENEW: "GX",
    BusinessType.CHANGE: "BG",
    BusinessType.REISSUE: "BB",
    BusinessType.UNLOCK: "JS",
    BusinessType.REVOKE: "ZX",
    BusinessType.REDISPATCH: "GP",
}


def _actor_label(actor: User | None) -> str:
    return actor.mobile if actor is not None else "system"


def order_lock(*, order_id: int) -> Order:
    """The one place an order row is locked; call inside a transaction."""
    return Order.objects.select_for_update().get(pk=order_id)


def order_event_add(
    *,
    order: Order,
    kind: str,
    actor: User | None,
    note: str = "",
    data: dict[str, Any] | None = None,
    from_status: str = "",
    to_status: str = "",
) -> OrderEvent:
    event = OrderEvent.objects.create(
        order=order, kind=kind, actor=actor, note=note, data=data or {}, from_status=from_status, to_status=to_status
    )
    audit_log(
        action=f"order.{kind}",
        actor=_actor_label(actor),
        object_type="order",
        object_id=order.number,
        data={"from": from_status, "to": to_status, "note": note, **(data or {})},
    )
    return event


@transaction.atomic
def order_transition(
    *,
    order: Order,
    to_status: OrderStatus,
    actor: User | None,
    kind: str,
    note: str = "",
    data: dict[str, Any] | None = None,
    expected_from: frozenset[str] | None = None,
    set_fields: dict[str, Any] | None = None,
) -> Order:
    """Move `order` to `to_status` or raise InvalidTransition; returns the fresh row."""
    locked = order_lock(order_id=order.pk)
    from_status = locked.status
    if expected_from is not None and from_status not in expected_from:
        raise InvalidTransition(
            _("订单当前状态为“%(s)s”，不能执行此操作。") % {"s": OrderStatus(from_status).label},
            code="wrong_status",
        )
    if to_status not in allowed_next(business_type=locked.business_type, status=from_status):
        raise InvalidTransition(
            _("订单当前状态为“%(a)s”，不能变为“%(b)s”。")
            % {"a": OrderStatus(from_status).label, "b": OrderStatus(to_status).label},
            code="invalid_transition",
        )
    changes = {"status": to_status, "updated_at": timezone.now(), **(set_fields or {})}
    updated = Order.objects.filter(pk=locked.pk, status=from_status).update(**changes)
    if updated != 1:  # pragma: no cover - the row lock makes this unreachable; kept as a guard
        raise InvalidTransition(_("订单状态已被他人更改，请刷新后重试。"), code="concurrent_change")
    locked.refresh_from_db()
    event_row = order_event_add(
        order=locked, kind=kind, actor=actor, note=note, data=data, from_status=from_status, to_status=to_status
    )
    order_notify_transition(order=locked, event_row=event_row)
    # Receivers continue the order in the same transaction (fulfilment routes paid orders on).
    order_transitioned.send(sender=Order, order=locked, event=event_row, actor=actor)
    locked.refresh_from_db()
    return locked


# Sent inside `order_transition`'s transaction after each status change.
order_transitioned = Signal()


def _new_number(business_type: str) -> str:
    today = timezone.localdate().strftime("%y%m%d")
    return f"{NUMBER_PREFIX[BusinessType(business_type)]}{today}{secrets.randbelow(10**7):07d}"


def order_create(*, owner: User, business_type: BusinessType, certificate_type_id: int, years: int) -> Order:
    certificate_type = certificate_type_get(certificate_type_id=certificate_type_id, business_type=business_type)
    if certificate_type is None:
        raise DomainError(_("所选证书类别不存在或暂不办理此业务，请重新选择。"), code="certificate_type_unavailable")
    if business_type in (BusinessType.NEW, BusinessType.RENEW) and years not in certificate_type.validity_years:
        # (renewals choose their years too; the other business types carry the original order's)
        raise DomainError(_("请选择该证书类别提供的有效期。"), code="years_unavailable")
    for _attempt in range(5):
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    number=_new_number(business_type),
                    owner=owner,
                    business_type=business_type,
                    certificate_type=certificate_type,
                    years=years,
                    invoice_email=owner.email,
                )
                order_event_add(order=order, kind="created", actor=owner, to_status=OrderStatus.DRAFT)
                return order
        except IntegrityError:
            continue  # order number collision; draw another
    raise DomainError(_("系统繁忙，请稍后再试。"), code="number_exhausted")  # pragma: no cover


@dataclass(frozen=True, kw_only=True)
class OrderInfo:
    """What the customer enters at 录入信息; validated by the form before it gets here."""

    cert_org_name: str = ""
    cert_uscc: str = ""
    org_name: str = ""
    org_uscc: str = ""
    legal_rep_name: str = ""
    legal_rep_id_number: str = ""
    legal_rep_mobile: str = ""
    office_phone: str = ""
    website: str = ""
    social_security_no: str = ""
    invoice_type: str = ""
    invoice_title: str = ""
    invoice_taxpayer_id: str = ""
    invoice_address: str = ""
    invoice_phone: str = ""
    invoice_bank: str = ""
    invoice_account: str = ""
    invoice_email: str = ""
    agent_name: str = ""
    agent_id_number: str = ""
    agent_mobile: str = ""
    agent_email: str = ""
    agent_wechat: str = ""
    agent_qq: str = ""
    delivery_method: str = ""
    recipient_name: str = ""
    recipient_phone: str = ""
    shipping_address: str = ""
    revoke_reason: str = ""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def order_lock_editable(order: Order) -> Order:
    locked = order_lock(order_id=order.pk)
    if locked.status not in EDITABLE:
        raise InvalidTransition(
            _("订单已提交（状态：%(s)s），不能再修改。") % {"s": OrderStatus(locked.status).label}, code="not_editable"
        )
    return locked


@transaction.atomic
def order_info_save(*, order: Order, actor: User, info: OrderInfo, only: list[str] | None = None) -> Order:
    """Save what was entered (all fields, or just `only` when keeping a partial draft)."""
    locked = order_lock_editable(order)
    names = only if only is not None else OrderInfo.field_names()
    changed = [name for name in names if getattr(locked, name) != getattr(info, name)]
    for name in changed:
        setattr(locked, name, getattr(info, name))
    if changed:
        locked.save(update_fields=[*changed, "updated_at"])
        order_event_add(order=locked, kind="info_saved", actor=actor, data={"fields": changed})
    return locked


@transaction.atomic
def order_agreement_accept(*, order: Order, actor: User) -> Order:
    locked = order_lock_editable(order)
    if locked.agreement_accepted_at is None:
        locked.agreement_accepted_at = timezone.now()
        locked.save(update_fields=["agreement_accepted_at", "updated_at"])
        order_event_add(order=locked, kind="agreement_accepted", actor=actor)
    return locked


@transaction.atomic
def order_submit(*, order: Order, actor: User) -> Order:
    locked = order_lock_editable(order)
    missing = order_missing_items(order=locked)
    if missing:
        raise DomainError(_("还不能提交：") + "；".join(missing) + "。", code="incomplete")
    resubmit = locked.status == OrderStatus.REJECTED
    now = timezone.now()
    return order_transition(
        order=locked,
        to_status=OrderStatus.SUBMITTED,
        actor=actor,
        kind="resubmitted" if resubmit else "submitted",
        set_fields={"submitted_at": now, "review_due_at": working_day_deadline(now)},
    )


# Sent inside the cancelling transaction, with the order row locked, before the
# status changes: receivers (payments) close what hangs off the order, or raise a
# DomainError to refuse. Keeps orders from importing the apps built on it.
order_cancelling = Signal()


@transaction.atomic
def order_cancel(*, order: Order, actor: User, reason: str = "") -> Order:
    locked = order_lock(order_id=order.pk)
    if locked.status in CANCELLABLE:
        order_cancelling.send(sender=Order, order=locked, actor=actor)
    return order_transition(
        order=locked,
        to_status=OrderStatus.CANCELLED,
        actor=actor,
        kind="cancelled",
        note=reason,
        expected_from=CANCELLABLE,
    )
