"""Reads of CA state for views, commands and the RA."""

from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.db.models import Count

from certdesk.pki.errors import CaNotInitialised, CertificateNotFound
from certdesk.pki.models import CertificateAuthority, Crl, IssuedCertificate, OcspResponse
from certdesk.pki.rows import Lookup
from certdesk.pki.serials import serial_normalise
from certdesk.pki.types import CertificateStatusInfo, RevocationReason

Role = CertificateAuthority.Role


def ca_get(*, role: str) -> CertificateAuthority:
    """The active CA of a role (root, issuing); `CaNotInitialised` if `pki_init` has not run."""
    ca = (
        CertificateAuthority.objects.filter(role=role, status=CertificateAuthority.Status.ACTIVE)
        .order_by("-not_after")
        .first()
    )
    if ca is None or not ca.certificate_der:
        raise CaNotInitialised(f"还没有可用的{Role(role).label}：请先运行 `manage.py pki_init`。")
    return ca


# How long one process goes on issuing under the issuing CA it looked up last. The answer changes only
# when an operator brings in a new issuing CA (`pki_init` after a rollover); the old one stays valid.
ISSUER_CACHE_SECONDS = 5.0
_recent: dict[str, tuple[float, CertificateAuthority]] = {}
_recent_lock = threading.Lock()


def ca_get_recent(*, role: str) -> CertificateAuthority:
    """`ca_get`, remembered for ISSUER_CACHE_SECONDS: issuance asks once per certificate."""
    now = time.monotonic()
    with _recent_lock:
        hit = _recent.get(role)
    if hit is not None and now - hit[0] < ISSUER_CACHE_SECONDS:
        return hit[1]
    ca = ca_get(role=role)
    with _recent_lock:
        _recent[role] = (now, ca)
    return ca


def ca_recent_clear() -> None:
    with _recent_lock:
        _recent.clear()


def public_key_conflict(*, spki_sha256: str, ca_profiles: tuple[str, ...]) -> Lookup:
    """The lookup of a certificate that forbids this public key, giving its profile: one revoked for
    keyCompromise, or one of our own CA / OCSP keys (every CA certificate has a record too). Asked once
    per certificate, inside the record's INSERT (`rows.row_insert_unless`): plain SQL on indexed columns."""
    return Lookup(
        sql=(
            f"SELECT profile FROM {IssuedCertificate._meta.db_table} "  # noqa: S608 - table name from the model, values bound
            f"WHERE spki_sha256 = %s AND (revocation_reason = %s OR profile IN ({', '.join(['%s'] * len(ca_profiles))})) "
            "LIMIT 1"
        ),
        params=(spki_sha256, RevocationReason.KEY_COMPROMISE.value, *ca_profiles),
    )


def ca_certificate_der(*, role: str) -> bytes:
    return bytes(ca_get(role=role).certificate_der or b"")


def certificate_chain_pem() -> str:
    """Issuing CA then root, PEM: what a subscriber installs with its certificate."""
    parts = []
    for role in (Role.ISSUING, Role.ROOT):
        certificate = x509.load_der_x509_certificate(ca_certificate_der(role=role))
        parts.append(certificate.public_bytes(serialization.Encoding.PEM).decode())
    return "".join(parts)


def crl_latest(*, role: str) -> Crl | None:
    ca = ca_get(role=role)
    return Crl.objects.filter(issuer=ca).order_by("-number").first()


def certificate_get(*, serial: str) -> IssuedCertificate:
    normalised = serial_normalise(serial)
    record = IssuedCertificate.objects.filter(serial=normalised).first()
    if record is None:
        raise CertificateNotFound(f"没有序列号为 {normalised} 的证书。")
    return record


def certificate_status_get(*, serial: str) -> CertificateStatusInfo:
    return certificate_status_info(certificate_get(serial=serial))


def certificate_status_info(record: IssuedCertificate) -> CertificateStatusInfo:
    return CertificateStatusInfo(
        serial=record.serial,
        status="revoked" if record.revoked_at is not None else record.status,
        revoked_at=record.revoked_at,
        revocation_reason=RevocationReason(record.revocation_reason) if record.revocation_reason is not None else None,
        invalidity_date=record.invalidity_date,
    )


@dataclass(frozen=True)
class CaSummary:
    name: str
    role: str
    status: str
    key: str
    algorithm: str
    subject: str
    not_after: datetime.datetime | None
    crl_number: int
    next_crl_update: datetime.datetime | None


@dataclass(frozen=True)
class PkiOverview:
    cas: tuple[CaSummary, ...]
    certificates_by_status: dict[str, int]
    revoked: int
    ocsp_responses: int


def pki_overview() -> PkiOverview:
    cas = tuple(
        CaSummary(
            name=ca.name,
            role=ca.role,
            status=ca.status,
            key=f"{ca.key_backend}:{ca.key_ref}",
            algorithm=ca.key_algorithm,
            subject=ca.subject,
            not_after=ca.not_after,
            crl_number=ca.crl_number,
            next_crl_update=ca.next_crl_update,
        )
        for ca in CertificateAuthority.objects.order_by("id")
    )
    by_status = {
        row["status"]: row["n"] for row in IssuedCertificate.objects.order_by().values("status").annotate(n=Count("id"))
    }
    return PkiOverview(
        cas=cas,
        certificates_by_status=by_status,
        revoked=IssuedCertificate.objects.filter(revoked_at__isnull=False).count(),
        ocsp_responses=OcspResponse.objects.count(),
    )
