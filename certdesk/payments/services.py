"""Payment writes: start a QR payment, receive callbacks, apply what a gateway
reports, close, refund, and the periodic catch-up.

Every change to a Payment or Refund happens under the order row lock
(`certdesk.orders.services.order_lock`, the one place rows are locked) in the
same transaction as the order transition, its OrderEvent and audit record, so
duplicate or concurrent callbacks change an order once. Gateway calls (the
network) run outside those transactions — except inside the cancel signal,
whose contract is to close or refuse within the cancelling transaction.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from certdesk.accounts.models import User
from certdesk.audit.services import audit_log
from certdesk.core.errors import DomainError, InvalidTransition, PermissionDenied
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.services import order_event_add, order_lock, order_transition
from certdesk.orders.transitions import allowed_next
from certdesk.payments import conf
from certdesk.payments.amounts import fen_to_yuan
from certdesk.payments.errors import CallbackRejected, GatewayUnavailable
from certdesk.payments.gateways import LABELS, gateway_client, gateway_get
from certdesk.payments.gateways.base import (
    CallbackReply,
    GatewayTransaction,
    RefundOutcome,
    RefundResult,
    TxnStatus,
)
from certdesk.payments.models import (
    PAID_STATUSES,
    Payment,
    PaymentCallback,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from certdesk.payments.selectors import order_purpose, payments_open, refunds_processing

log = logging.getLogger("certdesk.payments")

# A QR code is reused while it has at least this long to live.
REUSE_MARGIN = datetime.timedelta(minutes=1)
# A payment whose QR code another request is still fetching from the gateway.
PREPARING_GRACE = datetime.timedelta(seconds=30)
# The periodic query leaves new payments to their callback for this long.
QUERY_AFTER = datetime.timedelta(minutes=1)
_MAX_BODY_LOGGED = 65536


def _actor_label(actor: User | None) -> str:
    return actor.mobile if actor is not None else "system"


# ----------------------------------------------------------------------------- start


def _merchant_no(order: Order) -> str:
    """A merchant order number never used before: the order number and a sequence (XB2611270412345P01)."""
    seq = Payment.objects.filter(order=order).count() + 1
    while Payment.objects.filter(merchant_no=f"{order.number}P{seq:02d}").exists():
        seq += 1
    return f"{order.number}P{seq:02d}"


@dataclass(frozen=True)
class _Reservation:
    payment: Payment
    create_at_gateway: bool
    stale: list[Payment]


@transaction.atomic
def _payment_reserve(*, order: Order, gateway: str, actor: User, now: datetime.datetime) -> _Reservation:
    locked = order_lock(order_id=order.pk)
    if locked.owner_id != actor.pk:
        raise PermissionDenied(_("只能为自己的订单付款。"))
    if locked.status != OrderStatus.AWAITING_PAYMENT:
        raise InvalidTransition(
            _("订单当前状态为“%(s)s”，无需付款。") % {"s": OrderStatus(locked.status).label}, code="not_payable"
        )
    if locked.amount_fen <= 0:
        raise DomainError(_("该订单无需付款。"), code="nothing_to_pay")
    current: Payment | None = None
    stale: list[Payment] = []
    for payment in Payment.objects.filter(order=locked, gateway=gateway, status=PaymentStatus.PENDING).order_by(
        "-created_at", "-id"
    ):
        usable = payment.amount_fen == locked.amount_fen and payment.expires_at > now + REUSE_MARGIN
        preparing = not payment.code_url and payment.created_at > now - PREPARING_GRACE
        if current is None and usable and (payment.code_url or preparing):
            current = payment
        else:
            stale.append(payment)
    if current is not None:
        return _Reservation(current, False, stale)
    payment = Payment.objects.create(
        order=locked,
        gateway=gateway,
        merchant_no=_merchant_no(locked),
        amount_fen=locked.amount_fen,
        description=f"数字证书 {order_purpose(order=locked)} 订单{locked.number}"[:127],
        expires_at=now + conf.transaction_ttl(),
    )
    audit_log(
        action="payment.started",
        actor=_actor_label(actor),
        object_type="payment",
        object_id=payment.merchant_no,
        data={"order": locked.number, "gateway": gateway, "amount_fen": payment.amount_fen},
    )
    return _Reservation(payment, True, stale)


@transaction.atomic
def _payment_code_save(*, payment: Payment, code_url: str) -> Payment:
    order_lock(order_id=payment.order_id)
    Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
        code_url=code_url, updated_at=timezone.now()
    )
    payment.refresh_from_db()
    return payment


def payment_start(*, order: Order, gateway: str, actor: User) -> Payment:
    """The customer's open QR payment for `order` at `gateway`: the current one while it
    is valid, else a new one with a new merchant order number (earlier ones are closed
    at the gateway first)."""
    client = gateway_get(gateway)
    reservation = _payment_reserve(order=order, gateway=client.code, actor=actor, now=timezone.now())
    for old in reservation.stale:
        try:
            payment_close(payment=old)
        except DomainError as error:  # the periodic task closes it later
            log.warning("could not close superseded payment %s: %s", old.merchant_no, error)
    payment = reservation.payment
    if not reservation.create_at_gateway:
        return payment
    if reservation.stale and Order.objects.get(pk=order.pk).status != OrderStatus.AWAITING_PAYMENT:
        # An old QR code turned out to be paid when we closed it: nothing more to pay.
        _payment_mark_closed(payment=payment, why="order_paid")
        raise InvalidTransition(_("订单已付款，无需再次付款。"), code="not_payable")
    try:
        qr = client.create_qr(
            merchant_no=payment.merchant_no,
            amount_fen=payment.amount_fen,
            description=payment.description,
            expires_at=payment.expires_at,
        )
    except GatewayUnavailable:
        # Nobody saw a QR code for it, so nobody can pay it: closed here whatever the gateway
        # says; closing it there too is a courtesy (it may exist though the answer was lost).
        with contextlib.suppress(DomainError):
            client.close(merchant_no=payment.merchant_no)
        _payment_mark_closed(payment=payment, why="create_failed")
        raise
    return _payment_code_save(payment=payment, code_url=qr.code_url)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Applied:
    """What applying a gateway result did: paid · duplicate · surplus · ignored · rejected."""

    outcome: str
    reason: str = ""
    payment: Payment | None = None


@transaction.atomic
def payment_result_apply(*, gateway: str, txn: GatewayTransaction, source: str) -> Applied:
    """Apply a verified gateway result (callback, query or close) — the one path that marks
    payments paid and moves orders to PAID."""
    row = Payment.objects.filter(gateway=gateway, merchant_no=txn.merchant_no).values_list("pk", "order_id").first()
    if row is None:
        return Applied("rejected", "unknown_order")
    order = order_lock(order_id=row[1])
    payment = Payment.objects.get(pk=row[0])  # read again now that the order is locked
    if txn.amount_fen != payment.amount_fen:
        return Applied("rejected", "amount_mismatch", payment)
    if not txn.money_received:
        return Applied("ignored", f"status_{txn.status}", payment)
    if payment.status in PAID_STATUSES:
        return Applied("duplicate", "", payment)
    data = {
        "gateway": gateway,
        "merchant_no": payment.merchant_no,
        "gateway_txn_id": txn.gateway_txn_id,
        "amount_fen": txn.amount_fen,
        "source": source,
    }
    payment.status = PaymentStatus.PAID
    payment.paid_at = txn.paid_at or timezone.now()
    payment.gateway_txn_id = txn.gateway_txn_id[:64]
    payment.gateway_data = {"source": source, "data": txn.raw}
    settles = order.status == OrderStatus.AWAITING_PAYMENT and order.amount_fen == payment.amount_fen
    payment.settles_order = settles
    payment.save()
    if settles:
        order_transition(
            order=order,
            to_status=OrderStatus.PAID,
            actor=None,
            kind="paid",
            note=f"{LABELS.get(gateway, gateway)} {fen_to_yuan(payment.amount_fen)} 元",
            data=data,
            expected_from=frozenset({OrderStatus.AWAITING_PAYMENT}),
        )
        # Other open QR codes of this order must not take money any more.
        order_id = order.pk
        transaction.on_commit(lambda: _enqueue_close_others(order_id))
        return Applied("paid", "", payment)
    # Money for an order that no longer expected it (paid twice, or after a cancel): keep it on
    # record for staff to refund (payment_surplus_refund).
    order_event_add(
        order=order,
        kind="payment_surplus",
        actor=None,
        note=_("订单状态为“%(s)s”时收到付款 %(a)s 元，需退款。")
        % {"s": OrderStatus(order.status).label, "a": fen_to_yuan(payment.amount_fen)},
        data=data,
    )
    log.warning("surplus payment %s on order %s (%s)", payment.merchant_no, order.number, order.status)
    return Applied("surplus", "", payment)


def _enqueue_close_others(order_id: int) -> None:
    from certdesk.payments.tasks import payments_close_others_task

    payments_close_others_task.enqueue(order_id=order_id)


def payments_close_others(*, order_id: int) -> int:
    """Close the open payments of an order that is no longer awaiting payment."""
    closed = 0
    for payment in Payment.objects.filter(order_id=order_id, status=PaymentStatus.PENDING).exclude(
        order__status=OrderStatus.AWAITING_PAYMENT
    ):
        try:
            payment_close(payment=payment)
            closed += 1
        except DomainError as error:
            log.warning("could not close %s: %s", payment.merchant_no, error)
    return closed


def _refusal_record(
    *, gateway: str, reason: str, detail: str, merchant_no: str, verified: bool, source: str, ip: str = ""
) -> None:
    log.warning("payment %s refused (%s, %s): %s %s", source, gateway, merchant_no or "-", reason, detail)
    audit_log(
        action="payment.callback_refused" if source == "callback" else "payment.result_refused",
        actor=f"gateway:{gateway}",
        object_type="payment",
        object_id=merchant_no[:64],
        ip=ip,
        data={"reason": reason, "detail": detail[:200], "verified": verified, "source": source},
    )


# ----------------------------------------------------------------------------- callbacks


@dataclass(frozen=True)
class _Received:
    gateway: str
    headers: dict[str, str]  # the subset worth keeping
    body: bytes
    remote_addr: str


@transaction.atomic
def _callback_log(
    received: _Received,
    *,
    verified: bool,
    outcome: str,
    reason: str = "",
    detail: str = "",
    merchant_no: str = "",
    payment: Payment | None = None,
) -> PaymentCallback:
    if outcome == "rejected":
        _refusal_record(
            gateway=received.gateway,
            reason=reason,
            detail=detail,
            merchant_no=merchant_no,
            verified=verified,
            source="callback",
            ip=received.remote_addr,
        )
    elif outcome == "ignored" and payment is not None:
        audit_log(
            action="payment.callback_ignored",
            actor=f"gateway:{received.gateway}",
            object_type="payment",
            object_id=merchant_no[:64],
            ip=received.remote_addr,
            data={"reason": reason, "detail": detail[:200]},
        )
    return PaymentCallback.objects.create(
        gateway=received.gateway,
        remote_addr=received.remote_addr[:64],
        headers=received.headers,
        body=received.body[:_MAX_BODY_LOGGED].decode("utf-8", "replace"),
        verified=verified,
        outcome=outcome,
        reason=reason[:64],
        merchant_no=merchant_no[:64],
        payment=payment,
    )


def payment_callback_receive(
    *, gateway: str, body: bytes, headers: Mapping[str, str], remote_addr: str = ""
) -> CallbackReply:
    """Verify a callback on its raw body and apply it; returns what to answer the gateway.
    Every callback is logged; refused ones are audited and change nothing."""
    client = gateway_client(gateway)
    headers = {name.lower(): value for name, value in headers.items()}
    received = _Received(
        gateway=client.code,
        headers={name: headers[name] for name in client.logged_headers if name in headers},
        body=body,
        remote_addr=remote_addr,
    )
    try:
        event = client.parse_callback(body=body, headers=headers)
    except CallbackRejected as rejected:
        _callback_log(
            received,
            verified=False,
            outcome="rejected",
            reason=rejected.reason,
            detail=rejected.detail,
            merchant_no=rejected.merchant_no,
        )
        return client.callback_reply(ok=False)
    if event.transaction is None:
        _callback_log(received, verified=True, outcome="ignored", reason=event.event, merchant_no=event.merchant_no)
        return client.callback_reply(ok=True)
    try:
        applied = payment_result_apply(gateway=client.code, txn=event.transaction, source="callback")
    except Exception:
        _callback_log(received, verified=True, outcome="error", merchant_no=event.merchant_no)
        raise  # answered 500: the gateway sends it again
    _callback_log(
        received,
        verified=True,
        outcome=applied.outcome,
        reason=applied.reason or event.event,
        detail=f"{event.event} amount={event.transaction.amount_fen}",
        merchant_no=event.merchant_no,
        payment=applied.payment,
    )
    # Received and understood, even when it pays nothing (a non-success status): no retries.
    return client.callback_reply(ok=applied.outcome != "rejected")


# ----------------------------------------------------------------------------- close


@transaction.atomic
def _payment_mark_closed(*, payment: Payment, why: str, now: datetime.datetime | None = None) -> Payment:
    order_lock(order_id=payment.order_id)
    fresh = Payment.objects.get(pk=payment.pk)
    if fresh.status == PaymentStatus.PENDING:
        now = now or timezone.now()
        fresh.status = PaymentStatus.EXPIRED if fresh.expires_at <= now else PaymentStatus.CLOSED
        fresh.closed_at = now
        fresh.save(update_fields=["status", "closed_at", "updated_at"])
        audit_log(
            action=f"payment.{fresh.status}",
            actor="system",
            object_type="payment",
            object_id=fresh.merchant_no,
            data={"why": why},
        )
    return fresh


def payment_close(*, payment: Payment, why: str = "superseded", now: datetime.datetime | None = None) -> Payment:
    """Close an open payment at its gateway. If the gateway says it was paid after all,
    that result is applied instead (the money is never lost)."""
    client = gateway_client(payment.gateway)
    txn = client.close(merchant_no=payment.merchant_no)
    if txn is not None and txn.money_received:
        applied = payment_result_apply(gateway=payment.gateway, txn=txn, source="close")
        if applied.outcome == "rejected":
            _refusal_record(
                gateway=payment.gateway,
                reason=applied.reason,
                detail="on close",
                merchant_no=payment.merchant_no,
                verified=True,
                source="close",
            )
        payment.refresh_from_db()
        return payment
    if txn is not None and txn.status not in (TxnStatus.CLOSED, TxnStatus.FAILED):
        raise GatewayUnavailable(_("支付渠道未能关闭交易，请稍后再试。"), code="close_failed")
    return _payment_mark_closed(payment=payment, why=why, now=now)


def payments_close_for_cancel(*, order: Order) -> None:
    """Run inside the cancelling transaction with the order locked (the order_cancelling
    signal): close every open payment at its gateway, or refuse the cancel."""
    if Payment.objects.filter(order=order, status=PaymentStatus.PAID).exists():
        raise DomainError(_("该订单已付款成功，不能直接取消；如需取消请申请退款。"), code="payment_succeeded")
    now = timezone.now()
    for payment in Payment.objects.filter(order=order, status=PaymentStatus.PENDING):
        try:
            txn = gateway_client(payment.gateway).close(merchant_no=payment.merchant_no)
        except DomainError as error:
            raise DomainError(
                _("支付渠道暂时无法关闭付款二维码，请稍后再取消。"), code="gateway_unavailable"
            ) from error
        if txn is not None and txn.money_received:
            # Paid just now: the callback (or the periodic query) records it once this cancel rolls back.
            raise DomainError(_("该订单刚刚付款成功，不能直接取消；如需取消请申请退款。"), code="payment_succeeded")
        if txn is not None and txn.status not in (TxnStatus.CLOSED, TxnStatus.FAILED):
            raise DomainError(_("支付渠道未能关闭付款二维码，请稍后再取消。"), code="gateway_unavailable")
        payment.status = PaymentStatus.CLOSED
        payment.closed_at = now
        payment.save(update_fields=["status", "closed_at", "updated_at"])
        audit_log(
            action="payment.closed",
            actor="system",
            object_type="payment",
            object_id=payment.merchant_no,
            data={"why": "order_cancelled", "order": order.number},
        )


# ----------------------------------------------------------------------------- refunds


def _refundable(business_type: str) -> frozenset[str]:
    """Statuses from which the order state machine allows REFUNDED: paid, nothing produced yet."""
    return frozenset(
        status
        for status in OrderStatus.values
        if OrderStatus.REFUNDED in allowed_next(business_type=business_type, status=status)
    )


def _refund_get_or_create(*, payment: Payment, actor: User | None, reason: str) -> Refund:
    refund, _created = Refund.objects.get_or_create(
        payment=payment,
        defaults={
            "refund_no": f"{payment.merchant_no}R",
            "amount_fen": payment.amount_fen,
            "reason": reason[:200],
            "actor": actor,
        },
    )
    return refund


@transaction.atomic
def _order_refunds_prepare(
    *, order: Order, actor: User, reason: str, allowed: frozenset[str] | None
) -> list[Refund] | None:
    locked = order_lock(order_id=order.pk)
    if locked.status == OrderStatus.REFUNDED:
        return None
    refundable = _refundable(locked.business_type) & (allowed if allowed is not None else frozenset(OrderStatus.values))
    if locked.status not in refundable:
        raise InvalidTransition(
            _("订单当前状态为“%(s)s”，不能退款。") % {"s": OrderStatus(locked.status).label}, code="not_refundable"
        )
    paid = list(Payment.objects.filter(order=locked, status=PaymentStatus.PAID))
    if not paid and locked.amount_fen > 0 and not Refund.objects.filter(payment__order=locked).exists():
        raise DomainError(_("没有找到该订单的在线付款，不能在线退款。"), code="nothing_to_refund")
    refunds = [_refund_get_or_create(payment=payment, actor=actor, reason=reason) for payment in paid]
    return [refund for refund in refunds if refund.status in (RefundStatus.PENDING, RefundStatus.FAILED)]


@transaction.atomic
def _refund_record(*, refund: Refund, result: RefundResult | None, error: str = "") -> Refund:
    payment_order_id = Payment.objects.values_list("order_id", flat=True).get(pk=refund.payment_id)
    order_lock(order_id=payment_order_id)
    fresh = Refund.objects.select_related("payment").get(pk=refund.pk)
    if fresh.status == RefundStatus.SUCCEEDED:
        return fresh
    if result is None:
        fresh.error = error[:255]
        fresh.save(update_fields=["error", "updated_at"])
        return fresh
    fresh.status = {
        RefundOutcome.SUCCEEDED: RefundStatus.SUCCEEDED,
        RefundOutcome.PROCESSING: RefundStatus.PROCESSING,
        RefundOutcome.FAILED: RefundStatus.FAILED,
    }[result.outcome]
    fresh.gateway_refund_id = (result.gateway_refund_id or fresh.gateway_refund_id)[:64]
    fresh.gateway_data = result.raw
    fresh.error = result.message[:255]
    if fresh.status == RefundStatus.SUCCEEDED:
        fresh.completed_at = timezone.now()
        Payment.objects.filter(pk=fresh.payment_id).update(status=PaymentStatus.REFUNDED, updated_at=timezone.now())
    fresh.save()
    audit_log(
        action=f"payment.refund_{fresh.status}",
        actor=_actor_label(fresh.actor),
        object_type="payment",
        object_id=fresh.payment.merchant_no,
        data={"refund_no": fresh.refund_no, "amount_fen": fresh.amount_fen, "message": fresh.error},
    )
    return fresh


def _refund_submit(*, refund: Refund) -> str:
    """Send one refund to its gateway; returns an error message, or "" when accepted."""
    payment = refund.payment
    try:
        result = gateway_client(payment.gateway).refund(
            merchant_no=payment.merchant_no,
            refund_no=refund.refund_no,
            amount_fen=refund.amount_fen,
            total_fen=payment.amount_fen,
            reason=refund.reason,
        )
    except DomainError as error:
        _refund_record(refund=refund, result=None, error=error.message)
        return error.message
    recorded = _refund_record(refund=refund, result=result)
    if recorded.status == RefundStatus.FAILED:
        return recorded.error or _("退款失败")
    return ""


@transaction.atomic
def _order_refund_finish(*, order: Order, actor: User, reason: str, allowed: frozenset[str] | None) -> Order:
    locked = order_lock(order_id=order.pk)
    if locked.status == OrderStatus.REFUNDED:
        return locked
    if Payment.objects.filter(order=locked, status=PaymentStatus.PAID, refund__isnull=True).exists():
        raise DomainError(_("刚收到该订单的另一笔付款，请重新办理退款。"), code="refund_retry")
    refunds = list(Refund.objects.filter(payment__order=locked).select_related("payment"))
    if any(r.status not in (RefundStatus.PROCESSING, RefundStatus.SUCCEEDED) for r in refunds):
        raise DomainError(_("退款尚未被支付渠道受理，请稍后重试。"), code="refund_failed")
    refundable = _refundable(locked.business_type) & (allowed if allowed is not None else frozenset(OrderStatus.values))
    return order_transition(
        order=locked,
        to_status=OrderStatus.REFUNDED,
        actor=actor,
        kind="refunded",
        note=reason,
        data={
            "refunds": [{"refund_no": r.refund_no, "amount_fen": r.amount_fen, "status": r.status} for r in refunds],
            "amount_fen": sum(r.amount_fen for r in refunds),
        },
        expected_from=refundable,
    )


def _order_refund(*, order: Order, actor: User, reason: str, allowed: frozenset[str] | None) -> Order:
    prepared = _order_refunds_prepare(order=order, actor=actor, reason=reason, allowed=allowed)
    if prepared is None:
        return Order.objects.get(pk=order.pk)  # refunded already: nothing to do twice
    errors = [message for message in (_refund_submit(refund=refund) for refund in prepared) if message]
    if errors:
        raise DomainError(
            _("退款未完成：%(e)s。可稍后重试，不会重复退款。") % {"e": "；".join(errors)}, code="refund_failed"
        )
    return _order_refund_finish(order=order, actor=actor, reason=reason, allowed=allowed)


def payment_refund(*, order: Order, actor: User, reason: str) -> Order:
    """Staff: refund a paid order before fulfilment through its gateway(s) → REFUNDED.

    Refundable from the statuses the order state machine allows REFUNDED from (PAID,
    and the first post-paid step where nothing was produced yet). Safe to call again
    after any failure: each payment has one refund number, which every gateway refunds
    once; a refunded order is returned unchanged (no second event)."""
    if not actor.is_staff:
        raise PermissionDenied(_("只有工作人员可以办理退款。"))
    if not reason.strip():
        raise DomainError(_("请填写退款原因。"), code="reason_required")
    return _order_refund(order=order, actor=actor, reason=reason.strip(), allowed=None)


def payment_cancel_paid_order(*, order: Order, actor: User, reason: str = "") -> Order:
    """Customer: cancel an order that is PAID (nothing done yet) — refunded in full → REFUNDED.
    For the orders cancel view to call when the order's status is PAID."""
    if order.owner_id != actor.pk:
        raise PermissionDenied(_("只能取消自己的订单。"))
    return _order_refund(
        order=order,
        actor=actor,
        reason=reason.strip() or _("客户取消订单"),
        allowed=frozenset({OrderStatus.PAID}),
    )


