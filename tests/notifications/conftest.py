"""Real parts for the notification tests: an SMTP server on loopback (aiosmtpd)
and a local HTTP fake of the WeChat official-account API that answers with
the official request and response shapes."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.notifications.services import wechat_bind

APP_ID = "wx-test-app"
APP_SECRET = "wx-test-secret"
OPENID = "oUser-bound-0001"


# --- SMTP ----------------------------------------------------------------------------------------


class _Collector:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content, policy=policy.default))  # type: ignore[arg-type]
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpServer:
    """An SMTP server on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.collector = _Collector()
        self.controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.collector.messages

    def start(self) -> None:
        # A stopped Controller cannot be restarted (its loop is closed): make a new one.
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server(settings: Settings) -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


# --- WeChat --------------------------------------------------------------------------------------


@dataclass
class WechatState:
    followers: set[str] = field(default_factory=lambda: {OPENID})
    oauth_codes: dict[str, str] = field(default_factory=dict)  # code → openid, each usable once
    valid_tokens: set[str] = field(default_factory=set)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    template_sends: list[dict[str, Any]] = field(default_factory=list)  # messages WeChat accepted
    template_tokens: list[str] = field(default_factory=list)  # the access token of every send call, refused or not
    oauth_requests: list[dict[str, str]] = field(default_factory=list)
    qrcodes: list[dict[str, Any]] = field(default_factory=list)
    seen_client_msg_ids: set[tuple[str, str]] = field(default_factory=set)

    def revoke_tokens(self) -> None:
        """What happens when someone else fetches a token or WeChat expires it early."""
        self.valid_tokens.clear()


class _WechatHandler(BaseHTTPRequestHandler):
    state: WechatState

    def _answer(self, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(200)  # WeChat answers errors with 200 and an errcode
        self.send_header("Content-Type", "application/json; encoding=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _query(self) -> tuple[str, dict[str, str]]:
        parts = urllib.parse.urlsplit(self.path)
        return parts.path, dict(urllib.parse.parse_qsl(parts.query))

    def do_GET(self) -> None:
        path, query = self._query()
        state = self.state
        if path == "/cgi-bin/token":
            state.token_requests.append(query)
            if query.get("grant_type") != "client_credential" or query.get("appid") != APP_ID:
                return self._answer({"errcode": 40013, "errmsg": "invalid appid"})
            if query.get("secret") != APP_SECRET:
                return self._answer({"errcode": 40125, "errmsg": "invalid appsecret"})
            token = f"ACCESS_TOKEN_{len(state.token_requests)}"
            state.valid_tokens.add(token)
            return self._answer({"access_token": token, "expires_in": 7200})
        if path == "/sns/oauth2/access_token":
            state.oauth_requests.append(query)
            valid = query.get("appid") == APP_ID and query.get("secret") == APP_SECRET
            openid = state.oauth_codes.pop(query.get("code", ""), None)
            if not valid or query.get("grant_type") != "authorization_code" or openid is None:
                return self._answer({"errcode": 40029, "errmsg": "invalid code"})
            return self._answer(
                {
                    "access_token": "OAUTH_ACCESS_TOKEN",
                    "expires_in": 7200,
                    "refresh_token": "OAUTH_REFRESH_TOKEN",
                    "openid": openid,
                    "scope": "snsapi_base",
                }
            )
        self.send_error(404)

    def do_POST(self) -> None:
        path, query = self._query()
        state = self.state
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode())
        if path == "/cgi-bin/message/template/send":
            state.template_tokens.append(query.get("access_token", ""))
        if query.get("access_token") not in state.valid_tokens:
            return self._answer({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        if path == "/cgi-bin/message/template/send":
            if not {"touser", "template_id", "data"} <= payload.keys():
                return self._answer({"errcode": 47001, "errmsg": "data format error"})
            for name, item in payload["data"].items():
                if len(item["value"]) > 20:
                    return self._answer({"errcode": 47003, "errmsg": f"argument invalid! data.{name}.value"})
            if payload["touser"] not in state.followers:
                return self._answer({"errcode": 43004, "errmsg": "require subscribe"})
            key = (payload["touser"], payload.get("client_msg_id", ""))
            if key[1] and key in state.seen_client_msg_ids:
                return self._answer({"errcode": 0, "errmsg": "ok", "msgid": 0})  # sent once only
            state.seen_client_msg_ids.add(key)
            state.template_sends.append(payload)
            return self._answer({"errcode": 0, "errmsg": "ok", "msgid": 200000 + len(state.template_sends)})
        if path == "/cgi-bin/qrcode/create":
            state.qrcodes.append(payload)
            return self._answer(
                {
                    "ticket": f"gQH47joAAAAAAAAAASxodHRw{len(state.qrcodes)}",
                    "expire_seconds": payload["expire_seconds"],
                    "url": f"http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI{len(state.qrcodes)}",
                }
            )
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_wechat(settings: Settings) -> Iterator[WechatState]:
    state = WechatState()
    handler = type("Handler", (_WechatHandler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    settings.WECHAT_API_BASE = f"http://127.0.0.1:{server.server_port}"
    settings.WECHAT_APP_ID = APP_ID
    settings.WECHAT_APP_SECRET = APP_SECRET
    settings.WECHAT_TOKEN = "server-callback-token"
    settings.WECHAT_TIMEOUT = 5
    settings.WECHAT_BACKEND = "certdesk.notifications.channels.wechat.WechatTemplateChannel"
    settings.WECHAT_TEMPLATES = {
        "submitted": "TPL-SUBMITTED",
        "approved_pay": "TPL-APPROVED-PAY",
        "rejected": {"template_id": "TPL-REJECTED", "keys": ["character_string1", "phrase2", "thing3"]},
        "shipped": "TPL-SHIPPED",
    }
    yield state
    server.shutdown()
    server.server_close()


# --- people --------------------------------------------------------------------------------------


@pytest.fixture
def notified_user(db: None) -> User:
    """A customer with an e-mail address and a bound WeChat."""
    user = User.objects.create_user(mobile="13900000009", password="Notify-Pass-2026", email="owner@example.com")
    wechat_bind(user=user, openid=OPENID, via="test")
    return user


ORDER_CONTEXT = {"business_type": "证书新办", "order_number": "N20260101000001"}
