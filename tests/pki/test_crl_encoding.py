"""The streamed CRL encoder (certdesk/pki/crl.py) writes what cryptography's CRL builder writes.

Every TBSCertList is compared byte for byte with the one
`x509.CertificateRevocationListBuilder` makes from the same inputs, for EC
(P-256, P-384) and RSA keys, in files and on a SoftHSM token; the signed
result is checked by cryptography and by `openssl crl`.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.db import connection, transaction
from django.db.models import QuerySet
from pkitestlib import issue, lint_errors, openssl, utcnow, write

from certdesk.pki import crl, lint
from certdesk.pki.errors import PkiError
from certdesk.pki.keys import CaPrivateKey, KeyAlgorithm, key_backend, signature_hash
from certdesk.pki.models import CertificateAuthority, Crl, IssuedCertificate
from certdesk.pki.serials import serial_hex, serial_new
from certdesk.pki.services import HierarchyInitResult, certificate_revoke, crl_generate
from certdesk.pki.signers import signer_for
from certdesk.pki.types import RevocationReason

UTC = datetime.UTC
NOW = datetime.datetime(2026, 5, 1, 12, 30, 45, tzinfo=UTC)
ISSUER = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "北京某某科技有限公司"),
        x509.NameAttribute(NameOID.COMMON_NAME, "certdesk Issuing CA"),
    ]
)
SKI = bytes(range(20))

Row = tuple[str, datetime.datetime, int | None, datetime.datetime | None]

_KEYS: dict[str, CaPrivateKey] = {}


def _key(name: str) -> CaPrivateKey:
    if name not in _KEYS:
        _KEYS[name] = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if name == "rsa-2048"
            else ec.generate_private_key(KeyAlgorithm(name).curve)
        )
    return _KEYS[name]


def _reference(
    key: CaPrivateKey,
    rows: Sequence[Row],
    *,
    this_update: datetime.datetime = NOW,
    next_update: datetime.datetime | None = None,
    issuer: x509.Name = ISSUER,
    ski: bytes = SKI,
    number: int = 7,
) -> x509.CertificateRevocationList:
    """The CRL as cryptography's builders make it (what `_crl_generate` did before the encoder)."""
    entries = []
    for serial, revoked_at, reason, invalidity_date in rows:
        entry = x509.RevokedCertificateBuilder().serial_number(int(serial, 16)).revocation_date(revoked_at)
        if reason:
            entry = entry.add_extension(x509.CRLReason(RevocationReason(reason).flag), False)
        if invalidity_date is not None:
            entry = entry.add_extension(x509.InvalidityDate(invalidity_date), False)
        entries.append(entry.build())
    return (
        x509.CertificateRevocationListBuilder(revoked_certificates=entries)
        .issuer_name(issuer)
        .last_update(this_update)
        .next_update(next_update or this_update + datetime.timedelta(hours=24))
        .add_extension(x509.AuthorityKeyIdentifier(ski, None, None), False)
        .add_extension(x509.CRLNumber(number), False)
        .sign(key, signature_hash(key))
    )


def _header(
    key: CaPrivateKey,
    *,
    this_update: datetime.datetime = NOW,
    next_update: datetime.datetime | None = None,
    issuer: x509.Name = ISSUER,
    ski: bytes = SKI,
    number: int = 7,
) -> crl.CrlHeader:
    return crl.CrlHeader(
        issuer=issuer.public_bytes(),
        this_update=this_update,
        next_update=next_update or this_update + datetime.timedelta(hours=24),
        authority_key_identifier=ski,
        number=number,
        signature_algorithm=crl.signature_algorithm(key, signature_hash(key)),
    )


def _ago(**delta: float) -> datetime.datetime:
    return NOW - datetime.timedelta(**delta)


