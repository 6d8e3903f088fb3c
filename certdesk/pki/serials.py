"""Serial numbers: 126 random bits with bit 126 set.

That keeps every serial positive, 16 octets in DER (well under RFC 5280's 20)
and 32 hex digits, with far more than the 64 bits of CSPRNG output the CA/B
rules ask for. The canonical text form is upper-case hex, even length, as
`openssl x509 -serial` prints it.
"""

from __future__ import annotations

import re
import secrets

from certdesk.pki.errors import CertificateNotFound

SERIAL_RANDOM_BITS = 126
_HEX = re.compile(r"^[0-9A-F]+$")


def serial_new() -> int:
    return secrets.randbits(SERIAL_RANDOM_BITS) | (1 << SERIAL_RANDOM_BITS)


def serial_hex(number: int) -> str:
    text = format(number, "X")
    return text if len(text) % 2 == 0 else "0" + text


def serial_normalise(value: str | int) -> str:
    """`0x1a:2b`, `1A2B`, `1a 2b` → `1A2B`. Raises `CertificateNotFound` for something that is no serial."""
    if isinstance(value, int):
        return serial_hex(value)
    text = re.sub(r"[\s:]", "", str(value)).upper()
    if text.startswith("0X"):
        text = text[2:]
    if not text or len(text) > 64 or not _HEX.match(text):
        raise CertificateNotFound(f"“{value}”不是有效的证书序列号（十六进制）。", code="serial_invalid")
    return serial_hex(int(text, 16))
