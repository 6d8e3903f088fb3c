"""The Aliyun adapter against a local HTTP fake that checks what the real API checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from certdesk.notifications.channels.base import Outgoing
from certdesk.notifications.channels.sms import AliyunSmsBackend, SmsChannel, SmsDeliveryError
from certdesk.notifications.models import NotificationEvent

SECRET = "test-secret"


def _server_side_signature(query: list[tuple[str, str]]) -> str:
    # The provider's verification as its documentation states it, written from the receiving end.
    def enc(v: str) -> str:
        return urllib.parse.quote(v, safe="~")

    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(query))
    to_sign = "GET&%2F&" + enc(canonical)
    return base64.b64encode(hmac.new(f"{SECRET}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


class FakeAliyun(BaseHTTPRequestHandler):
    received: list[dict[str, str]] = []
    answer_code = "OK"

    def do_GET(self) -> None:
        pairs = urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
        signature = dict(pairs).get("Signature", "")
        rest = [(k, v) for k, v in pairs if k != "Signature"]
        ok = hmac.compare_digest(signature, _server_side_signature(rest))
        code = self.answer_code if ok else "SignatureDoesNotMatch"
        FakeAliyun.received.append(dict(rest))
        body = json.dumps({"Code": code, "Message": "fake"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_provider() -> Iterator[str]:
    FakeAliyun.received = []
    FakeAliyun.answer_code = "OK"
    server = HTTPServer(("127.0.0.1", 0), FakeAliyun)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _backend(endpoint: str, secret: str = SECRET) -> AliyunSmsBackend:
    return AliyunSmsBackend(
        endpoint=endpoint,
        access_key_id="LTAI-test",
        secret=secret,
        sign_name="东方中讯",
        templates={"verification_code": "SMS_000001"},
        timeout=5,
    )


def test_signed_request_accepted(fake_provider: str) -> None:
    _backend(fake_provider).send(
        mobile="13800000001", text="…", template="verification_code", params={"code": "123456"}
    )
    sent = FakeAliyun.received[0]
    assert sent["PhoneNumbers"] == "13800000001"
    assert sent["TemplateCode"] == "SMS_000001"
    assert json.loads(sent["TemplateParam"]) == {"code": "123456"}
    assert sent["SignName"] == "东方中讯"


def test_wrong_secret_is_refused_by_provider(fake_provider: str) -> None:
    with pytest.raises(SmsDeliveryError, match="SignatureDoesNotMatch"):
        _backend(fake_provider, secret="wrong").send(
            mobile="13800000001", text="…", template="verification_code", params={"code": "1"}
        )


def test_provider_refusal_and_outage_raise(fake_provider: str) -> None:
    FakeAliyun.answer_code = "isv.BUSINESS_LIMIT_CONTROL"
    with pytest.raises(SmsDeliveryError, match="BUSINESS_LIMIT_CONTROL"):
        _backend(fake_provider).send(mobile="13800000001", text="…", template="verification_code", params={})
    with pytest.raises(SmsDeliveryError, match="unreachable"):
        _backend("http://127.0.0.1:9").send(mobile="13800000001", text="…", template="verification_code", params={})


def test_notification_goes_out_as_the_notification_template_with_out_id(fake_provider: str) -> None:
    backend = AliyunSmsBackend(
        endpoint=fake_provider,
        access_key_id="LTAI-test",
        secret=SECRET,
        sign_name="东方中讯",
        templates={"notification": "SMS_000002"},
        timeout=5,
    )
    message = Outgoing(
        dedupe_key="order:N1:submitted:sms",
        recipient="13800000001",
        event=NotificationEvent.SUBMITTED,
        title="订单已提交",
        body="您的证书新办订单N1已提交。",
        url="",
        context={},
    )
    SmsChannel(backend).deliver(message)
    sent = FakeAliyun.received[0]
    assert sent["TemplateCode"] == "SMS_000002"
    assert json.loads(sent["TemplateParam"]) == {"title": "订单已提交", "content": "您的证书新办订单N1已提交。"}
    assert sent["OutId"] == message.idempotency_id


def test_refusals_no_retry_can_fix_are_permanent(fake_provider: str) -> None:
    FakeAliyun.answer_code = "isv.MOBILE_NUMBER_ILLEGAL"
    with pytest.raises(SmsDeliveryError) as refused:
        _backend(fake_provider).send(mobile="1380000000", text="…", template="verification_code", params={})
    assert refused.value.permanent
    FakeAliyun.answer_code = "isv.BUSINESS_LIMIT_CONTROL"  # rate limit: later may work
    with pytest.raises(SmsDeliveryError) as limited:
        _backend(fake_provider).send(mobile="13800000001", text="…", template="verification_code", params={})
    assert not limited.value.permanent