def payment_surplus_refund(*, payment: Payment, actor: User, reason: str) -> Refund:
    """Staff: refund a payment that did not settle its order (paid twice, paid after cancel)."""
    if not actor.is_staff:
        raise PermissionDenied(_("只有工作人员可以办理退款。"))
    with transaction.atomic():
        order_lock(order_id=payment.order_id)
        fresh = Payment.objects.get(pk=payment.pk)
        if fresh.settles_order:
            raise DomainError(_("这笔付款结清了订单，请办理整单退款。"), code="settling_payment")
        if fresh.status not in PAID_STATUSES:
            raise DomainError(_("这笔付款未成功，无需退款。"), code="not_paid")
        refund = _refund_get_or_create(payment=fresh, actor=actor, reason=reason or _("重复付款退款"))
    if refund.status in (RefundStatus.PENDING, RefundStatus.FAILED):
        error = _refund_submit(refund=refund)
        if error:
            raise DomainError(_("退款未完成：%(e)s。可稍后重试，不会重复退款。") % {"e": error}, code="refund_failed")
    refund.refresh_from_db()
    return refund


# ----------------------------------------------------------------------------- periodic


@transaction.atomic
def _payment_queried(*, payment: Payment, now: datetime.datetime) -> None:
    Payment.objects.filter(pk=payment.pk).update(last_queried_at=now)


