"""WeChat Pay API v3, Native payment (扫码支付), through the `wechatpayv3` SDK.

The SDK signs our requests with the merchant key and verifies every response
with the platform key; callbacks are verified here *and* by the SDK: we refuse
probe signatures (WECHATPAY/SIGNTEST/), stale timestamps, unknown key serials
and other signature types before the SDK checks the SHA256withRSA signature
over `timestamp\\nnonce\\nbody\\n` and decrypts the AEAD_AES_256_GCM resource.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import gzip
import hashlib
import io
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.core import Core

from certdesk.payments import conf
from certdesk.payments.amounts import yuan_to_fen
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
    json_loads_strict,
    json_reply,
)

log = logging.getLogger("certdesk.payments.wechat")

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
_TRADE_STATES = {
    "SUCCESS": TxnStatus.SUCCESS,
    "REFUND": TxnStatus.REFUNDED,
    "NOTPAY": TxnStatus.PENDING,
    "USERPAYING": TxnStatus.PENDING,
    "CLOSED": TxnStatus.CLOSED,
    "REVOKED": TxnStatus.CLOSED,
    "PAYERROR": TxnStatus.FAILED,
}
_REFUND_STATES = {
    "SUCCESS": RefundOutcome.SUCCEEDED,
    "PROCESSING": RefundOutcome.PROCESSING,
    "CLOSED": RefundOutcome.FAILED,
    "ABNORMAL": RefundOutcome.FAILED,
}


class _Core(Core):
    """The SDK core with a configurable base URL. wechatpayv3 2.0.4 hard-codes
    api.mch.weixin.qq.com and, with platform certificates, downloads them inside
    __init__; tests point the base URL at a local fake."""

    def __init__(self, *, base_url: str, **kwargs: Any) -> None:
        self._base_url = base_url
        super().__init__(**kwargs)
        self._gate_way = base_url

    def _init_certificates(self) -> None:
        self._gate_way = self._base_url
        super()._init_certificates()

    def known_serial(self, serial: str) -> bool:
        if serial and serial == self._public_key_id:
            return True
        try:
            number = int(serial, 16)
        except ValueError:
            return False
        return any(cert.serial_number == number for cert in self._certificates)


class _Client(WeChatPay):
    """WeChatPay with our core (same attributes as WeChatPay.__init__ in 2.0.4)."""

    def __init__(self, *, core: _Core, mchid: str, appid: str, notify_url: str) -> None:
        self._type = WeChatPayType.NATIVE
        self._mchid = mchid
        self._appid = appid
        self._notify_url = notify_url
        self._core = core
        self._partner_mode = False


def _json(text: Any) -> dict[str, Any]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {"message": str(text)[:200]}
    return data if isinstance(data, dict) else {}


def _time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(str(value))
    except ValueError:
        return None


class WeChatGateway(PaymentGateway):
    code = "wechat"
    label = "微信支付"
    logged_headers = (
        "content-type",
        "wechatpay-serial",
        "wechatpay-timestamp",
        "wechatpay-nonce",
        "wechatpay-signature-type",
        "wechatpay-signature",
    )

    def __init__(self, config: conf.WeChatConfig) -> None:
        missing = config.missing()
        if missing:
            raise GatewayUnavailable(
                _("微信支付未配置完整：%(m)s") % {"m": "、".join(missing)}, code="gateway_not_configured"
            )
        self.config = config
        try:
            core = _Core(
                base_url=config.base_url,
                mchid=config.mchid,
                cert_serial_no=config.cert_serial_no,
                private_key=config.private_key,
                apiv3_key=config.apiv3_key,
                cert_dir=config.cert_dir or None,
                logger=None,
                proxy=None,
                timeout=(5, config.timeout),
                public_key=config.public_key or None,
                public_key_id=config.public_key_id or None,
            )
        except Exception as error:
            raise GatewayUnavailable(_("微信支付初始化失败：%(e)s") % {"e": error}) from error
        self.core = core
        self.client = _Client(core=core, mchid=config.mchid, appid=config.appid, notify_url=config.notify_url)

    # -- calls -----------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        try:
            code, message = fn(*args, **kwargs)
        except Exception as error:  # network errors, a response whose signature did not verify
            log.warning("wechat %s failed: %s", what, error)
            raise GatewayUnavailable(_("微信支付暂时无法访问，请稍后再试。")) from error
        return int(code), message

    def _transaction(self, data: Mapping[str, Any]) -> GatewayTransaction:
        """Normalise a transaction (query answer or decrypted callback resource) after checking it is ours."""
        merchant_no = str(data.get("out_trade_no", ""))
        if data.get("mchid") != self.config.mchid:
            raise CallbackRejected("merchant_mismatch", str(data.get("mchid")), merchant_no=merchant_no)
        if data.get("appid") != self.config.appid:
            raise CallbackRejected("app_mismatch", str(data.get("appid")), merchant_no=merchant_no)
        amount = data.get("amount") or {}
        total = amount.get("total") if isinstance(amount, dict) else None
        if not merchant_no or not isinstance(total, int) or isinstance(total, bool):
            raise CallbackRejected("malformed", "out_trade_no/amount", merchant_no=merchant_no)
        if amount.get("currency", "CNY") != "CNY":
            raise CallbackRejected("currency_mismatch", str(amount.get("currency")), merchant_no=merchant_no)
        return GatewayTransaction(
            merchant_no=merchant_no,
            amount_fen=total,
            status=_TRADE_STATES.get(str(data.get("trade_state")), TxnStatus.PENDING),
            gateway_txn_id=str(data.get("transaction_id", "")),
            paid_at=_time(data.get("success_time")),
            raw=dict(data),
        )

    def create_qr(
        self, *, merchant_no: str, amount_fen: int, description: str, expires_at: datetime.datetime
    ) -> QrPayment:
        code, message = self._call(
            "native",
            self.client.pay,
            description=description,
            out_trade_no=merchant_no,
            amount={"total": amount_fen, "currency": "CNY"},
            time_expire=expires_at.astimezone(BEIJING).replace(microsecond=0).isoformat(),
            pay_type=WeChatPayType.NATIVE,
        )
        data = _json(message)
        if code != 200 or not data.get("code_url"):
            log.warning("wechat native order %s refused: %s %s", merchant_no, code, data)
            raise GatewayUnavailable(_("微信支付下单失败：%(m)s") % {"m": data.get("message", code)})
        return QrPayment(str(data["code_url"]), data)

    def query(self, *, merchant_no: str) -> GatewayTransaction | None:
        code, message = self._call("query", self.client.query, out_trade_no=merchant_no)
        data = _json(message)
        if code == 404 or data.get("code") == "ORDER_NOT_EXIST":
            return None
        if code != 200:
            raise GatewayUnavailable(_("微信支付查询失败：%(m)s") % {"m": data.get("message", code)})
        try:
            return self._transaction(data)
        except CallbackRejected as mismatch:
            raise GatewayUnavailable(f"微信支付查询结果不属于本商户：{mismatch}") from None

    def close(self, *, merchant_no: str) -> GatewayTransaction | None:
        code, message = self._call("close", self.client.close, out_trade_no=merchant_no)
        if code not in (200, 204):
            # Already paid, already closed or never created: the query below says which.
            log.info("wechat close %s answered %s %s", merchant_no, code, _json(message))
        return self.query(merchant_no=merchant_no)

    def refund(self, *, merchant_no: str, refund_no: str, amount_fen: int, total_fen: int, reason: str) -> RefundResult:
        code, message = self._call(
            "refund",
            self.client.refund,
            out_refund_no=refund_no,
            amount={"refund": amount_fen, "total": total_fen, "currency": "CNY"},
            out_trade_no=merchant_no,
            reason=reason[:80] or None,
        )
        data = _json(message)
        if code != 200:
            if code >= 500 or data.get("code") in ("SYSTEM_ERROR", "FREQUENCY_LIMITED"):
                raise GatewayUnavailable(_("微信支付退款暂时失败：%(m)s") % {"m": data.get("message", code)})
            return RefundResult(
                refund_no=refund_no, outcome=RefundOutcome.FAILED, message=str(data.get("message", code)), raw=data
            )
        return self._refund_result(refund_no, data)

    def _refund_result(self, refund_no: str, data: dict[str, Any]) -> RefundResult:
        return RefundResult(
            refund_no=refund_no,
            outcome=_REFUND_STATES.get(str(data.get("status")), RefundOutcome.PROCESSING),
            gateway_refund_id=str(data.get("refund_id", "")),
            raw=data,
        )

    def refund_query(self, *, merchant_no: str, refund_no: str) -> RefundResult | None:
        code, message = self._call("refund query", self.client.query_refund, out_refund_no=refund_no)
        data = _json(message)
        if code == 404:
            return None
        if code != 200:
            raise GatewayUnavailable(_("微信支付退款查询失败：%(m)s") % {"m": data.get("message", code)})
        return self._refund_result(refund_no, data)

    def records(self, *, day: datetime.date) -> list[RecordLine]:
        code, message = self._call("trade bill", self.client.trade_bill, bill_date=day.isoformat())
        data = _json(message)
        if code == 400 and data.get("code") == "NO_STATEMENT_EXIST":
            return []
        if code != 200 or not data.get("download_url"):
            raise GatewayUnavailable(_("微信支付账单申请失败：%(m)s") % {"m": data.get("message", code)})
        code, content = self._call("bill download", self.client.download_bill, url=str(data["download_url"]))
        if code != 200 or not isinstance(content, bytes):
            raise GatewayUnavailable(_("微信支付账单下载失败：%(m)s") % {"m": code})
        try:
            raw = gzip.decompress(content)
        except (OSError, EOFError) as error:
            raise GatewayUnavailable(_("微信支付账单无法解压。")) from error
        if data.get("hash_type", "SHA1") == "SHA1" and hashlib.sha1(raw).hexdigest() != data.get("hash_value"):  # noqa: S324 - the bill API's digest
            raise GatewayUnavailable(_("微信支付账单摘要不符，已丢弃。"))
        return parse_trade_bill(raw.decode("utf-8-sig"))

    # -- callbacks --------------------------------------------------------------

    def parse_callback(self, *, body: bytes, headers: Mapping[str, str]) -> CallbackEvent:
        signature = headers.get("wechatpay-signature", "")
        timestamp = headers.get("wechatpay-timestamp", "")
        nonce = headers.get("wechatpay-nonce", "")
        serial = headers.get("wechatpay-serial", "")
        signature_type = headers.get("wechatpay-signature-type", SIGNATURE_TYPE)
        if not (signature and timestamp and nonce and serial):
            raise CallbackRejected("unsigned", "Wechatpay-* headers missing")
        if signature.startswith(PROBE_PREFIX):
            # WeChat Pay sends these to check that merchants do verify: never accept one.
            raise CallbackRejected("probe_signature", serial)
        if signature_type != SIGNATURE_TYPE:
            raise CallbackRejected("signature_type", signature_type)
        try:
            age = abs(time.time() - int(timestamp))
        except ValueError:
            raise CallbackRejected("malformed", "timestamp") from None
        if age > conf.callback_max_age().total_seconds():
            raise CallbackRejected("stale", f"timestamp {timestamp}")
        if not self.config.cert_dir and not self.core.known_serial(serial):
            # Public-key mode: nothing to download, an unknown serial cannot verify.
            raise CallbackRejected("unknown_serial", serial)
        try:
            envelope = json_loads_strict(body)
            resource = envelope["resource"]
            if envelope.get("resource_type") != "encrypt-resource" or resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise ValueError("resource type/algorithm")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CallbackRejected("malformed", str(error)) from None
        sdk_headers = {
            "Wechatpay-Signature": signature,
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": signature_type,
        }
        try:
            verified = self.client.callback(sdk_headers, body.decode("utf-8"))
        except Exception as error:  # the SDK raises bare Exceptions for what it cannot handle
            raise CallbackRejected("signature_invalid", str(error)) from None
        if not verified or not isinstance(verified.get("resource"), dict):
            raise CallbackRejected("signature_invalid", "signature or resource did not verify")
        event = str(verified.get("event_type", ""))
        data = verified["resource"]
        if not event.startswith("TRANSACTION."):
            # Refund notices and the like: verified, acknowledged, nothing to apply here.
            return CallbackEvent(event=event, merchant_no=str(data.get("out_trade_no", "")))
        txn = self._transaction(data)
        if event != "TRANSACTION.SUCCESS" and txn.status == TxnStatus.SUCCESS:
            txn = dataclasses.replace(txn, status=TxnStatus.PENDING)
        return CallbackEvent(event=f"{event}/{data.get('trade_state')}", merchant_no=txn.merchant_no, transaction=txn)

    def callback_reply(self, *, ok: bool) -> CallbackReply:
        # v3 takes 200/204 as received; anything else is retried (up to 15 times over 24 h).
        return CallbackReply(204) if ok else json_reply(400, {"code": "FAIL", "message": "失败"})


def parse_trade_bill(text: str) -> list[RecordLine]:
    """Successful payments in a v3 trade bill (CSV, every value prefixed with a backtick)."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [cell.strip().lstrip("`") for cell in rows[0]]
    try:
        i_time, i_txn, i_no, i_state = (header.index(n) for n in ("交易时间", "微信订单号", "商户订单号", "交易状态"))
    except ValueError as error:
        raise GatewayUnavailable(_("微信支付账单格式无法识别。")) from error
    i_amount = header.index("订单金额") if "订单金额" in header else header.index("应结订单金额")
    lines = []
    for row in rows[1:]:
        cells = [cell.strip().lstrip("`") for cell in row]
        if not cells or cells[0].startswith("总"):
            break  # the summary block after the details
        if len(cells) < len(header) or cells[i_state] != "SUCCESS":
            continue
        paid_at = None
        with contextlib.suppress(ValueError):
            paid_at = datetime.datetime.strptime(cells[i_time], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
        lines.append(
            RecordLine(
                merchant_no=cells[i_no],
                gateway_txn_id=cells[i_txn],
                amount_fen=yuan_to_fen(cells[i_amount]),
                paid_at=paid_at,
            )
        )
    return lines
