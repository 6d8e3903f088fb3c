"""manage.py payments_reconcile --date YYYY-MM-DD [--gateway sandbox]

Exit status: 0 all matched, 1 differences found, 2 a gateway's records could not be had.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from certdesk.core.errors import DomainError
from certdesk.payments import conf
from certdesk.payments.amounts import fen_to_yuan
from certdesk.payments.reconciliation import payments_reconcile


def _yuan(fen: int | None) -> str:
    return "-" if fen is None else fen_to_yuan(fen)


class Command(BaseCommand):
    help = "对账：比较本地某日的成功付款与支付渠道当日的记录，列出差异（有差异时退出码为 1）。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", required=True, help="对账日期（北京时间），YYYY-MM-DD")
        parser.add_argument("--gateway", choices=conf.KNOWN_GATEWAYS, help="只核对这一个渠道（默认：已开通的全部）")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = datetime.date.fromisoformat(options["date"])
        except ValueError:
            raise CommandError("--date 应为 YYYY-MM-DD") from None
        gateways = [options["gateway"]] if options["gateway"] else conf.enabled_gateways()
        differences = 0
        for gateway in gateways:
            try:
                report = payments_reconcile(gateway=gateway, day=day)
            except DomainError as error:
                raise CommandError(f"{gateway}: {error.message}", returncode=2) from error
            self.stdout.write(
                f"{gateway} {day}: 本地 {report.local_count} 笔，渠道 {report.gateway_count} 笔，"
                f"一致 {report.matched} 笔，差异 {len(report.differences)} 处"
            )
            for diff in report.differences:
                self.stdout.write(
                    f"  {diff.kind:<19} {diff.merchant_no:<24} 本地 {_yuan(diff.local_fen):>10}  "
                    f"渠道 {_yuan(diff.gateway_fen):>10}  {diff.gateway_txn_id}  {diff.label}"
                )
            differences += len(report.differences)
        if differences:
            raise CommandError(f"对账发现 {differences} 处差异", returncode=1)
        self.stdout.write(self.style.SUCCESS("对账一致"))
