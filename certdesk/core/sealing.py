"""Personal data sealed at rest (ID numbers and the like).

`SealedCharField` stores Fernet tokens (AES-128-CBC + HMAC-SHA256) and gives
plain strings back to Python. The key comes from PII_SEAL_KEYS (newest first, so
keys can be rotated: old rows stay readable, new rows use the first key).
Sealed columns cannot be searched; keep a separate keyed hash if a lookup is
ever needed.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

_PREFIX = "sealed:"


@cache
def _sealer() -> MultiFernet:
    keys = list(settings.PII_SEAL_KEYS) or [
        # Embedded default: derived from SECRET_KEY, so a fresh checkout just works.
        base64.urlsafe_b64encode(hashlib.sha256(b"pii-seal:" + settings.SECRET_KEY.encode()).digest()).decode()
    ]
    return MultiFernet([Fernet(key) for key in keys])


def seal(value: str) -> str:
    return _PREFIX + _sealer().encrypt(value.encode()).decode()


def unseal(stored: str) -> str:
    if not stored.startswith(_PREFIX):
        raise ValueError("value is not sealed")
    try:
        return _sealer().decrypt(stored[len(_PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ValueError("sealed value cannot be opened with the configured keys") from None


class SealedCharField(models.TextField):
    """A short personal value (ID number…) kept encrypted in the database."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return unseal(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return seal(str(value))
