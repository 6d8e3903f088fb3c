"""Local stand-ins for the WeChat Pay v3 and Alipay open-API servers.

Only the network boundary is fake: each runs a real HTTP server on loopback,
checks the merchant's request signatures with the merchant's public key, signs
its answers and its notifications with its own private key (RSA, SHA-256,
PKCS#1 v1.5), encrypts WeChat resources with AES-256-GCM, and keeps a ledger
(trades, refunds, bills) so that query, close, refund and reconciliation are
answered from state, not from canned replies. Keys are made by the tests.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BEIJING = ZoneInfo("Asia/Shanghai")


def rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class _Server:
    """A threaded HTTP server on 127.0.0.1 that hands every request to `dispatch`."""

    def __init__(self, dispatch: Callable[[str, str, dict[str, str], bytes], Response]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                response = dispatch(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        self.thread.start()
        return self.base_url

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _beijing_now() -> datetime.datetime:
    return datetime.datetime.now(BEIJING).replace(microsecond=0)


# ============================================================================ WeChat Pay


class FakeWeChatPay:
    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        apiv3_key: str,
        merchant_key: rsa.RSAPrivateKey,
        platform_key: rsa.RSAPrivateKey,
        platform_serial: str,
        platform_cert_pem: str = "",
    ) -> None:
        self.mchid, self.appid, self.apiv3_key = mchid, appid, apiv3_key
        self.merchant_public = merchant_key.public_key()
        self.platform_key = platform_key
        self.platform_serial = platform_serial
        self.platform_cert_pem = platform_cert_pem
        self.trades: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.bills: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.refund_status = "SUCCESS"
        self.down = False
        self.lock = threading.Lock()
        self.server = _Server(self.dispatch)

    def start(self) -> str:
        return self.server.start()

    def stop(self) -> None:
        self.server.stop()

    # -- the API ----------------------------------------------------------------

    def _signed(self, status: int, payload: dict[str, Any] | None) -> Response:
        text = json.dumps(payload, ensure_ascii=False) if payload is not None else ""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        return Response(
            status,
            text.encode(),
            headers={
                "Wechatpay-Timestamp": timestamp,
                "Wechatpay-Nonce": nonce,
                "Wechatpay-Serial": self.platform_serial,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                "Wechatpay-Signature": rsa_sign(self.platform_key, f"{timestamp}\n{nonce}\n{text}\n"),
            },
        )

    def _authorised(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
        auth = headers.get("Authorization", "")
        if not auth.startswith("WECHATPAY2-SHA256-RSA2048 "):
            return False
        parts = dict(re.findall(r'(\w+)="([^"]*)"', auth))
        if parts.get("mchid") != self.mchid:
            return False
        message = f"{method}\n{path}\n{parts.get('timestamp')}\n{parts.get('nonce_str')}\n{body.decode()}\n"
        return rsa_verify(self.merchant_public, message, parts.get("signature", ""))

    def _transaction(self, trade: dict[str, Any]) -> dict[str, Any]:
        data = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": trade["out_trade_no"],
            "trade_type": "NATIVE",
            "trade_state": trade["state"],
            "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "未支付", "CLOSED": "已关闭"}.get(trade["state"], ""),
            "amount": {"total": trade["total"], "currency": "CNY"},
        }
        if trade.get("transaction_id"):
            data.update(
                transaction_id=trade["transaction_id"],
                success_time=trade["success_time"],
                bank_type="OTHERS",
                payer={"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            )
            data["amount"].update(payer_total=trade["total"], payer_currency="CNY")
        return data

    def dispatch(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
        with self.lock:
            self.requests.append((method, raw_path))
            if self.down:
                return Response(503, b"")
            split = urllib.parse.urlsplit(raw_path)
            query = dict(urllib.parse.parse_qsl(split.query))
            if split.path == "/v3/certificates":
                return self._certificates()
            if split.path == "/v3/billdownload/file":
                content = self.bills.get(query.get("token", ""))
                return Response(200, content, "application/octet-stream") if content else Response(404)
            if not self._authorised(method, raw_path, headers, body):
                return self._signed(401, {"code": "SIGN_ERROR", "message": "签名错误"})
            data = json.loads(body) if body else {}
            return self._route(method, split.path, query, data)

    def _route(self, method: str, path: str, query: dict[str, str], data: dict[str, Any]) -> Response:
        if method == "POST" and path == "/v3/pay/transactions/native":
            if data.get("mchid") != self.mchid or data.get("appid") != self.appid:
                return self._signed(400, {"code": "PARAM_ERROR", "message": "mchid/appid"})
            no = data["out_trade_no"]
            trade = self.trades.setdefault(
                no,
                {
                    "out_trade_no": no,
                    "total": data["amount"]["total"],
                    "description": data["description"],
                    "time_expire": data.get("time_expire"),
                    "state": "NOTPAY",
                    "code_url": f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(6)}",
                },
            )
            if trade["total"] != data["amount"]["total"]:
                return self._signed(400, {"code": "OUT_TRADE_NO_USED", "message": "商户订单号重复"})
            return self._signed(200, {"code_url": trade["code_url"]})
        match = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)(/close)?", path)
        if match:
            found = self.trades.get(match.group(1))
            if found is None:
                return self._signed(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
            trade = found
            if match.group(2):
                if trade["state"] == "NOTPAY":
                    trade["state"] = "CLOSED"
                    return self._signed(204, None)
                return self._signed(400, {"code": "ORDERPAID" if trade["state"] == "SUCCESS" else "ORDER_CLOSED"})
            if query.get("mchid") != self.mchid:
                return self._signed(400, {"code": "PARAM_ERROR"})
            return self._signed(200, self._transaction(trade))
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return self._refund(data)
        match = re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", path)
        if match:
            refund = self.refunds.get(match.group(1))
            return self._signed(200, refund) if refund else self._signed(404, {"code": "RESOURCE_NOT_EXISTS"})
        if path == "/v3/bill/tradebill":
            return self._bill(query["bill_date"])
        return self._signed(404, {"code": "NOT_FOUND"})

    def _refund(self, data: dict[str, Any]) -> Response:
        existing = self.refunds.get(data["out_refund_no"])
        if existing is not None:  # one refund per out_refund_no, however often asked
            return self._signed(200, existing)
        trade = self.trades.get(data.get("out_trade_no", ""))
        if trade is None or trade["state"] not in ("SUCCESS", "REFUND"):
            return self._signed(400, {"code": "INVALID_REQUEST", "message": "订单未支付"})
        if data["amount"]["total"] != trade["total"] or data["amount"]["refund"] > trade["total"]:
            return self._signed(400, {"code": "PARAM_ERROR", "message": "金额不符"})
        refund = {
            "refund_id": "50" + secrets.token_hex(10),
            "out_refund_no": data["out_refund_no"],
            "transaction_id": trade["transaction_id"],
            "out_trade_no": trade["out_trade_no"],
            "channel": "ORIGINAL",
            "status": self.refund_status,
            "amount": {"refund": data["amount"]["refund"], "total": trade["total"], "currency": "CNY"},
        }
        self.refunds[data["out_refund_no"]] = refund
        trade["state"] = "REFUND"
        return self._signed(200, refund)

    def _bill(self, bill_date: str) -> Response:
        header = (
            "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
            "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
            "手续费,费率,订单金额,申请退款金额,费率备注"
        )
        rows = []
        for trade in self.trades.values():
            if not trade.get("success_time") or not trade["success_time"].startswith(bill_date):
                continue
            when = datetime.datetime.fromisoformat(trade["success_time"]).strftime("%Y-%m-%d %H:%M:%S")
            yuan = f"{trade['total'] // 100}.{trade['total'] % 100:02d}"
            values = [when, self.appid, self.mchid, "0", "", trade["transaction_id"], trade["out_trade_no"], "oUpF8u",
                      "NATIVE", "SUCCESS", "OTHERS", "CNY", yuan, "0.00", "0", "0", "0.00", "0.00", "", "",
                      trade["description"], "", "0.00", "0.60%", yuan, "0.00", ""]  # fmt: skip
            rows.append(",".join("`" + v for v in values))
        if not rows:
            return self._signed(400, {"code": "NO_STATEMENT_EXIST", "message": "账单不存在"})
        summary = (
            "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n`"
            + str(len(rows))
        )
        raw = ("\ufeff" + header + "\n" + "\n".join(rows) + "\n" + summary + "\n").encode()
        token = secrets.token_urlsafe(8)
        self.bills[token] = gzip.compress(raw)
        return self._signed(
            200,
            {
                "hash_type": "SHA1",
                "hash_value": hashlib.sha1(raw).hexdigest(),  # noqa: S324 - what the bill API uses
                "download_url": f"{self.server.base_url}/v3/billdownload/file?token={token}",
            },
        )

    def _encrypt(self, plaintext: str, associated_data: str) -> dict[str, str]:
        nonce = secrets.token_hex(6)  # 12 characters, as WeChat sends
        ciphertext = AESGCM(self.apiv3_key.encode()).encrypt(
            nonce.encode(), plaintext.encode(), associated_data.encode()
        )
        return {
            "algorithm": "AEAD_AES_256_GCM",
            "nonce": nonce,
            "associated_data": associated_data,
            "ciphertext": base64.b64encode(ciphertext).decode(),
        }

    def _certificates(self) -> Response:
        if not self.platform_cert_pem:
            return self._signed(404, {"code": "NOT_FOUND"})
        now = datetime.datetime.now(datetime.UTC)
        entry = {
            "serial_no": self.platform_serial,
            "effective_time": (now - datetime.timedelta(days=1)).isoformat(),
            "expire_time": (now + datetime.timedelta(days=365)).isoformat(),
            "encrypt_certificate": self._encrypt(self.platform_cert_pem, "certificate"),
        }
        return self._signed(200, {"data": [entry]})

    # -- what the payer and WeChat do --------------------------------------------

    def user_pays(self, out_trade_no: str, *, when: datetime.datetime | None = None) -> dict[str, Any]:
        with self.lock:
            trade = self.trades[out_trade_no]
            assert trade["state"] == "NOTPAY", trade["state"]
            trade.update(
                state="SUCCESS",
                transaction_id="42" + secrets.token_hex(13)[:26],
                success_time=(when or _beijing_now()).astimezone(BEIJING).replace(microsecond=0).isoformat(),
            )
            return trade

    def notification(
        self,
        out_trade_no: str,
        *,
        resource: dict[str, Any] | None = None,
        event_type: str = "TRANSACTION.SUCCESS",
        timestamp: int | None = None,
        signature: str | None = None,
        serial: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The callback WeChat Pay sends for a trade: (raw body, headers), signed by the platform key."""
        with self.lock:
            data = {**self._transaction(self.trades[out_trade_no]), **(resource or {})}
        envelope = {
            "id": str(uuid.uuid4()),
            "create_time": _beijing_now().isoformat(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                **self._encrypt(json.dumps(data, ensure_ascii=False), "transaction"),
            },
        }
        body = json.dumps(envelope, ensure_ascii=False)
        ts, nonce = str(int(time.time()) if timestamp is None else timestamp), secrets.token_hex(16)
        return body.encode(), {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": serial or self.platform_serial,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Wechatpay-Signature": signature or rsa_sign(self.platform_key, f"{ts}\n{nonce}\n{body}\n"),
        }


