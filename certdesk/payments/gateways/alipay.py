"""Alipay 当面付 (alipay.trade.precreate: the customer scans our QR code),
through `python-alipay-sdk` with RSA2 keys.

Requests are signed with the application key and every synchronous answer is
verified with Alipay's public key by the SDK. Asynchronous notifications are
verified (RSA2 over the sorted `k=v&…` of every field but `sign` and
`sign_type`) and then checked against our `app_id` and `seller_id`.
"""

from __future__ import annotations

import csv
import datetime
import io
import logging
import math
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping
from typing import Any

from alipay import AliPay
from alipay.utils import AliPayConfig
from django.utils import timezone
from django.utils.translation import gettext as _

from certdesk.payments import conf
from certdesk.payments.amounts import fen_to_yuan, yuan_to_fen
from certdesk.payments.errors import CallbackRejected, GatewayUnavailable
from certdesk.payments.gateways.base import (
    BEIJING,
    CallbackEvent,
    CallbackReply,
    GatewayTransaction,
    PaymentGateway,
    QrPayment,
    RecordLine,
    RefundOutcome,
    RefundResult,
    TxnStatus,
)

log = logging.getLogger("certdesk.payments.alipay")

OK = "10000"
_TRADE_STATES = {
    "TRADE_SUCCESS": TxnStatus.SUCCESS,
    "TRADE_FINISHED": TxnStatus.SUCCESS,
    "WAIT_BUYER_PAY": TxnStatus.PENDING,
    "TRADE_CLOSED": TxnStatus.CLOSED,
}
_NOT_FOUND = ("ACQ.TRADE_NOT_EXIST",)