SHAPES: dict[str, list[Row]] = {
    "no entries": [],
    "unspecified, as None and as 0": [("7F", _ago(hours=1), None, None), ("0102", _ago(hours=2), 0, None)],
    "every reason": [
        (serial_hex(1000 + int(reason)), _ago(minutes=int(reason)), int(reason), None) for reason in RevocationReason
    ],
    "certificateHold": [("3A5F", _ago(days=1), int(RevocationReason.CERTIFICATE_HOLD), None)],
    "invalidity dates": [
        ("0A", _ago(hours=3), int(RevocationReason.KEY_COMPROMISE), _ago(days=40)),
        ("0B", _ago(hours=4), None, _ago(days=41, seconds=17)),
        ("0C", _ago(hours=5), int(RevocationReason.CERTIFICATE_HOLD), _ago(days=1)),
    ],
    "serials: small, high bit set, 20 octets, random 127-bit": [
        ("01", _ago(seconds=1), None, None),
        ("7F", _ago(seconds=2), None, None),
        ("80", _ago(seconds=3), 1, None),
        ("FF", _ago(seconds=4), 1, None),
        ("0100", _ago(seconds=5), 1, None),
        ("80000000000000000000000000000000000001", _ago(seconds=6), 4, None),  # 19 octets, high bit set
        ("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", _ago(seconds=7), 4, None),  # 159 bits: the most there is
        (serial_hex(serial_new()), _ago(seconds=8), 5, None),
        (serial_hex(serial_new()), _ago(seconds=8), 5, _ago(days=2)),
    ],
    "serials not in canonical form: odd length, leading zero octet": [
        ("ABC", _ago(seconds=1), None, None),
        ("00FF", _ago(seconds=2), 1, None),
        ("000001", _ago(seconds=3), None, None),
    ],
    "dates from 2050: GeneralizedTime": [
        ("10", datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC), 1, datetime.datetime(2049, 1, 1, tzinfo=UTC)),
        ("11", datetime.datetime(2050, 1, 1, tzinfo=UTC), 1, datetime.datetime(2050, 1, 1, tzinfo=UTC)),
        ("12", datetime.datetime(2061, 7, 4, 5, 6, 7, tzinfo=UTC), None, None),
        ("13", datetime.datetime(1950, 1, 1, tzinfo=UTC), None, datetime.datetime(1950, 1, 1, tzinfo=UTC)),
    ],
    "times: fractions dropped, other zones and naive ones as UTC": [
        ("20", NOW.replace(microsecond=999999), None, NOW.replace(microsecond=500000)),
        ("21", NOW.astimezone(datetime.timezone(datetime.timedelta(hours=8))), 3, None),
        (
            "22",
            datetime.datetime(2026, 1, 1, 23, 59, 59, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
            3,
            None,
        ),
        ("23", NOW.replace(tzinfo=None), 3, NOW.replace(tzinfo=None) - datetime.timedelta(days=3)),
        ("24", datetime.datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=UTC), 3, None),
    ],
    "long form lengths: 400 entries sharing and not sharing dates": [
        (serial_hex(serial_new()), _ago(minutes=i // 3), (0, 1, 3, 4, 5, 6)[i % 6], _ago(days=30) if i % 10 else None)
        for i in range(400)
    ],
}


@pytest.mark.parametrize("algorithm", ["ec-p256", "ec-p384", "rsa-2048"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_tbs_equals_cryptography_builder(algorithm: str, shape: str) -> None:
    key = _key(algorithm)
    rows = SHAPES[shape]
    reference = _reference(key, rows)
    revoked = crl.revoked_list(rows)
    assert revoked.count == len(rows)
    assert crl.tbs_certlist(_header(key), revoked.der) == reference.tbs_certlist_bytes
    der = crl.crl_sign(header=_header(key), entries=revoked.der, key=key, hash_algorithm=signature_hash(key))
    assert revoked.der == bytearray()  # consumed: the CRL was built around it in place
    parsed = x509.load_der_x509_crl(der)
    assert parsed.tbs_certlist_bytes == reference.tbs_certlist_bytes
    assert parsed.signature_algorithm_oid == reference.signature_algorithm_oid
    assert parsed.is_signature_valid(key.public_key())
    assert crl.crl_verifies(der, issuer_key=key.public_key(), entries=len(rows))
    assert not crl.crl_verifies(der, issuer_key=key.public_key(), entries=len(rows) + 1)
    if isinstance(key, rsa.RSAPrivateKey):
        # PKCS#1 v1.5 is deterministic: the whole CertificateList is the builder's, byte for byte.
        assert der == reference.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("this_update", "next_update", "number"),
    [
        (NOW, NOW + datetime.timedelta(days=30), 1),
        (datetime.datetime(2049, 12, 31, 12, tzinfo=UTC), datetime.datetime(2050, 1, 1, 12, tzinfo=UTC), 127),
        (datetime.datetime(2050, 3, 1, tzinfo=UTC), datetime.datetime(2050, 3, 2, tzinfo=UTC), 128),
        (NOW, NOW + datetime.timedelta(hours=6), 2**63 - 1),
        (NOW, NOW + datetime.timedelta(hours=6), 2**159 + 5),  # RFC 5280: up to 20 octets
    ],
)
def test_header_times_and_crl_numbers(
    this_update: datetime.datetime, next_update: datetime.datetime, number: int
) -> None:
    key = _key("ec-p256")
    rows = SHAPES["invalidity dates"]
    kwargs = {"this_update": this_update, "next_update": next_update, "number": number}
    reference = _reference(key, rows, **kwargs)  # type: ignore[arg-type]
    assert crl.tbs_certlist(_header(key, **kwargs), crl.revoked_list(rows).der) == reference.tbs_certlist_bytes  # type: ignore[arg-type]


def test_long_issuer_name_and_key_identifier() -> None:
    key = _key("rsa-2048")
    issuer = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"单位 {i} " + "x" * 40) for i in range(8)]
        + [x509.NameAttribute(NameOID.COMMON_NAME, "CA")]
    )
    ski = bytes(range(32))
    rows = SHAPES["every reason"]
    reference = _reference(key, rows, issuer=issuer, ski=ski)
    header = _header(key, issuer=issuer, ski=ski)
    assert crl.tbs_certlist(header, crl.revoked_list(rows).der) == reference.tbs_certlist_bytes


