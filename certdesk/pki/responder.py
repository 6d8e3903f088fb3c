"""OCSP responder internals (RFC 6960, RFC 5019 profile).

Responses are signed by a delegated responder certificate (id-kp-OCSPSigning,
ocsp-nocheck) that the issuing CA issues and rotates. Pre-signed responses live
in the `OcspResponse` table, shared by every worker process and host: a
request without a nonce is answered by one indexed read. A response is signed
on the request only for a nonce (it must echo it), an unknown serial, or a
missing or half-expired cached response, which is then stored for the next
request. Revocation re-signs the stored response in the revoking transaction,
so the change is visible to every worker the moment it commits.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from django.db import IntegrityError, connection, transaction

from certdesk.pki import conf
from certdesk.pki.models import CertificateAuthority, IssuedCertificate, OcspResponse
from certdesk.pki.serials import serial_hex
from certdesk.pki.signers import Signer, public_key_bit_string, signer_for
from certdesk.pki.types import RevocationReason

logger = logging.getLogger(__name__)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


MALFORMED_REQUEST = _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
INTERNAL_ERROR = _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
UNAUTHORIZED = _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
MAX_REQUEST_BYTES = 4096

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class NoSigner(Exception):
    """The issuer has no valid OCSP signer: the caller rotates one in and tries again."""


@dataclass(frozen=True)
class OcspQuery:
    serial: int
    hash_name: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    nonce: bytes | None

    @property
    def serial_hex(self) -> str:
        return serial_hex(self.serial)


def parse_request(der: bytes) -> OcspQuery | None:
    """The single CertID of a request, or None when it is malformed (or asks for several)."""
    if not der or len(der) > MAX_REQUEST_BYTES:
        return None
    try:
        request = ocsp.load_der_ocsp_request(der)
        algorithm = request.hash_algorithm
        nonce_ext = None
        for ext in request.extensions:
            if isinstance(ext.value, x509.OCSPNonce):
                nonce_ext = ext.value.nonce
        return OcspQuery(
            serial=request.serial_number,
            hash_name=algorithm.name,
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            nonce=nonce_ext,
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def _hash(name: str, data: bytes) -> bytes:
    h = hashes.Hash(HASHES[name]())
    h.update(data)
    return h.finalize()


@functools.lru_cache(maxsize=32)
def issuer_hashes(certificate: x509.Certificate, hash_name: str) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a CertID for certificates this CA issued (remembered: every
    response an issuer's signer makes names the issuer the same way)."""
    public_key = certificate.public_key()
    return (
        _hash(hash_name, certificate.subject.public_bytes()),
        _hash(hash_name, public_key_bit_string(public_key)),  # type: ignore[arg-type]
    )


class _IssuerIndex:
    """(hash, issuerNameHash, issuerKeyHash) → issuing CA id, for every issuing CA we run."""

    RELOAD_AFTER = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # One tuple, swapped whole, so a reader never sees entries from one load and certificates from another.
        self._state: tuple[dict[tuple[str, bytes, bytes], int], dict[int, x509.Certificate]] = ({}, {})
        self._loaded_at = -1e9

    def lookup(self, query: OcspQuery) -> tuple[int, x509.Certificate] | None:
        key = (query.hash_name, query.issuer_name_hash, query.issuer_key_hash)
        entries, certificates = self._state
        found = entries.get(key)
        # A miss reloads at most every few seconds, so garbage issuers cannot hammer the database.
        if found is None and query.hash_name in HASHES and time.monotonic() - self._loaded_at > self.RELOAD_AFTER:
            self.reload()
            entries, certificates = self._state
            found = entries.get(key)
        return None if found is None else (found, certificates[found])

    def reload(self) -> None:
        entries: dict[tuple[str, bytes, bytes], int] = {}
        certificates: dict[int, x509.Certificate] = {}
        issuers = CertificateAuthority.objects.filter(
            role=CertificateAuthority.Role.ISSUING,
            status__in=[CertificateAuthority.Status.ACTIVE, CertificateAuthority.Status.RETIRED],
            certificate_der__isnull=False,
        ).values_list("id", "certificate_der")
        for ca_id, der in issuers:
            certificate = certificates[ca_id] = x509.load_der_x509_certificate(bytes(der or b""))
            for name in HASHES:
                name_hash, key_hash = issuer_hashes(certificate, name)
                entries[(name, name_hash, key_hash)] = ca_id
        with self._lock:
            self._state = (entries, certificates)
            self._loaded_at = time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self._state = ({}, {})
            self._loaded_at = -1e9


issuer_index = _IssuerIndex()


