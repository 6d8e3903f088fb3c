"""Full CRLs encoded straight to DER (RFC 5280 §5.1), for CAs with a million revoked certificates.

`cryptography`'s CRL builder wants one `RevokedCertificate` object per entry and
builds the whole list before it signs: at 1,000,000 entries that is seconds of
object churn and hundreds of MB. Here every entry is DER-encoded as its row is
read, into one `bytearray`; the TBSCertList header and extensions are put
around that buffer in place, its hash is signed once with the CA key (a file
key or a PKCS#11 token key: only the digest goes to the token), and the
CertificateList is wrapped around it.

The encoding is exactly what `x509.CertificateRevocationListBuilder` produces
for the same inputs (tests/pki/test_crl_encoding.py compares the TBS bytes):
version v2; the signature AlgorithmIdentifier of the CA key; the issuer Name as
the CA certificate's subject DER; thisUpdate/nextUpdate and revocationDate as
UTCTime before 2050 and GeneralizedTime from 2050 on; revokedCertificates left
out when empty; per entry the serial, the date, a reasonCode unless the reason
is unspecified, an invalidityDate (GeneralizedTime) when there is one; then
the CRL extensions AuthorityKeyIdentifier (key identifier) and CRLNumber,
neither critical. Times lose their fractions of a second and are put in UTC
(naive ones are taken as UTC), as `cryptography` does.

`services._crl_generate` runs the query, checks the signed result
(`crl_verifies`) and lints a sample CRL made by this encoder. The two database
helpers at the end (`rows_streamed`, `binary_field_write`) exist because, at
a million rows, Django's own paths on PostgreSQL cost more than everything
else together; elsewhere they are the plain ORM calls.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID, SignatureAlgorithmOID
from django.db import connections, models
from django.db.models import QuerySet

from certdesk.pki.keys import CaPrivateKey, CaPublicKey
from certdesk.pki.types import RevocationReason

# One revoked row as the database gives it: serial (hex), revocation date, reason code (None or 0 =
# unspecified), invalidity date.
# (A None date, which the CRL query excludes, is refused with ValueError.)
RevokedRow = tuple[str, datetime.datetime | None, int | None, datetime.datetime | None]

_SEQUENCE = 0x30
_INTEGER = 0x02
_OCTET_STRING = 0x04
_ENUMERATED = 0x0A
_BIT_STRING = 0x03
_OID = 0x06
_NULL = b"\x05\x00"
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_CONTEXT_0 = 0xA0  # [0] EXPLICIT, constructed: crlExtensions
_KEY_IDENTIFIER = 0x80  # [0] IMPLICIT OCTET STRING inside AuthorityKeyIdentifier
_VERSION_2 = b"\x02\x01\x01"

# Rows to fetch per round trip when streaming the revoked rows (a server-side cursor on PostgreSQL).
READ_CHUNK = 10000


def der_length(n: int) -> bytes:
    """A DER length: short form below 128, else long form."""
    if n < 0x80:
        return bytes((n,))
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(size),)) + size


def der_tlv(tag: int, content: bytes | bytearray) -> bytes:
    """One DER TLV with a single-octet tag."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    return bytes((tag,)) + der_length(n) + content