def test_refusals() -> None:
    with pytest.raises(ValueError, match="RevocationReason"):
        crl.revoked_list([("01", NOW, 7, None)])
    with pytest.raises(ValueError, match="RevocationReason"):
        crl.revoked_list([("01", NOW, 11, None)])
    with pytest.raises(ValueError, match="no revocation date"):
        crl.revoked_list([("01", NOW, None, None), ("02", None, None, None)])
    with pytest.raises(ValueError, match="before 1950"):
        crl.revoked_list([("01", datetime.datetime(1949, 12, 31, 23, 59, 59, tzinfo=UTC), None, None)])
    with pytest.raises(ValueError, match="before 1950"):
        crl.der_time(datetime.datetime(1949, 12, 31, tzinfo=UTC))
    for serial in ("8000000000000000000000000000000000000000", "00", "0000"):  # 160 bits, zero
        with pytest.raises(ValueError, match="longer than 20 octets"):
            crl.revoked_list([(serial, NOW, None, None)])
    with pytest.raises(ValueError, match="no CRL signature algorithm"):
        crl.signature_algorithm(_key("ec-p256"), hashes.SHA512_224())


def test_sample_is_the_newest_entries_and_one_of_every_shape() -> None:
    rows: list[Row] = [
        ("01", _ago(seconds=1), 4, None),
        ("02", _ago(seconds=2), 4, None),
        ("03", _ago(seconds=3), 4, None),
        ("04", _ago(seconds=4), 1, None),
        ("05", _ago(seconds=5), 1, _ago(days=1)),
        ("06", _ago(seconds=6), 4, None),
        ("07", _ago(seconds=7), None, None),
        ("08", _ago(seconds=8), 0, None),  # unspecified again: the same shape as None
    ]
    revoked = crl.revoked_list(rows, sample_limit=2)
    assert revoked.count == 8
    assert revoked.sample == [bytes(crl.revoked_list([rows[i]]).der) for i in (0, 1, 3, 4, 6)]
    assert len(crl.revoked_list(rows, sample_limit=100).sample) == 8


def test_openssl_reads_the_encoded_crl(tmp_path: Path) -> None:
    key = _key("ec-p256")
    rows = SHAPES["invalidity dates"] + SHAPES["dates from 2050: GeneralizedTime"] + SHAPES["every reason"]
    revoked = crl.revoked_list(rows)
    der = crl.crl_sign(header=_header(key), entries=revoked.der, key=key, hash_algorithm=hashes.SHA256())
    text = openssl("crl", "-inform", "DER", "-in", write(tmp_path / "t.crl", der), "-noout", "-text").stdout
    assert "Certificate Revocation List (CRL):" in text
    assert "Version 2 (0x1)" in text
    assert "Signature Algorithm: ecdsa-with-SHA256" in text
    assert "Last Update: May  1 12:30:45 2026 GMT" in text
    assert "X509v3 CRL Number: \n                7" in text
    assert text.count("Serial Number: ") == len(rows)
    assert "Serial Number: 11" in text and "Revocation Date: Jan  1 00:00:00 2050 GMT" in text
    for words in ("Key Compromise", "Certificate Hold", "Superseded", "Remove From CRL", "Invalidity Date"):
        assert words in text
    # …and so does pkilint, clean.
    assert lint_errors(lint.lint_crl(der)) == []


# --------------------------------------------------------------------------- keys in files and on the token


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.RSA_2048])
def test_backend_keys_sign_the_streamed_crl(ca_backend: str, algorithm: KeyAlgorithm, tmp_path: Path) -> None:
    """A key in a file or on SoftHSM (which receives only the digest) signs what the builder would sign."""
    key = key_backend().generate(key_ref=f"crl-{algorithm.value}", algorithm=algorithm)
    if ca_backend == "pkcs11":
        assert type(key).__module__ == "certdesk.pki.keys.pkcs11"
    rows = SHAPES["serials: small, high bit set, 20 octets, random 127-bit"] + SHAPES["invalidity dates"]
    reference = _reference(key, rows)
    der = crl.crl_sign(
        header=_header(key), entries=crl.revoked_list(rows).der, key=key, hash_algorithm=signature_hash(key)
    )
    parsed = x509.load_der_x509_crl(der)
    assert parsed.tbs_certlist_bytes == reference.tbs_certlist_bytes
    assert parsed.is_signature_valid(key.public_key())
    if algorithm is KeyAlgorithm.RSA_2048:
        assert der == reference.public_bytes(serialization.Encoding.DER)
    openssl("crl", "-inform", "DER", "-in", write(tmp_path / "k.crl", der), "-noout", "-text")


