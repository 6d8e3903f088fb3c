"""Review decisions. A reviewer claims an order, then approves or rejects it;
two decisions on one order cannot both happen (the order transition is
conditional on SUBMITTED under a row lock)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from certdesk.accounts.models import User
from certdesk.catalog.pricing import price_fen
from certdesk.core.choices import BusinessType
from certdesk.core.errors import DomainError, InvalidTransition
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.services import order_event_add, order_lock, order_transition
from certdesk.review.models import ReviewClaim
from certdesk.review.reasons import REJECT_REASONS

CLAIM_TTL = datetime.timedelta(minutes=30)
_DECIDABLE = frozenset({OrderStatus.SUBMITTED})


@dataclass(frozen=True, kw_only=True)
class RejectReason:
    target: str  # "field:<name>", "material:<code>" or "" for the order as a whole
    target_label: str
    code: str
    text: str = ""

    def as_dict(self) -> dict[str, str]:
        preset = REJECT_REASONS.get(self.code, "")
        reason = "；".join(part for part in (preset if self.code != "other" else "", self.text.strip()) if part)
        return {"target": self.target, "target_label": self.target_label, "code": self.code, "reason": reason}


def _claim_holder(order: Order, now: datetime.datetime) -> ReviewClaim | None:
    claim = ReviewClaim.objects.select_related("reviewer").filter(order=order).first()
    if claim is None or claim.claimed_at + CLAIM_TTL <= now:
        return None
    return claim


def _check_decidable(order: Order, reviewer: User, now: datetime.datetime) -> None:
    if order.status not in _DECIDABLE:
        raise InvalidTransition(
            _("该订单已被处理（当前状态：%(s)s），请刷新队列。") % {"s": order.get_status_display()},
            code="already_decided",
        )
    claim = _claim_holder(order, now)
    if claim is not None and claim.reviewer_id != reviewer.pk:
        raise DomainError(
            _("该订单已由 %(who)s 于 %(t)s 领取审核。")
            % {
                "who": claim.reviewer.name or claim.reviewer.mobile,
                "t": timezone.localtime(claim.claimed_at).strftime("%H:%M"),
            },
            code="claimed_by_other",
        )


@transaction.atomic
def review_claim(*, order: Order, reviewer: User) -> ReviewClaim:
    locked = order_lock(order_id=order.pk)
    now = timezone.now()
    _check_decidable(locked, reviewer, now)
    claim, _created = ReviewClaim.objects.update_or_create(
        order=locked, defaults={"reviewer": reviewer, "claimed_at": now}
    )
    order_event_add(order=locked, kind="review_claimed", actor=reviewer)
    return claim


@transaction.atomic
def review_release(*, order: Order, reviewer: User) -> None:
    locked = order_lock(order_id=order.pk)
    if ReviewClaim.objects.filter(order=locked, reviewer=reviewer).delete()[0]:
        order_event_add(order=locked, kind="review_released", actor=reviewer)


@transaction.atomic
def review_approve(*, order: Order, reviewer: User, note: str = "") -> Order:
    """Approve: to 待付款 with the catalogue price, or straight to paid when it costs nothing."""
    locked = order_lock(order_id=order.pk)
    _check_decidable(locked, reviewer, timezone.now())
    amount = price_fen(
        certificate_type=locked.certificate_type, business_type=BusinessType(locked.business_type), years=locked.years
    )
    ReviewClaim.objects.filter(order=locked).delete()
    return order_transition(
        order=locked,
        to_status=OrderStatus.AWAITING_PAYMENT if amount > 0 else OrderStatus.PAID,
        actor=reviewer,
        kind="approved",
        note=note,
        data={"amount_fen": amount},
        expected_from=_DECIDABLE,
        set_fields={"amount_fen": amount, "reject_reasons": []},
    )


@transaction.atomic
def review_reject(*, order: Order, reviewer: User, reasons: list[RejectReason]) -> Order:
    if not reasons:
        raise DomainError(_("请至少选择一条不通过的原因。"), code="reasons_required")
    unknown = [reason.code for reason in reasons if reason.code not in REJECT_REASONS]
    if unknown:
        raise DomainError(_("未知的原因代码：%(c)s") % {"c": ", ".join(unknown)}, code="unknown_reason")
    if any(reason.code == "other" and not reason.text.strip() for reason in reasons):
        raise DomainError(_("选择“其他”时请填写具体原因。"), code="reason_text_required")
    locked = order_lock(order_id=order.pk)
    _check_decidable(locked, reviewer, timezone.now())
    stored = [reason.as_dict() for reason in reasons]
    ReviewClaim.objects.filter(order=locked).delete()
    return order_transition(
        order=locked,
        to_status=OrderStatus.REJECTED,
        actor=reviewer,
        kind="rejected",
        note="；".join(f"{r['target_label']}：{r['reason']}" if r["target_label"] else r["reason"] for r in stored),
        data={"reasons": stored},
        expected_from=_DECIDABLE,
        set_fields={"reject_reasons": stored},
    )