def payments_sync(*, now: datetime.datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Catch up with the gateways (every minute): open payments that got no callback are
    queried and the result applied through the same path as a callback; expired ones, and
    ones whose order no longer awaits payment, are closed; processing refunds are queried."""
    now = now or timezone.now()
    counts: Counter[str] = Counter()
    for payment in payments_open(older_than=now - QUERY_AFTER, limit=limit):
        try:
            client = gateway_client(payment.gateway)
            if payment.expires_at <= now or payment.order.status != OrderStatus.AWAITING_PAYMENT:
                closed = payment_close(payment=payment, why="expired", now=now)
                counts["paid" if closed.status in PAID_STATUSES else "closed"] += 1
                continue
            txn = client.query(merchant_no=payment.merchant_no)
            _payment_queried(payment=payment, now=now)
        except DomainError as error:
            log.warning("sync of %s failed: %s", payment.merchant_no, error)
            counts["errors"] += 1
            continue
        if txn is None or not txn.money_received:
            counts["unpaid"] += 1
            continue
        applied = payment_result_apply(gateway=payment.gateway, txn=txn, source="query")
        if applied.outcome == "rejected":
            _refusal_record(
                gateway=payment.gateway,
                reason=applied.reason,
                detail="periodic query",
                merchant_no=payment.merchant_no,
                verified=True,
                source="query",
            )
        counts[applied.outcome] += 1
    for refund in refunds_processing(limit=limit):
        try:
            result = gateway_client(refund.payment.gateway).refund_query(
                merchant_no=refund.payment.merchant_no, refund_no=refund.refund_no
            )
        except DomainError as error:
            log.warning("refund query of %s failed: %s", refund.refund_no, error)
            counts["errors"] += 1
            continue
        if result is not None and result.outcome != RefundOutcome.PROCESSING:
            _refund_record(refund=refund, result=result)
            counts[f"refund_{result.outcome}"] += 1
    return dict(counts)