def der_integer(value: int) -> bytes:
    """A non-negative INTEGER, minimal two's complement (a 0x00 in front when the high bit is set)."""
    if value < 0:
        raise ValueError("serial numbers and CRL numbers are not negative")
    return der_tlv(_INTEGER, value.to_bytes((value.bit_length() + 8) // 8, "big"))


def der_oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER from its dotted form."""
    arcs = [int(part) for part in dotted.split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return der_tlv(_OID, out)


def _utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None:
        return moment
    offset = moment.utcoffset()
    return moment if not offset else moment.astimezone(datetime.UTC)


def der_time(moment: datetime.datetime) -> bytes:
    """RFC 5280 Time: UTCTime for 1950–2049, GeneralizedTime from 2050; whole seconds, UTC."""
    t = _utc(moment)
    if 1950 <= t.year < 2050:
        text = b"%02d%02d%02d%02d%02d%02dZ" % (t.year % 100, t.month, t.day, t.hour, t.minute, t.second)
        return bytes((_UTC_TIME, len(text))) + text
    return der_generalized_time(t)


def der_generalized_time(moment: datetime.datetime) -> bytes:
    """GeneralizedTime without fractions (RFC 5280 §4.1.2.5.2), UTC."""
    t = _utc(moment)
    if t.year < 1950:
        raise ValueError(f"{moment.isoformat()} is before 1950: not a date an X.509 CRL carries")
    text = b"%04d%02d%02d%02d%02d%02dZ" % (t.year, t.month, t.day, t.hour, t.minute, t.second)
    return bytes((_GENERALIZED_TIME, len(text))) + text


def _extension(oid: x509.ObjectIdentifier, value: bytes) -> bytes:
    """A non-critical Extension (critical DEFAULT FALSE is left out, as DER requires)."""
    return der_tlv(_SEQUENCE, der_oid(oid.dotted_string) + der_tlv(_OCTET_STRING, value))


# reasonCode extensions by code; unspecified (0) is left out (RFC 5280 §5.3.1: SHOULD be absent).
_REASON_EXTENSIONS: dict[int, bytes] = {
    int(reason): _extension(CRLEntryExtensionOID.CRL_REASON, der_tlv(_ENUMERATED, bytes((int(reason),))))
    for reason in RevocationReason
    if reason is not RevocationReason.UNSPECIFIED
}
_INVALIDITY_DATE = der_oid(CRLEntryExtensionOID.INVALIDITY_DATE.dotted_string)

_EC_ALGORITHMS = {
    "sha256": SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    "sha384": SignatureAlgorithmOID.ECDSA_WITH_SHA384,
    "sha512": SignatureAlgorithmOID.ECDSA_WITH_SHA512,
}
_RSA_ALGORITHMS = {
    "sha256": SignatureAlgorithmOID.RSA_WITH_SHA256,
    "sha384": SignatureAlgorithmOID.RSA_WITH_SHA384,
    "sha512": SignatureAlgorithmOID.RSA_WITH_SHA512,
}


def signature_algorithm(key: CaPrivateKey | CaPublicKey, hash_algorithm: hashes.HashAlgorithm) -> bytes:
    """The AlgorithmIdentifier a signature by `key` over `hash_algorithm` carries, as the X.509 builders
    write it: ecdsa-with-SHAxxx without parameters (RFC 5758), sha…WithRSAEncryption with NULL (RFC 4055)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        oid = _EC_ALGORITHMS.get(hash_algorithm.name)
        if oid is not None:
            return der_tlv(_SEQUENCE, der_oid(oid.dotted_string))
    elif isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        oid = _RSA_ALGORITHMS.get(hash_algorithm.name)
        if oid is not None:
            return der_tlv(_SEQUENCE, der_oid(oid.dotted_string) + _NULL)
    raise ValueError(f"no CRL signature algorithm for a {type(key).__name__} with {hash_algorithm.name}")


@dataclass(frozen=True, kw_only=True)
class CrlHeader:
    """Everything in a TBSCertList except its entries."""

    issuer: bytes  # the DER Name: the CA certificate's `subject.public_bytes()`
    this_update: datetime.datetime
    next_update: datetime.datetime
    authority_key_identifier: bytes  # the CA certificate's subjectKeyIdentifier digest
    number: int
    signature_algorithm: bytes  # DER AlgorithmIdentifier, see `signature_algorithm()`

    def head(self) -> bytes:
        """version, signature, issuer, thisUpdate, nextUpdate."""
        return (
            _VERSION_2
            + self.signature_algorithm
            + self.issuer
            + der_time(self.this_update)
            + der_time(self.next_update)
        )

    def extensions(self) -> bytes:
        """crlExtensions: [0] EXPLICIT Extensions { authorityKeyIdentifier, cRLNumber }."""
        aki = der_tlv(_SEQUENCE, der_tlv(_KEY_IDENTIFIER, self.authority_key_identifier))
        extensions = _extension(ExtensionOID.AUTHORITY_KEY_IDENTIFIER, aki) + _extension(
            ExtensionOID.CRL_NUMBER, der_integer(self.number)
        )
        return der_tlv(_CONTEXT_0, der_tlv(_SEQUENCE, extensions))


@dataclass
class RevokedList:
    """The DER of every revokedCertificates entry back to back (no SEQUENCE header yet), and a sample.

    The sample is what `services._crl_generate` lints past PKI_CRL_LINT_MAX_ENTRIES: the first
    `sample_limit` entries (the newest when the rows come newest first) and the first entry of
    every other shape, shape = (reason code, has an invalidityDate).
    """

    der: bytearray = field(default_factory=bytearray)
    count: int = 0
    sample: list[bytes] = field(default_factory=list)


def _serial_number(value: int) -> bytes:
    """The entry's userCertificate INTEGER: positive and at most 20 octets (RFC 5280 §4.1.2.2), as
    cryptography's RevokedCertificateBuilder insists."""
    if value <= 0 or value.bit_length() >= 160:
        raise ValueError(f"serial number {value:X} is not positive or is longer than 20 octets")
    return der_integer(value)


# `revoked_list` computes times from whole days and seconds since 1970 (a timedelta's exact
# integers: no float, fractions dropped as `der_time` drops them), the date part cached per day.
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_HOUR_MINUTE = [b"%02d%02d" % divmod(minute, 60) for minute in range(24 * 60)]
_SECOND = [b"%02dZ" % second for second in range(60)]
_LENGTH = [bytes((n,)) for n in range(0x80)]


def _day_prefixes(days: int) -> tuple[bytes, bytes]:
    """Tag, length and date digits of (Time, GeneralizedTime) for a day counted from 1970-01-01."""
    day = _EPOCH + datetime.timedelta(days=days)
    if day.year < 1950:
        raise ValueError(f"{day.date().isoformat()} is before 1950: not a date an X.509 CRL carries")
    generalized = b"\x18\x0f%04d%02d%02d" % (day.year, day.month, day.day)
    if day.year >= 2050:
        return generalized, generalized
    return b"\x17\x0d%02d%02d%02d" % (day.year % 100, day.month, day.day), generalized


def revoked_list(rows: Iterable[RevokedRow], *, sample_limit: int = 0) -> RevokedList:
    """Encode `rows` one by one into one buffer; nothing per row outlives its iteration but its DER.

    Written out inline, as every function call and object shows at a million rows; the tests compare
    the result with cryptography's CRL builder over every entry shape. An unknown reason code raises ValueError, as
    `RevocationReason(code)` would.
    """
    out = RevokedList()
    der = out.der
    sample = out.sample
    shapes: set[int] = set()
    days_cache: dict[int, tuple[bytes, bytes]] = {}
    reasons = _REASON_EXTENSIONS
    hour_minute, second, length = _HOUR_MINUTE, _SECOND, _LENGTH
    epoch, utc = _EPOCH, datetime.UTC
    invalidity_prefix = bytes((_SEQUENCE, 24)) + _INVALIDITY_DATE + bytes((_OCTET_STRING, 17))
    last_revoked: object = None
    revoked_der = b""
    last_invalidity: object = None
    invalidity_der = b""
    count = 0
    for serial, revoked_at, reason, invalidity_date in rows:
        # serial: the stored upper-case hex is the INTEGER's content unless it needs a 0x00 in front
        # (high bit set); odd lengths, a leading zero octet and 20 octets or more go the checked way.
        try:
            number = bytes.fromhex(serial)
        except ValueError:
            number = b""
        if 0 < len(number) < 20 and number[0]:
            if number[0] & 0x80:
                entry = b"\x02" + length[len(number) + 1] + b"\x00" + number
            else:
                entry = b"\x02" + length[len(number)] + number
        else:
            entry = _serial_number(int(serial, 16))
        # revocationDate: rows come newest first, consecutive ones often share it.
        if revoked_at != last_revoked or revoked_at is None:
            if revoked_at is None:
                raise ValueError(f"certificate {serial} has no revocation date")
            last_revoked = revoked_at
            if revoked_at.tzinfo is None:
                revoked_at = revoked_at.replace(tzinfo=utc)
            delta = revoked_at - epoch
            prefixes = days_cache.get(delta.days)
            if prefixes is None:
                prefixes = days_cache[delta.days] = _day_prefixes(delta.days)
            seconds = delta.seconds
            revoked_der = prefixes[0] + hour_minute[seconds // 60] + second[seconds % 60]
        entry += revoked_der
        # crlEntryExtensions: reasonCode unless unspecified, invalidityDate when known.
        extensions = b""
        if reason:
            extensions = reasons.get(reason, b"")
            if not extensions:
                raise ValueError(f"{reason} is not a valid RevocationReason")
        if invalidity_date is not None:
            if invalidity_date != last_invalidity:
                last_invalidity = invalidity_date
                if invalidity_date.tzinfo is None:
                    invalidity_date = invalidity_date.replace(tzinfo=utc)
                delta = invalidity_date - epoch
                prefixes = days_cache.get(delta.days)
                if prefixes is None:
                    prefixes = days_cache[delta.days] = _day_prefixes(delta.days)
                seconds = delta.seconds
                invalidity_der = invalidity_prefix + prefixes[1] + hour_minute[seconds // 60] + second[seconds % 60]
            extensions += invalidity_der
        if extensions:
            entry += b"\x30" + length[len(extensions)] + extensions
        n = len(entry)
        entry = (b"\x30" + length[n] + entry) if n < 0x80 else der_tlv(_SEQUENCE, entry)
        der += entry
        count += 1
        shape = (reason or 0) * 2 + (invalidity_date is not None)
        if count <= sample_limit or shape not in shapes:
            sample.append(entry)
            shapes.add(shape)
    out.count = count
    return out


def _tbs_frame(header: CrlHeader, entries_length: int) -> tuple[bytes, bytes]:
    """What goes before and after the entries' DER to make the TBSCertList."""
    head = header.head()
    revoked = (bytes((_SEQUENCE,)) + der_length(entries_length)) if entries_length else b""
    tail = header.extensions()
    content_length = len(head) + len(revoked) + entries_length + len(tail)
    return bytes((_SEQUENCE,)) + der_length(content_length) + head + revoked, tail


def tbs_certlist(header: CrlHeader, entries: bytes | bytearray) -> bytes:
    """The TBSCertList DER (a copy; `crl_sign` builds it in place)."""
    prefix, tail = _tbs_frame(header, len(entries))
    return prefix + bytes(entries) + tail


def _sign(key: CaPrivateKey, data: bytes | bytearray, hash_algorithm: hashes.HashAlgorithm) -> bytes:
    """Sign the hash of `data`: the data itself never travels to a token (a 50 MB TBS would)."""
    h = hashes.Hash(hash_algorithm)
    h.update(memoryview(data))
    digest = h.finalize()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(digest, ec.ECDSA(Prehashed(hash_algorithm)))
    return key.sign(digest, padding.PKCS1v15(), Prehashed(hash_algorithm))


def crl_sign(
    *, header: CrlHeader, entries: bytearray, key: CaPrivateKey, hash_algorithm: hashes.HashAlgorithm
) -> bytes:
    """The signed CertificateList DER. Consumes `entries`: the TBSCertList is built around it in place
    (so a million entries are not copied twice more), and the buffer is emptied afterwards."""
    prefix, tail = _tbs_frame(header, len(entries))
    buffer = entries
    buffer[0:0] = prefix
    buffer += tail
    signature = _sign(key, buffer, hash_algorithm)
    trailer = header.signature_algorithm + der_tlv(_BIT_STRING, b"\x00" + signature)
    buffer[0:0] = bytes((_SEQUENCE,)) + der_length(len(buffer) + len(trailer))
    buffer += trailer
    der = bytes(buffer)
    buffer.clear()
    return der


# --------------------------------------------------------------------------- the database side


def rows_streamed(queryset: QuerySet[Any, Any], *, chunk_size: int = READ_CHUNK) -> Iterator[tuple[Any, ...]]:
    """The rows of a `values_list` queryset, streamed `chunk_size` at a time; call inside a transaction.

    On PostgreSQL the queryset's SQL runs in a server-side cursor that reads in psycopg's binary format:
    Django loads every text timestamptz through a Python-level loader (to set its time zone), ~4 µs a
    value on this hardware, 5 of the 7 s it took to read a million revoked rows; psycopg's binary
    loader is C, and the datetimes it returns are aware (the session is UTC) as Django's are. The
    columns must be ones Django does not convert after loading (a CharField, integers, datetimes),
    which holds on PostgreSQL for the CRL query. Elsewhere `.iterator()`, which converts as usual.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        yield from queryset.iterator(chunk_size=chunk_size)
        return
    sql, params = queryset.query.sql_with_params()
    connection.ensure_connection()
    name = f"crl_rows_{secrets.token_hex(6)}"
    with connection.connection.cursor(name, binary=True) as cursor:
        cursor.itersize = chunk_size
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_size):
            yield from rows


def binary_field_write(instance: models.Model, field_name: str, value: bytes) -> None:
    """Write a large BinaryField of a saved row (the CRL's DER): on PostgreSQL as a binary parameter.

    Django binds parameters on the client: a 50 MB CRL would travel hex-escaped inside the SQL text,
    built twice over (~250 MB more memory and ~2 s); a binary parameter goes as it is.
    """
    model = type(instance)
    connection = connections[instance._state.db or "default"]
    if connection.vendor != "postgresql":
        model._default_manager.using(instance._state.db).filter(pk=instance.pk).update(**{field_name: value})
        return
    import psycopg
    from psycopg import sql

    field = model._meta.get_field(field_name)
    if not isinstance(field, models.BinaryField):
        raise TypeError(f"{model.__name__}.{field_name} is not a BinaryField")
    statement = sql.SQL("UPDATE {} SET {} = %b WHERE {} = %s").format(
        sql.Identifier(model._meta.db_table), sql.Identifier(field.column), sql.Identifier(model._meta.pk.column)
    )
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(statement, [value, instance.pk])
        if cursor.rowcount != 1:
            raise ValueError(f"{model.__name__} {instance.pk} was not written")


def crl_verifies(der: bytes, *, issuer_key: CaPublicKey, entries: int) -> bool:
    """Whether `der` parses as a CRL (with cryptography) with `entries` entries and a signature by `issuer_key`.

    `is_signature_valid` checks the signature over cryptography's own re-encoding of the parsed
    TBSCertList, so it also proves that our DER is the canonical encoding (~1.5 s at a million entries).
    """
    try:
        parsed = x509.load_der_x509_crl(der)
        return len(parsed) == entries and parsed.is_signature_valid(issuer_key)
    except ValueError:
        return False


__all__ = [
    "READ_CHUNK",
    "CrlHeader",
    "RevokedList",
    "RevokedRow",
    "binary_field_write",
    "crl_sign",
    "crl_verifies",
    "der_time",
    "revoked_list",
    "rows_streamed",
    "signature_algorithm",
    "tbs_certlist",
]
