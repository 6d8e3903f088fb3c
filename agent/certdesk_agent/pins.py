"""PIN rules the agent checks before a PIN reaches the key.

USB keys take 6–16 characters for the user PIN (SKF keys and most PKCS#11
modules); the administrator (SO) PIN that the portal generates is 8–32.
"""

from __future__ import annotations

import string

from certdesk_agent.errors import PinPolicyError

USER_PIN_MIN = 6
USER_PIN_MAX = 16
ADMIN_PIN_MIN = 8
ADMIN_PIN_MAX = 32
_ALLOWED = frozenset(string.ascii_letters + string.digits + string.punctuation)


def _check(pin: str, *, lo: int, hi: int, what: str) -> None:
    if not lo <= len(pin) <= hi:
        raise PinPolicyError(f"{what}须为 {lo}–{hi} 位。")
    if not set(pin) <= _ALLOWED:
        raise PinPolicyError(f"{what}只能包含字母、数字和英文标点，不能有空格或中文。")


def user_pin_check(pin: str) -> None:
    """A new user PIN (unlock, change PIN)."""
    _check(pin, lo=USER_PIN_MIN, hi=USER_PIN_MAX, what="新 PIN 码")


def admin_pin_check(pin: str) -> None:
    _check(pin, lo=ADMIN_PIN_MIN, hi=ADMIN_PIN_MAX, what="管理员 PIN")
