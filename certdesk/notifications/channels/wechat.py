"""WeChat official account (公众号): template messages, OAuth and QR binding.

`WechatClient` speaks the official HTTP API at WECHAT_API_BASE (tests point it
at a local fake). The access token is kept in the database so every worker
shares one; it is refreshed shortly before it expires and once more when
WeChat says it is invalid (40001) or expired (42001).

`WechatTemplateChannel` sends one template message per notification;
`ConsoleWechatChannel` (the embedded default) keeps it for the demo inbox.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import json
import logging
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from certdesk.notifications.channels.base import ChannelBackend, DeliveryError, Outgoing
from certdesk.notifications.channels.demo import demo_inbox_keep
from certdesk.notifications.models import Channel, NotificationEvent, WechatAccessToken
from certdesk.notifications.texts import event_wechat_values

logger = logging.getLogger(__name__)

VALUE_MAX_CHARS = 20
TOKEN_EARLY_REFRESH = datetime.timedelta(minutes=5)
TOKEN_ERRCODES = {40001, 40014, 42001}  # invalid credential, invalid token, token expired
# Errors about this one message or recipient: retrying cannot help.
PERMANENT_ERRCODES = {
    40003,  # invalid openid
    40037,  # invalid template_id
    43004,  # the user does not follow the account
    43101,  # the user refused the message
    47003,  # a template field is invalid
}

_ZWJ = "\u200d"


def _extends_previous(char: str) -> bool:
    """Characters that belong to the one before them (combining marks, variation selectors, skin tones)."""
    code = ord(char)
    return (
        unicodedata.category(char) in {"Mn", "Me", "Mc"}
        or char == _ZWJ
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def wechat_value(value: str, limit: int = VALUE_MAX_CHARS) -> str:
    """Fit a template field value into WeChat's limit of `limit` characters.

    Whitespace (newlines included) is folded to single spaces. A longer value
    is cut and ends with "…"; the cut never separates a character from its
    combining marks, an emoji from its modifiers, or the halves of a flag.
    """
    text = unicodedata.normalize("NFC", " ".join(value.split()))
    if len(text) <= limit:
        return text
    cut = limit - 1  # room for the ellipsis
    while cut > 0 and (_extends_previous(text[cut]) or text[cut - 1] == _ZWJ):
        cut -= 1
    if cut > 0 and _regional_indicator(text[cut]):
        run = 0
        while cut - run - 1 >= 0 and _regional_indicator(text[cut - run - 1]):
            run += 1
        if run % 2:  # text[cut] is the second half of a flag
            cut -= 1
    return text[:cut] + "…"


class WechatApiError(DeliveryError):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}", permanent=errcode in PERMANENT_ERRCODES)
        self.errcode = errcode
        self.errmsg = errmsg


class WechatClient:
    def __init__(
        self,
        *,
        base: str | None = None,
        app_id: str | None = None,
        secret: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.base = (base or settings.WECHAT_API_BASE).rstrip("/")
        self.app_id = app_id if app_id is not None else settings.WECHAT_APP_ID
        self.secret = secret if secret is not None else settings.WECHAT_APP_SECRET
        self.timeout = timeout if timeout is not None else settings.WECHAT_TIMEOUT

    def _request(self, path: str, params: dict[str, str], payload: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        data = None
        headers = {}
        if payload is not None:
            # WeChat wants the Chinese as UTF-8, not as \\u escapes.
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")  # noqa: S310 (URL from settings)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"WeChat API unreachable: {exc!r}") from exc
        if not isinstance(answer, dict):
            raise DeliveryError(f"WeChat API answered {answer!r}")
        errcode = int(answer.get("errcode", 0) or 0)
        if errcode:
            raise WechatApiError(errcode, str(answer.get("errmsg", "")))
        return answer

    def access_token(self, *, stale: str = "") -> str:
        """The shared token; `stale` is one WeChat just refused, so never hand it out again."""
        now = timezone.now()
        row = WechatAccessToken.objects.filter(app_id=self.app_id).first()
        if row is not None and row.expires_at > now and row.token != stale:
            return row.token
        answer = self._request(
            "/cgi-bin/token", {"grant_type": "client_credential", "appid": self.app_id, "secret": self.secret}
        )
        token = str(answer["access_token"])
        lifetime = datetime.timedelta(seconds=int(answer.get("expires_in", 7200)))
        expires_at = now + max(lifetime - TOKEN_EARLY_REFRESH, lifetime / 2)
        with contextlib.suppress(IntegrityError):  # another worker stored its token first; ours is valid too
            WechatAccessToken.objects.update_or_create(
                app_id=self.app_id, defaults={"token": token, "expires_at": expires_at}
            )
        return token

    def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with the access token, fetching a fresh one once if WeChat refuses it."""
        token = self.access_token()
        try:
            return self._request(path, {"access_token": token}, payload)
        except WechatApiError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
            logger.info("WeChat refused the access token (%s); refreshing once", exc.errcode)
            return self._request(path, {"access_token": self.access_token(stale=token)}, payload)

    def template_send(self, payload: dict[str, Any]) -> str:
        answer = self.call("/cgi-bin/message/template/send", payload)
        return str(answer.get("msgid", ""))

    def qrcode_create(self, *, scene_str: str, expire_seconds: int) -> dict[str, Any]:
        """A temporary parametric QR code; its `url` is what the QR image encodes."""
        return self.call(
            "/cgi-bin/qrcode/create",
            {
                "expire_seconds": expire_seconds,
                "action_name": "QR_STR_SCENE",
                "action_info": {"scene": {"scene_str": scene_str}},
            },
        )

    def oauth_openid(self, *, code: str) -> str:
        """Exchange an OAuth (snsapi_base) code for the user's openid."""
        answer = self._request(
            "/sns/oauth2/access_token",
            {"appid": self.app_id, "secret": self.secret, "code": code, "grant_type": "authorization_code"},
        )
        openid = str(answer.get("openid", ""))
        if not openid:
            raise DeliveryError("WeChat OAuth answer has no openid")
        return openid