def _revoke_shapes() -> list[str]:
    """Revoke certificates of several entry shapes; one revoked in 2051 (GeneralizedTime through the DB)."""
    serials = []
    for reason, invalidity in [
        (RevocationReason.KEY_COMPROMISE, utcnow() - datetime.timedelta(days=3)),
        (RevocationReason.UNSPECIFIED, None),
        (RevocationReason.CERTIFICATE_HOLD, None),
        (RevocationReason.SUPERSEDED, None),
        (RevocationReason.CESSATION_OF_OPERATION, utcnow() - datetime.timedelta(hours=1)),
    ]:
        serial = issue().serial
        certificate_revoke(serial=serial, reason=reason, invalidity_date=invalidity)
        serials.append(serial)
    IssuedCertificate.objects.filter(serial=serials[-2]).update(
        revoked_at=datetime.datetime(2051, 2, 3, 4, 5, 6, tzinfo=UTC)
    )
    return serials


def test_crl_generate_matches_the_builder_and_stores_what_it_signed(ca: HierarchyInitResult, tmp_path: Path) -> None:
    serials = _revoke_shapes()
    info = crl_generate()
    assert info.entries == len(serials)
    stored = Crl.objects.get(issuer=ca.issuing, number=info.number)
    assert bytes(stored.der) == info.der and stored.entries == info.entries
    parsed = x509.load_der_x509_crl(info.der)
    signer = signer_for(CertificateAuthority.objects.get(pk=ca.issuing.pk))
    assert parsed.is_signature_valid(signer.certificate.public_key())  # type: ignore[arg-type]
    assert parsed.issuer == signer.certificate.subject
    # The same CRL from cryptography's builders, on the rows as the database holds them.
    rows = [
        (r.serial, r.revoked_at, r.revocation_reason, r.invalidity_date)
        for r in IssuedCertificate.objects.filter(issuer=ca.issuing, revoked_at__isnull=False).order_by("-revoked_at")
    ]
    ski = signer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    reference = _reference(
        signer.key,
        rows,  # type: ignore[arg-type]
        this_update=info.this_update,
        next_update=info.next_update,
        issuer=signer.certificate.subject,
        ski=ski,
        number=info.number,
    )
    assert parsed.tbs_certlist_bytes == reference.tbs_certlist_bytes
    entry = parsed.get_revoked_certificate_by_serial_number(int(serials[-2], 16))
    assert entry is not None and entry.revocation_date_utc.year == 2051
    assert lint_errors(lint.lint_crl(info.der)) == []
    text = openssl("crl", "-inform", "DER", "-in", write(tmp_path / "i.crl", info.der), "-noout", "-text").stdout
    assert text.count("Serial Number: ") == len(serials)


def test_rows_streamed_equals_the_queryset(ca: HierarchyInitResult, monkeypatch: pytest.MonkeyPatch) -> None:
    _revoke_shapes()
    rows = (
        IssuedCertificate.objects.filter(issuer=ca.issuing, revoked_at__isnull=False)
        .order_by("-revoked_at", "serial")
        .values_list("serial", "revoked_at", "revocation_reason", "invalidity_date")
    )
    expected = list(rows)
    if connection.vendor == "postgresql":
        # The binary server-side cursor, not Django's iterator, reads them there.
        monkeypatch.setattr(QuerySet, "iterator", None)
    with transaction.atomic():
        streamed = list(crl.rows_streamed(rows, chunk_size=2))
    assert streamed == expected
    assert all(row[1].utcoffset() == datetime.timedelta(0) for row in streamed)


def test_a_crl_that_fails_its_self_check_is_not_stored(
    ca: HierarchyInitResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate_revoke(serial=issue().serial, reason=RevocationReason.KEY_COMPROMISE)
    before = CertificateAuthority.objects.get(pk=ca.issuing.pk).crl_number
    count = Crl.objects.count()
    real_sign = crl._sign

    def wrong_data(key: CaPrivateKey, data: bytes | bytearray, hash_algorithm: hashes.HashAlgorithm) -> bytes:
        return real_sign(key, bytes(data) + b"!", hash_algorithm)

    monkeypatch.setattr(crl, "_sign", wrong_data)
    with pytest.raises(PkiError) as exc:
        crl_generate()
    assert exc.value.code == "crl_self_check_failed"
    assert CertificateAuthority.objects.get(pk=ca.issuing.pk).crl_number == before
    assert Crl.objects.count() == count