def _time(value: Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


def form_fields(body: bytes) -> dict[str, str]:
    """An x-www-form-urlencoded body decoded with the charset it names (utf-8 by default)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        text = body.decode("utf-8")  # not percent-encoded; let it be judged by its signature
    charset = dict(urllib.parse.parse_qsl(text, encoding="latin-1")).get("charset", "utf-8") or "utf-8"
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding=charset)
    except (ValueError, LookupError) as error:
        raise CallbackRejected("malformed", str(error)) from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise CallbackRejected("malformed", "repeated field")
    return fields


class AlipayGateway(PaymentGateway):
    code = "alipay"
    label = "支付宝"

    def __init__(self, config: conf.AlipayConfig) -> None:
        missing = config.missing()
        if missing:
            raise GatewayUnavailable(
                _("支付宝未配置完整：%(m)s") % {"m": "、".join(missing)}, code="gateway_not_configured"
            )
        self.config = config
        try:
            self.client = AliPay(
                appid=config.app_id,
                app_notify_url=config.notify_url,
                app_private_key_string=config.app_private_key,
                alipay_public_key_string=config.alipay_public_key,
                sign_type="RSA2",
                config=AliPayConfig(timeout=config.timeout),
            )
        except Exception as error:
            raise GatewayUnavailable(_("支付宝初始化失败：%(e)s") % {"e": error}) from error
        # The SDK picks its gateway from `debug`; ours is a setting so tests can use a local fake.
        self.client._gateway = config.gateway_url

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            result = fn(*args, **kwargs)
        except Exception as error:  # network errors, unsigned or badly signed answers
            log.warning("alipay %s failed: %s", what, error)
            raise GatewayUnavailable(_("支付宝暂时无法访问，请稍后再试。")) from error
        return result if isinstance(result, dict) else {}

    @staticmethod
    def _message(data: Mapping[str, Any]) -> str:
        return str(data.get("sub_msg") or data.get("msg") or data.get("code") or "")

    def _transaction(self, data: Mapping[str, Any], *, paid_at_field: str) -> GatewayTransaction:
        merchant_no = str(data.get("out_trade_no", ""))
        try:
            amount_fen = yuan_to_fen(str(data.get("total_amount", "")))
        except ValueError:
            raise CallbackRejected("malformed", "total_amount", merchant_no=merchant_no) from None
        if not merchant_no:
            raise CallbackRejected("malformed", "out_trade_no")
        return GatewayTransaction(
            merchant_no=merchant_no,
            amount_fen=amount_fen,
            status=_TRADE_STATES.get(str(data.get("trade_status")), TxnStatus.PENDING),
            gateway_txn_id=str(data.get("trade_no", "")),
            paid_at=_time(data.get(paid_at_field)),
            raw=dict(data),
        )

    def create_qr(
        self, *, merchant_no: str, amount_fen: int, description: str, expires_at: datetime.datetime
    ) -> QrPayment:
        minutes = max(1, math.ceil((expires_at - timezone.now()).total_seconds() / 60))
        data = self._call(
            "precreate",
            self.client.api_alipay_trade_precreate,
            subject=description,
            out_trade_no=merchant_no,
            total_amount=fen_to_yuan(amount_fen),
            notify_url=self.config.notify_url,
            timeout_express=f"{minutes}m",
        )
        if data.get("code") != OK or not data.get("qr_code"):
            log.warning("alipay precreate %s refused: %s", merchant_no, data)
            raise GatewayUnavailable(_("支付宝下单失败：%(m)s") % {"m": self._message(data)})
        return QrPayment(str(data["qr_code"]), data)

    def query(self, *, merchant_no: str) -> GatewayTransaction | None:
        data = self._call("query", self.client.api_alipay_trade_query, out_trade_no=merchant_no)
        if data.get("sub_code") in _NOT_FOUND:
            return None  # precreate: the trade exists at Alipay only once the QR code was scanned
        if data.get("code") != OK:
            raise GatewayUnavailable(_("支付宝查询失败：%(m)s") % {"m": self._message(data)})
        try:
            return self._transaction(data, paid_at_field="send_pay_date")
        except CallbackRejected as error:
            raise GatewayUnavailable(f"支付宝查询结果无法识别：{error}") from None

    def close(self, *, merchant_no: str) -> GatewayTransaction | None:
        data = self._call("close", self.client.api_alipay_trade_close, out_trade_no=merchant_no)
        if data.get("code") != OK:
            # Paid already, never scanned (TRADE_NOT_EXIST) or closed: the query says which.
            log.info("alipay close %s answered %s", merchant_no, data)
        return self.query(merchant_no=merchant_no)

    def refund(self, *, merchant_no: str, refund_no: str, amount_fen: int, total_fen: int, reason: str) -> RefundResult:
        data = self._call(
            "refund",
            self.client.api_alipay_trade_refund,
            refund_amount=fen_to_yuan(amount_fen),
            out_trade_no=merchant_no,
            out_request_no=refund_no,
            refund_reason=reason[:200],
        )
        if data.get("code") == OK:
            # Alipay refunds synchronously; a repeated out_request_no answers fund_change=N.
            return RefundResult(
                refund_no=refund_no, outcome=RefundOutcome.SUCCEEDED, gateway_refund_id=refund_no, raw=data
            )
        if data.get("code") in ("20000", "40004") and data.get("sub_code") in ("ACQ.SYSTEM_ERROR", "isp.unknow-error"):
            raise GatewayUnavailable(_("支付宝退款暂时失败：%(m)s") % {"m": self._message(data)})
        return RefundResult(refund_no=refund_no, outcome=RefundOutcome.FAILED, message=self._message(data), raw=data)

    def refund_query(self, *, merchant_no: str, refund_no: str) -> RefundResult | None:
        data = self._call(
            "refund query",
            self.client.api_alipay_trade_fastpay_refund_query,
            out_request_no=refund_no,
            out_trade_no=merchant_no,
        )
        if data.get("code") != OK:
            raise GatewayUnavailable(_("支付宝退款查询失败：%(m)s") % {"m": self._message(data)})
        if data.get("refund_status") == "REFUND_SUCCESS" or ("refund_status" not in data and data.get("refund_amount")):
            return RefundResult(
                refund_no=refund_no, outcome=RefundOutcome.SUCCEEDED, gateway_refund_id=refund_no, raw=data
            )
        return None

    def records(self, *, day: datetime.date) -> list[RecordLine]:
        data = self._call(
            "bill url",
            self.client.server_api,
            "alipay.data.dataservice.bill.downloadurl.query",
            {"bill_type": "trade", "bill_date": day.isoformat()},
        )
        if data.get("sub_code") == "isp.bill_not_exist":
            return []
        url = str(data.get("bill_download_url", ""))
        if data.get("code") != OK or not url:
            raise GatewayUnavailable(_("支付宝账单申请失败：%(m)s") % {"m": self._message(data)})
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise GatewayUnavailable(_("支付宝账单地址无效。"))
        try:
            with urllib.request.urlopen(url, timeout=self.config.timeout) as response:  # noqa: S310 - scheme checked
                content = response.read()
        except OSError as error:
            raise GatewayUnavailable(_("支付宝账单下载失败。")) from error
        return parse_bill_zip(content)

    # -- notifications ---------------------------------------------------------

    def parse_callback(self, *, body: bytes, headers: Mapping[str, str]) -> CallbackEvent:
        fields = form_fields(body)
        merchant_no = fields.get("out_trade_no", "")
        signature = fields.pop("sign", "")
        if not signature:
            raise CallbackRejected("unsigned", "sign missing", merchant_no=merchant_no)
        if fields.get("sign_type") != "RSA2":
            raise CallbackRejected("signature_type", fields.get("sign_type", ""), merchant_no=merchant_no)
        try:
            verified = self.client.verify(dict(fields), signature)  # the SDK drops sign_type itself
        except Exception:  # bad base64 and the like
            verified = False
        if not verified:
            raise CallbackRejected("signature_invalid", merchant_no=merchant_no)
        if fields.get("app_id") != self.config.app_id:
            raise CallbackRejected("app_mismatch", fields.get("app_id", ""), merchant_no=merchant_no)
        if fields.get("seller_id") != self.config.seller_id:
            raise CallbackRejected("merchant_mismatch", fields.get("seller_id", ""), merchant_no=merchant_no)
        txn = self._transaction(fields, paid_at_field="gmt_payment")
        return CallbackEvent(
            event=f"{fields.get('notify_type', '')}/{fields.get('trade_status', '')}",
            merchant_no=txn.merchant_no,
            transaction=txn,
        )

    def callback_reply(self, *, ok: bool) -> CallbackReply:
        # Alipay stops retrying (8 times over 25 h) only on the exact text "success".
        return CallbackReply(200, b"success" if ok else b"fail")


def _bill_rows(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        return []
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = [cell.strip() for cell in next(reader)]
    return [dict(zip(header, (cell.strip() for cell in row), strict=False)) for row in reader]


def parse_bill_zip(content: bytes) -> list[RecordLine]:
    """Successful payments in Alipay's trade bill: a zip of GBK CSV files; the
    detail file (业务明细) is the one whose header starts with 支付宝交易号."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile as error:
        raise GatewayUnavailable(_("支付宝账单无法解压。")) from error
    for name in archive.namelist():
        text = archive.read(name).decode("gbk", errors="replace")
        rows = _bill_rows(text)
        if not rows or "支付宝交易号" not in rows[0] or "业务类型" not in rows[0]:
            continue
        lines = []
        for row in rows:
            if row.get("业务类型") != "交易":
                continue  # refunds are listed as 退款
            lines.append(
                RecordLine(
                    merchant_no=row.get("商户订单号", ""),
                    gateway_txn_id=row.get("支付宝交易号", ""),
                    amount_fen=yuan_to_fen(row.get("订单金额（元）", "")),
                    paid_at=_time(row.get("完成时间")),
                )
            )
        return lines
    raise GatewayUnavailable(_("支付宝账单中没有业务明细。"))
