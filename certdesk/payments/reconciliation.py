"""对账: local successful payments of a day against the gateway's records of that day."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from certdesk.payments.gateways import gateway_client
from certdesk.payments.selectors import payments_paid_on


@dataclass(frozen=True, kw_only=True)
class Difference:
    kind: str  # missing_locally · missing_at_gateway · amount_mismatch
    merchant_no: str
    local_fen: int | None = None
    gateway_fen: int | None = None
    gateway_txn_id: str = ""

    LABELS = {
        "missing_locally": "渠道有记录，本地无成功付款",
        "missing_at_gateway": "本地成功付款，渠道无记录",
        "amount_mismatch": "金额不一致",
    }

    @property
    def label(self) -> str:
        return self.LABELS[self.kind]


@dataclass(kw_only=True)
class Reconciliation:
    gateway: str
    day: datetime.date
    local_count: int = 0
    gateway_count: int = 0
    matched: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def payments_reconcile(*, gateway: str, day: datetime.date) -> Reconciliation:
    """Compare; raises GatewayUnavailable when the gateway's records cannot be had."""
    remote = {line.merchant_no: line for line in gateway_client(gateway).records(day=day)}
    local = {payment.merchant_no: payment for payment in payments_paid_on(gateway=gateway, day=day)}
    report = Reconciliation(gateway=gateway, day=day, local_count=len(local), gateway_count=len(remote))
    for merchant_no, line in sorted(remote.items()):
        payment = local.get(merchant_no)
        if payment is None:
            report.differences.append(
                Difference(
                    kind="missing_locally",
                    merchant_no=merchant_no,
                    gateway_fen=line.amount_fen,
                    gateway_txn_id=line.gateway_txn_id,
                )
            )
        elif payment.amount_fen != line.amount_fen:
            report.differences.append(
                Difference(
                    kind="amount_mismatch",
                    merchant_no=merchant_no,
                    local_fen=payment.amount_fen,
                    gateway_fen=line.amount_fen,
                    gateway_txn_id=line.gateway_txn_id,
                )
            )
        else:
            report.matched += 1
    for merchant_no, payment in sorted(local.items()):
        if merchant_no not in remote:
            report.differences.append(
                Difference(
                    kind="missing_at_gateway",
                    merchant_no=merchant_no,
                    local_fen=payment.amount_fen,
                    gateway_txn_id=payment.gateway_txn_id,
                )
            )
    return report
