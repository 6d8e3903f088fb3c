"""Signed tokens that say which account a WeChat binding is for.

The binding is finished inside WeChat (the OAuth redirect opens in WeChat's
browser, the QR scan arrives as a server event), where the portal session is
not available, so the token itself names the user. It is alphanumeric (the
OAuth `state` allows only [a-zA-Z0-9], up to 128 bytes; a QR `scene_str` up to
64 characters), expires after WECHAT_BINDING_MAX_AGE seconds and includes the
account's binding version, so it stops working once a binding is made or
removed.
"""

from __future__ import annotations

import datetime
import hmac

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

_SALT = "certdesk.notifications.wechat-binding"


def _signature(user_id: int, issued: int, version: int) -> str:
    return salted_hmac(_SALT, f"{user_id}x{issued}x{version}", algorithm="sha256").hexdigest()[:24]


def binding_token_make(*, user_id: int, version: int, now: datetime.datetime | None = None) -> str:
    issued = int((now or timezone.now()).timestamp())
    return f"{user_id}x{issued}x{_signature(user_id, issued, version)}"


def binding_token_user_id(token: str) -> int | None:
    """The user a token claims to be for (not yet verified)."""
    parts = token.split("x")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    return int(parts[0])


def binding_token_valid(*, token: str, version: int, now: datetime.datetime | None = None) -> bool:
    parts = token.split("x")
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        return False
    user_id, issued = int(parts[0]), int(parts[1])
    age = (now or timezone.now()).timestamp() - issued
    if not -60 <= age <= settings.WECHAT_BINDING_MAX_AGE:  # a little clock skew between hosts
        return False
    return hmac.compare_digest(parts[2], _signature(user_id, issued, version))
