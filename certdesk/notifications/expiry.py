"""Certificate expiry reminders: what the daily task needs from the CA side.

The notifications app does not know where issued certificates live. The
daily task asks the selector named by NOTIFY_EXPIRING_CERTIFICATES_SELECTOR
(a dotted path) for the certificates that expire within the given number of
days; that selector belongs to whoever owns issued certificates. Until one is
configured the default below finds none.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from certdesk.accounts.models import User


@dataclass(frozen=True)
class ExpiringCertificate:
    user: User  # who is told (the owner of the order that issued it)
    serial: str  # hex serial as shown to the customer
    not_after: datetime.datetime
    order_number: str
    # Where the one-click 证书更新 link starts from, when known.
    key_sn: str = ""
    uscc: str = ""


def expiring_certificates_none(*, within_days: int, now: datetime.datetime) -> Iterable[ExpiringCertificate]:
    """The placeholder selector: no issued certificates are known yet."""
    return []