def wechat_oauth_authorize_url(*, redirect_uri: str, state: str) -> str:
    # WeChat checks the parameters in exactly this order.
    query = urllib.parse.urlencode(
        [
            ("appid", settings.WECHAT_APP_ID),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", "snsapi_base"),
            ("state", state),
        ]
    )
    return f"{settings.WECHAT_OAUTH_AUTHORIZE_URL}?{query}#wechat_redirect"


def wechat_signature_valid(*, signature: str, timestamp: str, nonce: str, token: str | None = None) -> bool:
    """The server-callback check: sha1 over the sorted token, timestamp and nonce."""
    token = settings.WECHAT_TOKEN if token is None else token
    if not token:
        return False  # not configured: accept nothing
    expected = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()  # noqa: S324 (WeChat's scheme)
    return hmac.compare_digest(expected, signature)


def wechat_templates() -> dict[str, tuple[str, list[str]]]:
    """WECHAT_TEMPLATES: event → template id, or → {"template_id": …, "keys": [field names]}."""
    templates: dict[str, tuple[str, list[str]]] = {}
    for event, entry in settings.WECHAT_TEMPLATES.items():
        if isinstance(entry, str):
            template_id, keys = entry, []
        else:
            template_id, keys = str(entry.get("template_id", "")), [str(key) for key in entry.get("keys", [])]
        if template_id:
            templates[event] = (template_id, keys)
    return templates


def wechat_template_data(*, event: NotificationEvent, context: dict[str, str], keys: list[str]) -> dict[str, Any]:
    values = event_wechat_values(event=event, context=context)
    names = keys or [f"keyword{n}" for n in range(1, len(values) + 1)]
    return {name: {"value": wechat_value(value)} for name, value in zip(names, values, strict=False)}


class WechatTemplateChannel(ChannelBackend):
    channel = Channel.WECHAT

    def __init__(self, client: WechatClient | None = None) -> None:
        self.client = client or WechatClient()
        self.templates = wechat_templates()

    def handles(self, event: NotificationEvent) -> bool:
        return event.value in self.templates

    def payload(self, message: Outgoing) -> dict[str, Any]:
        if message.event.value not in self.templates:
            raise DeliveryError(f"no WeChat template configured for {message.event.value}", permanent=True)
        template_id, keys = self.templates[message.event.value]
        return {
            "touser": message.recipient,
            "template_id": template_id,
            "url": message.url,
            # WeChat sends one message per openid and client_msg_id (for about 10 minutes).
            "client_msg_id": message.idempotency_id,
            "data": wechat_template_data(event=message.event, context=message.context, keys=keys),
        }

    def deliver(self, message: Outgoing) -> str:
        return self.client.template_send(self.payload(message))


class ConsoleWechatChannel(ChannelBackend):
    """Logs the template message and keeps it for the demo inbox."""

    channel = Channel.WECHAT

    def deliver(self, message: Outgoing) -> str:
        data = wechat_template_data(event=message.event, context=message.context, keys=[])
        lines = [message.title, *(field["value"] for field in data.values())]
        if message.url:
            lines.append(f"详情：{message.url}")
        body = "\n".join(lines)
        logger.info("WeChat to %s: %s", message.recipient, body)
        demo_inbox_keep(channel=Channel.WECHAT, recipient=message.recipient, subject=message.title, body=body)
        return ""
