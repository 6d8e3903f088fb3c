"""The narrow objects that cross the CA engine's boundary.

The RA builds an `IssuanceRequest` from data it has already validated and
approved; the CA never sees an order, a user or any other RA model (Boulder's
split). Results are plain frozen dataclasses too.
"""

from __future__ import annotations

import datetime
import enum
import re
from dataclasses import dataclass, field

from cryptography import x509


class RevocationReason(enum.IntEnum):
    """CRLReason codes of RFC 5280 §5.3.1 (7 is unused)."""

    UNSPECIFIED = 0
    KEY_COMPROMISE = 1
    CA_COMPROMISE = 2
    AFFILIATION_CHANGED = 3
    SUPERSEDED = 4
    CESSATION_OF_OPERATION = 5
    CERTIFICATE_HOLD = 6
    REMOVE_FROM_CRL = 8
    PRIVILEGE_WITHDRAWN = 9
    AA_COMPROMISE = 10

    @property
    def rfc_name(self) -> str:
        """The ASN.1 name, e.g. `keyCompromise`, `cACompromise`."""
        return str(self.flag.value)

    @property
    def flag(self) -> x509.ReasonFlags:
        return x509.ReasonFlags[self.name.lower()]

    @classmethod
    def parse(cls, value: str | int) -> RevocationReason:
        """Accept `keyCompromise`, `key_compromise`, `KEY-COMPROMISE` or the number."""
        if isinstance(value, int) or str(value).strip().isdigit():
            return cls(int(value))
        wanted = re.sub(r"[^a-z]", "", str(value).lower())
        for member in cls:
            if member.name.lower().replace("_", "") == wanted:
                return member
        raise ValueError(f"unknown revocation reason {value!r}")


@dataclass(frozen=True, kw_only=True)
class IssuanceRequest:
    """What the RA asks the CA to sign.

    Exactly one of `csr_pem` (its signature proves possession of the key) or
    `public_key_pem` (allowed only with `proof_of_possession_verified=True`,
    when the RA checked possession another way, e.g. a signature made by the
    USB key, or the encryption key pair comes from a key-management centre).
    The subject is built from the fields here, not from the CSR.
    """

    profile: str
    organisation_name: str
    uscc: str
    province: str = ""
    city: str = ""
    validity_years: int = 1
    csr_pem: str | None = None
    public_key_pem: str | None = None
    proof_of_possession_verified: bool = False
    renewal_of: str | None = None
    # Opaque RA reference (an order number), stored with the record for tracing.
    reference: str = ""


@dataclass(frozen=True, kw_only=True)
class IssuedCertificateResult:
    serial: str
    profile: str
    certificate_der: bytes
    certificate_pem: str
    chain_pem: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    # Findings below the refusal threshold (notices, and warnings unless they refuse).
    lint_findings: tuple[str, ...] = field(default=())


@dataclass(frozen=True, kw_only=True)
class CertificateStatusInfo:
    serial: str
    status: str
    revoked_at: datetime.datetime | None
    revocation_reason: RevocationReason | None
    invalidity_date: datetime.datetime | None


@dataclass(frozen=True, kw_only=True)
class CrlInfo:
    issuer: str
    number: int
    this_update: datetime.datetime
    next_update: datetime.datetime
    entries: int
    der: bytes
