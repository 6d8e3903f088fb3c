"""Gateway amounts. WeChat speaks integer fen; Alipay and the bills speak yuan
strings ("123.45"), converted exactly with Decimal, never through float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from certdesk.core.money import fen_to_yuan_text

_CENT = Decimal("0.01")


def fen_to_yuan(fen: int) -> str:
    return fen_to_yuan_text(fen)


def yuan_to_fen(text: str) -> int:
    """'123.45' → 12345. Raises ValueError for anything that is not a yuan amount with at most two decimals."""
    cleaned = (text or "").strip().replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    if not value.is_finite() or value != value.quantize(_CENT):
        raise ValueError(f"not an amount in yuan with at most two decimals: {text!r}")
    return int(value * 100)
