"""Personal data kept out of the logs.

`PiiRedactingFilter` sits on the log handlers configured in `config/settings.py` (LOGGING), so
every record that reaches them — from our code, Django, or a library, message, arguments and
traceback alike — is written with resident ID numbers as `500103********0017` and mainland
mobile numbers as `138****5678` (the same masks the pages use, `core.validators`).

It matches by shape, so it also masks an 18-character number that merely looks like an ID;
a missed ID in a log is worse than a masked order of digits. Order numbers (letters + 13 digits),
certificate serials (hex), 28-digit payment transaction ids and timestamps do not have the shape.
"""

from __future__ import annotations

import logging
import re

from certdesk.core.validators import mask_mobile, mask_resident_id

# 17 digits and a digit or X, not part of a longer run of letters or digits.
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
# 1[3-9] and 9 more digits, optionally written +86 / 0086 / 86 first, not part of a longer number.
_MOBILE = re.compile(r"(?<![\d+])(?:(?:\+|00)?86[- ]?)?(1[3-9]\d{9})(?!\d)")


def mask_pii_text(text: str) -> str:
    """`text` with every resident ID number and mainland mobile number masked."""
    text = _RESIDENT_ID.sub(lambda match: mask_resident_id(match.group(0)), text)
    return _MOBILE.sub(
        lambda match: match.group(0)[: match.start(1) - match.start(0)] + mask_mobile(match.group(1)), text
    )


class PiiRedactingFilter(logging.Filter):
    """Masks ID and mobile numbers in a record's message, traceback and stack; never drops a record."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as it would
            return True
        masked = mask_pii_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so the traceback is written masked.
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_pii_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_pii_text(record.stack_info)
        return True
