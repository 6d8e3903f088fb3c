"""SMS backends behind one interface.

`ConsoleSmsBackend` (the default) logs the message and keeps it for the demo
inbox. `AliyunSmsBackend` speaks the Alibaba Cloud SMS RPC API (signature
version 1.0, HMAC-SHA1 over the canonical query): Chinese SMS providers only
send pre-approved templates, so each backend gets the template name and its
parameters as well as the rendered text.

`SmsChannel` adapts whichever backend is configured to the outbox's channel
interface; notifications use the template "notification" with the parameters
`title` and `content`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import logging
import urllib.parse
import urllib.request
import uuid
from abc import ABC, abstractmethod
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from certdesk.notifications.channels.base import ChannelBackend, DeliveryError, Outgoing
from certdesk.notifications.channels.demo import demo_inbox_keep
from certdesk.notifications.models import Channel

logger = logging.getLogger(__name__)

# Answers that no retry can fix: the number, the template or the signature is wrong.
PERMANENT_CODES = {
    "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.BLACK_KEY_CONTROL_LIMIT",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.INVALID_PARAMETERS",
}


class SmsDeliveryError(DeliveryError):
    """The provider refused or could not be reached; the caller may retry unless `permanent`."""


class SmsBackend(ABC):
    @abstractmethod
    def send(self, *, mobile: str, text: str, template: str, params: dict[str, str], out_id: str = "") -> str:
        """Send; return the provider's id for the message. `out_id` is our reference,
        which the provider echoes in delivery receipts."""


class ConsoleSmsBackend(SmsBackend):
    def send(self, *, mobile: str, text: str, template: str, params: dict[str, str], out_id: str = "") -> str:
        logger.info("SMS to %s: %s", mobile, text)
        demo_inbox_keep(channel=Channel.SMS, recipient=mobile, body=text)
        return ""


def _percent(value: str) -> str:
    return urllib.parse.quote(value, safe="~")


class AliyunSmsBackend(SmsBackend):
    """Template codes come from SMS_TEMPLATES, e.g. '{"verification_code": "SMS_123"}'."""

    def __init__(
        self,
        *,
        endpoint: str,
        access_key_id: str,
        secret: str,
        sign_name: str,
        templates: dict[str, str],
        timeout: float = 10,
    ) -> None:
        self.endpoint = endpoint
        self.access_key_id = access_key_id
        self.secret = secret
        self.sign_name = sign_name
        self.templates = templates
        self.timeout = timeout

    def signed_query(self, *, mobile: str, template: str, params: dict[str, str], out_id: str = "") -> str:
        query = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": mobile,
            "RegionId": "cn-hangzhou",
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": self.templates[template],
            "TemplateParam": json.dumps(params, ensure_ascii=False, separators=(",", ":")),
            "Timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        if out_id:
            query["OutId"] = out_id
        canonical = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in sorted(query.items()))
        to_sign = "GET&%2F&" + _percent(canonical)
        digest = hmac.new(f"{self.secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
        return "Signature=" + _percent(base64.b64encode(digest).decode()) + "&" + canonical

    def send(self, *, mobile: str, text: str, template: str, params: dict[str, str], out_id: str = "") -> str:
        url = f"{self.endpoint}/?{self.signed_query(mobile=mobile, template=template, params=params, out_id=out_id)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 (https URL from settings)
                answer = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise SmsDeliveryError(f"SMS provider unreachable: {exc}") from exc
        code = answer.get("Code")
        if code != "OK":
            raise SmsDeliveryError(
                f"SMS provider refused: {code} {answer.get('Message')}", permanent=code in PERMANENT_CODES
            )
        return str(answer.get("BizId", ""))


@cache
def sms_backend() -> SmsBackend:
    backend_class = import_string(settings.SMS_BACKEND)
    if backend_class is AliyunSmsBackend:
        return AliyunSmsBackend(
            endpoint=settings.SMS_PROVIDER_URL or "https://dysmsapi.aliyuncs.com",
            access_key_id=settings.SMS_PROVIDER_KEY_ID,
            secret=settings.SMS_PROVIDER_SECRET,
            sign_name=settings.SMS_SIGN_NAME,
            templates=settings.SMS_TEMPLATES,
        )
    backend: SmsBackend = backend_class()
    return backend


class SmsChannel(ChannelBackend):
    """Notifications over SMS through the configured backend."""

    channel = Channel.SMS

    def __init__(self, backend: SmsBackend | None = None) -> None:
        self.backend = backend or sms_backend()

    def deliver(self, message: Outgoing) -> str:
        # SendSms has no idempotency key; OutId at least ties a receipt (or a duplicate) to our row.
        biz_id = self.backend.send(
            mobile=message.recipient,
            text=f"{message.title}：{message.body}",
            template="notification",
            params={"title": message.title, "content": message.body},
            out_id=message.idempotency_id,
        )
        return biz_id or message.idempotency_id
