"""Settings of the key inventory, read at call time so `override_settings` works.

TOKENS_DEMO_DIR            where `tokens_make_demo` keeps its SoftHSM tokens
                           (default <BASE_DIR>/var/usbkeys, with softhsm2.conf inside)
TOKENS_DEMO_USER_PIN       the initial user PIN of demo keys (default 12345678)
TOKENS_PIN_MAX_RETRIES     wrong user PINs before an emulated key locks (default 6)
TOKENS_PKCS11_MODULE       the SoftHSM module that makes demo keys
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def demo_dir() -> Path:
    return Path(_get("TOKENS_DEMO_DIR", None) or Path(settings.BASE_DIR) / "var" / "usbkeys")


def demo_user_pin() -> str:
    return str(_get("TOKENS_DEMO_USER_PIN", "12345678"))


def pin_max_retries() -> int:
    return int(_get("TOKENS_PIN_MAX_RETRIES", 6))


def pkcs11_module() -> str:
    return str(_get("TOKENS_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"))