# ============================================================================ Alipay


class FakeAlipay:
    def __init__(
        self, *, app_id: str, seller_id: str, app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey
    ) -> None:
        self.app_id, self.seller_id = app_id, seller_id
        self.app_public = app_key.public_key()
        self.alipay_key = alipay_key
        self.trades: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.bills: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self.server = _Server(self.dispatch)

    def start(self) -> str:
        return self.server.start() + "/gateway.do"

    def stop(self) -> None:
        self.server.stop()

    @staticmethod
    def content(fields: dict[str, str]) -> str:
        return "&".join(f"{k}={fields[k]}" for k in sorted(fields))

    def _signed(self, method: str, payload: dict[str, Any]) -> Response:
        inner = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        name = method.replace(".", "_") + "_response"
        text = f'{{"{name}":{inner},"sign":"{rsa_sign(self.alipay_key, inner)}"}}'
        return Response(200, text.encode(), "text/html;charset=utf-8")

    def dispatch(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
        split = urllib.parse.urlsplit(raw_path)
        if split.path.startswith("/bill/"):
            content = self.bills.get(split.path.removeprefix("/bill/"))
            return Response(200, content, "application/zip") if content else Response(404)
        params = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        with self.lock:
            self.requests.append(params.get("method", ""))
            signature = params.pop("sign", "")
            if not rsa_verify(self.app_public, self.content(params), signature) or params.get("app_id") != self.app_id:
                error = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"}
                return Response(200, json.dumps({"error_response": error}).encode())
            biz = json.loads(params.get("biz_content") or "{}")
            return self._route(params["method"], biz, params)

    def _trade_view(self, trade: dict[str, Any]) -> dict[str, Any]:
        return {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade["trade_no"],
            "out_trade_no": trade["out_trade_no"],
            "buyer_logon_id": "csq***@sandbox.com",
            "trade_status": trade["status"],
            "total_amount": trade["total_amount"],
            **({"send_pay_date": trade["gmt_payment"]} if trade.get("gmt_payment") else {}),
        }

    def _route(self, method: str, biz: dict[str, Any], params: dict[str, str]) -> Response:
        not_found = {
            "code": "40004",
            "msg": "Business Failed",
            "sub_code": "ACQ.TRADE_NOT_EXIST",
            "sub_msg": "交易不存在",
        }
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if method == "alipay.trade.precreate":
            if trade is None:
                trade = self.trades[biz["out_trade_no"]] = {
                    "out_trade_no": biz["out_trade_no"],
                    "total_amount": biz["total_amount"],
                    "subject": biz["subject"],
                    "notify_url": params.get("notify_url"),
                    "timeout_express": biz.get("timeout_express"),
                    "scanned": False,
                    "status": "WAIT_BUYER_PAY",
                    "trade_no": "2026" + secrets.token_hex(12),
                    "qr_code": f"https://qr.alipay.com/bax0{secrets.token_hex(8)}",
                }
            return self._signed(
                method,
                {"code": "10000", "msg": "Success", "out_trade_no": trade["out_trade_no"], "qr_code": trade["qr_code"]},
            )
        if method == "alipay.trade.query":
            if trade is None or not trade["scanned"]:
                return self._signed(method, not_found)
            return self._signed(method, self._trade_view(trade))
        if method == "alipay.trade.close":
            if trade is None:
                return self._signed(method, not_found)
            if trade["status"] == "WAIT_BUYER_PAY":
                trade["status"] = "TRADE_CLOSED"
                answer = {"code": "10000", "msg": "Success", "out_trade_no": trade["out_trade_no"]}
                return self._signed(method, answer if trade["scanned"] else not_found)
            return self._signed(
                method, {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_STATUS_ERROR"}
            )
        if method == "alipay.trade.refund":
            return self._refund(method, trade, biz)
        if method == "alipay.trade.fastpay.refund.query":
            refund = self.refunds.get(biz.get("out_request_no", ""))
            answer = {"code": "10000", "msg": "Success"}
            if refund:
                answer.update(
                    out_request_no=refund["out_request_no"],
                    refund_amount=refund["refund_amount"],
                    refund_status="REFUND_SUCCESS",
                )
            return self._signed(method, answer)
        if method == "alipay.data.dataservice.bill.downloadurl.query":
            return self._bill(method, biz["bill_date"])
        return self._signed(method, {"code": "40004", "msg": "Business Failed", "sub_code": "isv.invalid-method"})

    def _refund(self, method: str, trade: dict[str, Any] | None, biz: dict[str, Any]) -> Response:
        if trade is None or not trade["scanned"]:
            return self._signed(method, {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"})
        existing = self.refunds.get(biz["out_request_no"])
        if existing is None:
            if trade["status"] not in ("TRADE_SUCCESS",) or biz["refund_amount"] != trade["total_amount"]:
                return self._signed(
                    method, {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_STATUS_ERROR"}
                )
            existing = self.refunds[biz["out_request_no"]] = {
                "out_request_no": biz["out_request_no"],
                "refund_amount": biz["refund_amount"],
                "out_trade_no": trade["out_trade_no"],
            }
            trade["status"] = "TRADE_CLOSED"
            fund_change = "Y"
        else:
            fund_change = "N"
        return self._signed(
            method,
            {"code": "10000", "msg": "Success", "trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"],
             "refund_fee": existing["refund_amount"], "fund_change": fund_change},
        )  # fmt: skip

    def _bill(self, method: str, bill_date: str) -> Response:
        header = (
            "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
            "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
            "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
        )
        rows = []
        for trade in self.trades.values():
            if not trade.get("gmt_payment", "").startswith(bill_date):
                continue
            values = [trade["trade_no"], trade["out_trade_no"], "交易", trade["subject"], trade["gmt_payment"],
                      trade["gmt_payment"], "", "", "", "", "csq***@sandbox.com", trade["total_amount"],
                      trade["total_amount"], "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", "",
                      "-0.42", "0.00", ""]  # fmt: skip
            rows.append(",".join(v + "\t" for v in values))
        if not rows:
            return self._signed(method, {"code": "40004", "msg": "Business Failed", "sub_code": "isp.bill_not_exist"})
        day = bill_date.replace("-", "")
        detail = (
            f"#支付宝业务明细查询\n#账号：[{self.seller_id}0156]\n#起始日期：[{bill_date} 00:00:00]\n"
            "#-----------------------------------------业务明细列表----------------------------------------\n"
            + header + "\n" + "\n".join(rows) + "\n"
            "#-----------------------------------------业务明细列表结束------------------------------------\n"
            f"#交易合计：{len(rows)}笔，退款合计：0笔\n"
        )  # fmt: skip
        summary = f"#支付宝业务汇总查询\n门店编号,门店名称,交易订单总笔数,退款订单总笔数\n,,{len(rows)},0\n"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(f"{self.seller_id}_{day}_业务明细(汇总).csv", summary.encode("gbk"))
            archive.writestr(f"{self.seller_id}_{day}_业务明细.csv", detail.encode("gbk"))
        token = secrets.token_hex(8) + ".zip"
        self.bills[token] = buffer.getvalue()
        url = f"{self.server.base_url}/bill/{token}"
        return self._signed(method, {"code": "10000", "msg": "Success", "bill_download_url": url})

    # -- what the payer and Alipay do --------------------------------------------

    def user_pays(self, out_trade_no: str, *, when: datetime.datetime | None = None) -> dict[str, Any]:
        with self.lock:
            trade = self.trades[out_trade_no]
            assert trade["status"] == "WAIT_BUYER_PAY", trade["status"]
            trade.update(
                scanned=True,
                status="TRADE_SUCCESS",
                gmt_payment=(when or _beijing_now()).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            )
            return trade

    def notification(
        self, out_trade_no: str, *, overrides: dict[str, str] | None = None, sign_key: rsa.RSAPrivateKey | None = None
    ) -> bytes:
        """The asynchronous notification Alipay posts (form-encoded), signed with RSA2."""
        with self.lock:
            trade = self.trades[out_trade_no]
            fields = {
                "notify_time": _beijing_now().strftime("%Y-%m-%d %H:%M:%S"),
                "notify_type": "trade_status_sync",
                "notify_id": secrets.token_hex(16),
                "app_id": self.app_id,
                "charset": "utf-8",
                "version": "1.0",
                "sign_type": "RSA2",
                "trade_no": trade["trade_no"],
                "out_trade_no": trade["out_trade_no"],
                "buyer_id": "2088102177846880",
                "buyer_logon_id": "csq***@sandbox.com",
                "seller_id": self.seller_id,
                "trade_status": trade["status"],
                "total_amount": trade["total_amount"],
                "receipt_amount": trade["total_amount"],
                "buyer_pay_amount": trade["total_amount"],
                "subject": trade["subject"],
                "gmt_create": trade.get("gmt_payment", ""),
                "gmt_payment": trade.get("gmt_payment", ""),
                "fund_bill_list": json.dumps([{"amount": trade["total_amount"], "fundChannel": "ALIPAYACCOUNT"}]),
            }
        fields.update(overrides or {})
        unsigned = {k: v for k, v in fields.items() if k not in ("sign", "sign_type")}
        fields["sign"] = rsa_sign(sign_key or self.alipay_key, self.content(unsigned))
        return urllib.parse.urlencode(fields).encode()