class _MemoryCache:
    """Pre-signed responses kept in this worker process, so the hot path touches no database.

    Coherence across processes: every change that alters a certificate's status
    (revocation, unhold, a signer withdrawn) replaces the small epoch file
    `<PKI_STATE_DIR>/ocsp.epoch` when its transaction commits. Each lookup
    stats that file (a microsecond or two) and, when its identity changed, drops
    everything it holds; the next request reads the re-signed response from the
    database. That is exact for all workers on one host. Hosts that share a
    database but no state directory set PKI_OCSP_MEMORY_CACHE = False and read
    the database on every request instead.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, int], tuple[bytes, float]] = {}
        self._epoch: object = None

    def _current(self) -> dict[tuple[str, str, int], tuple[bytes, float]]:
        epoch = epoch_read()
        if epoch != self._epoch:
            self._entries = {}
            self._epoch = epoch
        return self._entries

    def get(self, key: tuple[str, str, int], now: float) -> bytes | None:
        hit = self._current().get(key)
        return hit[0] if hit is not None and hit[1] > now else None

    def put(self, key: tuple[str, str, int], der: bytes, fresh_until: float, *, epoch: object) -> None:
        """`epoch` is what `epoch_read()` said before the status was read from the database: if a
        change was announced since, the response may predate it and is not kept."""
        entries = self._current()
        if epoch != self._epoch:
            return
        if len(entries) >= conf.ocsp_memory_cache_entries():
            entries = self._entries = {}  # crude but O(1) amortised; refilled from the database
        entries[key] = (der, fresh_until)

    def discard(self, serial: str) -> None:
        self._entries = {k: v for k, v in self._entries.items() if k[0] != serial}

    def clear(self) -> None:
        self._entries = {}
        self._epoch = None


memory_cache = _MemoryCache()


_epoch_paths: dict[str, str] = {}


def _epoch_path() -> str:
    # Called on every OCSP request: memoised per configured directory (settings may change in tests).
    configured = conf.state_dir_setting()
    path = _epoch_paths.get(configured)
    if path is None:
        path = _epoch_paths[configured] = os.path.join(conf.state_dir(), "ocsp.epoch")
    return path


def epoch_read() -> object:
    try:
        st = os.stat(_epoch_path())
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def epoch_bump() -> None:
    """Tell every worker on this host that stored responses changed (a new inode each time)."""
    path = _epoch_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w") as fh:
        fh.write(f"{time.time_ns()}\n")
    os.replace(tmp, path)


def announce_change(serial: str | None = None) -> None:
    """Stored responses changed (for one serial, or all): forget them in this process now, and in
    every other worker on this host once the transaction commits."""
    if serial is None:
        memory_cache.clear()
        _signer_cache.clear()
    else:
        memory_cache.discard(serial)
    transaction.on_commit(epoch_bump)


def cached_response(query: OcspQuery, *, issuer_id: int, now: datetime.datetime) -> bytes | None:
    """The stored response while it has at least half its validity left (then the request re-signs;
    the periodic refresh normally got there first): from this process's memory, else from the
    database (raw SQL: the ORM's query building cost more than the query)."""
    key = (query.serial_hex, query.hash_name, issuer_id)
    use_memory = conf.ocsp_memory_cache()
    now_ts = now.timestamp()
    if use_memory:
        hit = memory_cache.get(key, now_ts)
        if hit is not None:
            return hit
    half = conf.ocsp_validity() / 2
    epoch = epoch_read() if use_memory else None
    with connection.cursor() as cursor:
        cursor.execute(
            _CACHED_SQL,
            [query.serial_hex, query.hash_name, issuer_id, connection.ops.adapt_datetimefield_value(now + half)],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    der = bytes(row[0])
    if use_memory:
        next_update = ocsp.load_der_ocsp_response(der).next_update_utc
        if next_update is not None:
            memory_cache.put(key, der, (next_update - half).timestamp(), epoch=epoch)
    return der


_CACHED_SQL = (
    f"SELECT der FROM {OcspResponse._meta.db_table} "  # noqa: S608 - table name from the model, values bound
    "WHERE serial = %s AND hash_algorithm = %s AND issuer_id = %s AND next_update > %s"
)


_SIGNER_TTL = 60.0
_signer_cache: dict[int, tuple[Signer, datetime.datetime, object, float]] = {}


def active_signer(issuer_id: int, now: datetime.datetime) -> Signer:
    """The issuer's current delegated OCSP signer.

    With the memory cache on, remembered for a minute and forgotten at once when a change is
    announced (a revoked signer must stop signing at once; a routine rotation may take a minute)."""
    use_memory = conf.ocsp_memory_cache()
    epoch = epoch_read() if use_memory else None
    if use_memory:
        hit = _signer_cache.get(issuer_id)
        if hit is not None and hit[2] == epoch and hit[1] > now and time.monotonic() < hit[3]:
            return hit[0]
    ca = (
        CertificateAuthority.objects.filter(
            role=CertificateAuthority.Role.OCSP,
            parent_id=issuer_id,
            status=CertificateAuthority.Status.ACTIVE,
            not_after__gt=now,
        )
        .order_by("-not_after")
        .first()
    )
    if ca is None:
        raise NoSigner(issuer_id)
    signer = signer_for(ca)
    if use_memory and ca.not_after is not None:
        _signer_cache[issuer_id] = (signer, ca.not_after, epoch, time.monotonic() + _SIGNER_TTL)
    return signer


def signer_cache_clear() -> None:
    _signer_cache.clear()


CertificateState = tuple[str, datetime.datetime | None, int | None, int]


@dataclass(frozen=True)
class SignedResponse:
    der: bytes
    this_update: datetime.datetime
    next_update: datetime.datetime
    known: bool
    # IssuedCertificate.status_version the status was read at: a response never replaces a newer one.
    status_version: int


def sign_response(
    *,
    signer: Signer,
    issuer_id: int,
    issuer_certificate: x509.Certificate,
    serial: int,
    hash_name: str,
    nonce: bytes | None,
    now: datetime.datetime,
    state: CertificateState | None = None,
) -> SignedResponse:
    """Sign a response for one serial. `state` (status, revoked_at, reason, status_version) saves the
    lookup when the caller has just written the record; otherwise it is read from the database."""
    row = (
        state
        if state is not None
        else IssuedCertificate.objects.filter(issuer_id=issuer_id, serial=serial_hex(serial))
        .values_list("status", "revoked_at", "revocation_reason", "status_version")
        .first()
    )
    revocation_time = None
    reason = None
    known = row is not None and (row[0] == IssuedCertificate.Status.ISSUED or row[1] is not None)
    if row is not None and row[1] is not None:
        status = ocsp.OCSPCertStatus.REVOKED
        revocation_time = row[1]
        code = RevocationReason(row[2]) if row[2] is not None else RevocationReason.UNSPECIFIED
        # RFC 5280: "unspecified" is expressed by leaving the reason out.
        reason = None if code is RevocationReason.UNSPECIFIED else code.flag
    elif known:
        status = ocsp.OCSPCertStatus.GOOD
    else:
        status = ocsp.OCSPCertStatus.UNKNOWN
    this_update = now.replace(microsecond=0)
    next_update = this_update + conf.ocsp_validity()
    name_hash, key_hash = issuer_hashes(issuer_certificate, hash_name)
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=name_hash,
            issuer_key_hash=key_hash,
            serial_number=serial,
            algorithm=HASHES[hash_name](),
            cert_status=status,
            this_update=this_update,
            next_update=next_update,
            revocation_time=revocation_time,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
        .certificates([signer.certificate])
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    response = builder.sign(signer.key, signer.hash)
    return SignedResponse(
        der=response.public_bytes(serialization.Encoding.DER),
        this_update=this_update,
        next_update=next_update,
        known=known,
        status_version=row[3] if row is not None else 0,
    )


def _row_fields(issuer_id: int, response: SignedResponse) -> dict[str, Any]:
    return {
        "issuer_id": issuer_id,
        "der": response.der,
        "this_update": response.this_update,
        "next_update": response.next_update,
        "status_version": response.status_version,
    }


def response_row(*, serial: str, hash_name: str, issuer_id: int, response: SignedResponse) -> OcspResponse:
    """The unsaved row of a new certificate's first response: the issuance pipeline inserts it
    with the certificate itself."""
    return OcspResponse(serial=serial, hash_algorithm=hash_name, **_row_fields(issuer_id, response))


def store(*, serial: str, hash_name: str, issuer_id: int, response: SignedResponse) -> bool:
    """Upsert the pre-signed response unless a response from a newer status is stored already
    (a request that read "good" just before a revocation must not overwrite the revoked answer).
    Returns whether it was stored."""
    fields = _row_fields(issuer_id, response)
    try:
        with transaction.atomic():
            rows = OcspResponse.objects.filter(serial=serial, hash_algorithm=hash_name)
            if rows.filter(status_version__lte=response.status_version).update(**fields):
                return True
            if rows.exists():
                return False
            OcspResponse.objects.create(serial=serial, hash_algorithm=hash_name, **fields)
            return True
    except IntegrityError:
        logger.debug("OCSP response for %s stored concurrently", serial)
        return False


def respond(der: bytes, *, now: datetime.datetime) -> bytes:
    """The DER OCSPResponse for a DER OCSPRequest. Raises `NoSigner` (the caller rotates and retries)."""
    query = parse_request(der)
    if query is None:
        return MALFORMED_REQUEST
    issuer = issuer_index.lookup(query)
    if issuer is None:
        return UNAUTHORIZED
    issuer_id, issuer_certificate = issuer
    if query.nonce is None:
        cached = cached_response(query, issuer_id=issuer_id, now=now)
        if cached is not None:
            return cached
    epoch = epoch_read()
    signed = sign_response(
        signer=active_signer(issuer_id, now),
        issuer_id=issuer_id,
        issuer_certificate=issuer_certificate,
        serial=query.serial,
        hash_name=query.hash_name,
        nonce=query.nonce,
        now=now,
    )
    if query.nonce is None and signed.known:
        stored = store(serial=query.serial_hex, hash_name=query.hash_name, issuer_id=issuer_id, response=signed)
        if stored and conf.ocsp_memory_cache() and not transaction.get_connection().in_atomic_block:
            memory_cache.put(
                (query.serial_hex, query.hash_name, issuer_id),
                signed.der,
                (signed.next_update - conf.ocsp_validity() / 2).timestamp(),
                epoch=epoch,
            )
    return signed.der
