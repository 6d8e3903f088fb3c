"""Issuance: profiles, key policy, serials, renewal, lint-before-sign, record-before-sign."""

from __future__ import annotations

import datetime
from io import StringIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import Client
from pkitestlib import (
    ORG,
    ORGANIZATION_IDENTIFIER,
    OTHER_USCC,
    USCC,
    ec_key,
    issue,
    lint_errors,
    load_pem,
    make_csr,
    openssl,
    served_chain,
    utcnow,
    write,
)
from pytest_django.fixtures import Settings

from certdesk.pki import issuance, lint
from certdesk.pki.errors import CsrInvalid, KeyBackendError, KeyRejected, LintFailed, RequestInvalid
from certdesk.pki.models import IssuedCertificate
from certdesk.pki.profiles import add_years
from certdesk.pki.services import HierarchyInitResult, certificate_revoke
from certdesk.pki.types import RevocationReason


def test_org_sign_certificate(ca: HierarchyInitResult, client: Client, tmp_path: Path, settings: Settings) -> None:
    settings.PKI_POLICY_OID = "1.3.6.1.4.1.32473.7.7"
    settings.PKI_BASE_URL = "https://ca.example.cn/"
    key = ec_key()
    result = issue(csr_pem=make_csr(key), validity_years=3, reference="ORD-1")
    certificate = load_pem(result.certificate_pem)

    subject = certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "CN"
    assert subject.get_attributes_for_oid(NameOID.STATE_OR_PROVINCE_NAME)[0].value == "北京市"
    assert subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)[0].value == "北京市"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ORG
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ORG
    assert subject.get_attributes_for_oid(ORGANIZATION_IDENTIFIER)[0].value == f"NTRCN-{USCC}"
    assert certificate.public_key() == key.public_key()

    ext = certificate.extensions
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_encipherment and not ku.value.key_agreement and not ku.value.key_cert_sign
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ExtendedKeyUsageOID.CLIENT_AUTH in ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    policies = ext.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == ["1.3.6.1.4.1.32473.7.7"]
    crldp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert crldp[0].full_name[0].value == "https://ca.example.cn/pki/crl/issuing.crl"  # type: ignore[index]
    aia = {
        d.access_method.dotted_string: d.access_location.value
        for d in ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    }
    assert aia == {
        "1.3.6.1.5.5.7.48.1": "https://ca.example.cn/pki/ocsp/",
        "1.3.6.1.5.5.7.48.2": "https://ca.example.cn/pki/ca/issuing.crt",
    }
    issuing = x509.load_der_x509_certificate(bytes(ca.issuing.certificate_der or b""))
    assert (
        ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        == issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    )
    assert ext.get_extension_for_class(x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        key.public_key()
    )
    assert result.not_after == add_years(result.not_before, 3)
    assert certificate.not_valid_after_utc == result.not_after

    # pkilint clean, and openssl accepts it against the chain the portal serves.
    assert lint_errors(lint.lint_certificate(result.certificate_der)) == []
    root_pem, issuing_pem = served_chain(client, tmp_path)
    leaf = write(tmp_path / "leaf.pem", result.certificate_pem)
    assert openssl("verify", "-CAfile", root_pem, "-untrusted", issuing_pem, leaf).stdout.strip() == f"{leaf}: OK"
    chain = write(tmp_path / "chain.pem", result.chain_pem)
    assert "OK" in openssl("verify", "-CAfile", root_pem, "-untrusted", chain, leaf).stdout

    record = IssuedCertificate.objects.get(serial=result.serial)
    assert record.status == "issued" and record.reference == "ORD-1" and record.uscc == USCC
    precertificate = x509.load_der_x509_certificate(bytes(record.precertificate_der))
    # What was linted is exactly what was signed, and its findings are stored with the certificate.
    assert precertificate.tbs_certificate_bytes == certificate.tbs_certificate_bytes
    linted = [str(f) for f in lint.lint_certificate(bytes(record.precertificate_der))]
    assert record.lint_findings == list(result.lint_findings) == linted
    assert precertificate.signature != certificate.signature


def test_serials_are_random_positive_and_unique(ca: HierarchyInitResult) -> None:
    serials = [load_pem(issue().certificate_pem).serial_number for _ in range(12)]
    assert len(set(serials)) == 12
    for serial in serials:
        assert serial > 0 and serial.bit_length() == 127  # 126 random bits + the fixed top bit
    assert len({s >> 64 for s in serials}) == 12  # no shared prefix beyond chance
    assert IssuedCertificate.objects.filter(serial=format(serials[0], "X")).exists()


@pytest.mark.parametrize(
    ("key_factory", "expected"),
    [
        (lambda: ec_key(), {"key_agreement"}),
        (
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
            {"key_encipherment", "data_encipherment"},
        ),
    ],
    ids=["ec", "rsa"],
)
def test_org_enc_key_usage_follows_key_type(ca: HierarchyInitResult, key_factory: object, expected: set[str]) -> None:
    key = key_factory()  # type: ignore[operator]
    certificate = load_pem(issue(profile="org-enc", csr_pem=make_csr(key)).certificate_pem)
    ku = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement")
    assert {n for n in names if getattr(ku, n)} == expected
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert lint_errors(lint.lint_certificate(certificate.public_bytes(serialization.Encoding.DER))) == []


def test_dual_certificates_from_a_public_key_with_verified_possession(ca: HierarchyInitResult) -> None:
    sign = issue(profile="org-sign")
    enc_key = ec_key()
    enc_public = (
        enc_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(RequestInvalid) as exc:
        issue(profile="org-enc", public_key_pem=enc_public)
    assert exc.value.code == "pop_not_verified"
    enc = issue(profile="org-enc", public_key_pem=enc_public, proof_of_possession_verified=True)
    assert load_pem(enc.certificate_pem).public_key() == enc_key.public_key()
    assert sign.serial != enc.serial
    with pytest.raises(RequestInvalid) as exc:
        issue(profile="org-enc", public_key_pem=enc_public, csr_pem=make_csr(), proof_of_possession_verified=True)
    assert exc.value.code == "request_invalid"


def test_renewal_runs_on_from_the_old_expiry(ca: HierarchyInitResult) -> None:
    old = issue(validity_years=2)
    renewed = issue(validity_years=1, renewal_of=old.serial.lower())
    assert renewed.not_after == add_years(old.not_after, 1)
    assert renewed.not_before <= utcnow()
    record = IssuedCertificate.objects.get(serial=renewed.serial)
    assert record.renewal_of is not None and record.renewal_of.serial == old.serial

    # An expired certificate renews from now.
    IssuedCertificate.objects.filter(serial=old.serial).update(not_after=utcnow() - datetime.timedelta(days=30))
    late = issue(validity_years=1, renewal_of=old.serial)
    assert abs((late.not_after - add_years(late.not_before, 1)).total_seconds()) < 2

    with pytest.raises(RequestInvalid) as exc:
        issue(renewal_of=old.serial, uscc=OTHER_USCC)
    assert exc.value.code == "renewal_invalid"
    with pytest.raises(RequestInvalid) as exc:
        issue(renewal_of="ABCDEF")
    assert exc.value.code == "renewal_invalid"
    certificate_revoke(serial=old.serial, reason=RevocationReason.SUPERSEDED)
    with pytest.raises(RequestInvalid) as exc:
        issue(renewal_of=old.serial)
    assert exc.value.code == "renewal_invalid"


def test_validity_limits(ca: HierarchyInitResult, settings: Settings) -> None:
    for years in (0, 6, -1):
        with pytest.raises(RequestInvalid) as exc:
            issue(validity_years=years)
        assert exc.value.code == "validity_invalid"
    settings.PKI_MAX_VALIDITY_YEARS = 20
    with pytest.raises(RequestInvalid) as exc:
        issue(validity_years=15)
    assert exc.value.code == "validity_exceeds_issuer"


def _tampered_csr() -> str:
    csr = x509.load_pem_x509_csr(make_csr().encode())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    # Flip a byte of the subject (inside the signed part): the signature no longer matches.
    index = bytes(der).index(ORG.encode())
    der[index] ^= 0x01
    return x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(
    ("make", "error", "code"),
    [
        (lambda: {"csr_pem": _tampered_csr()}, CsrInvalid, "csr_bad_signature"),
        (
            lambda: {"csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"},
            CsrInvalid,
            "csr_invalid",
        ),
        (lambda: {"csr_pem": "garbage"}, CsrInvalid, "csr_invalid"),
        (
            lambda: {"csr_pem": make_csr(rsa.generate_private_key(public_exponent=65537, key_size=1024))},  # noqa: S505 - refused by design
            KeyRejected,
            "key_too_small",
        ),
        (
            lambda: {"csr_pem": make_csr(rsa.generate_private_key(public_exponent=3, key_size=2048))},
            KeyRejected,
            "key_rsa_exponent",
        ),
        (lambda: {"csr_pem": make_csr(ec.generate_private_key(ec.SECP256K1()))}, KeyRejected, "key_curve_unsupported"),
        (lambda: {"csr_pem": make_csr(ec.generate_private_key(ec.SECP521R1()))}, KeyRejected, "key_curve_unsupported"),
        (lambda: {"csr_pem": _ed25519_csr()}, KeyRejected, "key_type_unsupported"),
        (lambda: {"uscc": "91500000000000000"}, RequestInvalid, "subject_invalid"),
        (lambda: {"uscc": "91110000600037341A"}, RequestInvalid, "subject_invalid"),
        (lambda: {"organisation_name": ""}, RequestInvalid, "subject_invalid"),
        (lambda: {"organisation_name": "甲" * 65}, RequestInvalid, "subject_invalid"),
        (lambda: {"profile": "server-tls"}, RequestInvalid, "profile_unknown"),
        (lambda: {"profile": "issuing-ca"}, RequestInvalid, "profile_unknown"),
    ],
    ids=[
        "bad-signature",
        "csr-not-der",
        "csr-not-pem",
        "rsa-1024",
        "rsa-e3",
        "secp256k1",
        "p521",
        "ed25519",
        "uscc-17-chars",
        "uscc-checksum",
        "no-org",
        "org-too-long",
        "unknown-profile",
        "internal-profile",
    ],
)
def test_refusals(ca: HierarchyInitResult, make: object, error: type[Exception], code: str) -> None:
    before = IssuedCertificate.objects.count()
    with pytest.raises(error) as exc:
        issue(**make())  # type: ignore[operator]
    assert exc.value.code == code  # type: ignore[attr-defined]
    assert exc.value.message  # type: ignore[attr-defined]
    assert IssuedCertificate.objects.count() == before  # refused before anything was recorded


def _ed25519_csr() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ORG)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, None)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_weak_rsa_modulus_is_refused() -> None:
    from certdesk.pki.keypolicy import public_key_check

    # p and q adjacent primes: Fermat factorisation finds them at once.
    p = 2**1024 + 643
    q = 2**1024 + 1081  # both prime? not needed: n = p*q with close factors is the weakness tested
    n = p * q
    key = rsa.RSAPublicNumbers(65537, n).public_key()
    with pytest.raises(KeyRejected) as exc:
        public_key_check(key)
    assert exc.value.code == "key_weak"
    small_factor = rsa.RSAPublicNumbers(65537, 3 * (2**2047 + 1)).public_key()
    with pytest.raises(KeyRejected) as exc:
        public_key_check(small_factor)
    assert exc.value.code == "key_weak"


def test_key_revoked_for_compromise_cannot_be_certified_again(ca: HierarchyInitResult) -> None:
    key = ec_key()
    first = issue(csr_pem=make_csr(key))
    second = issue(csr_pem=make_csr(key))  # the same key may be re-certified while not compromised
    certificate_revoke(serial=first.serial, reason=RevocationReason.SUPERSEDED)
    issue(csr_pem=make_csr(key))
    certificate_revoke(serial=second.serial, reason=RevocationReason.KEY_COMPROMISE)
    with pytest.raises(KeyRejected) as exc:
        issue(csr_pem=make_csr(key))
    assert exc.value.code == "key_compromised"
    with pytest.raises(KeyRejected):
        issue(
            public_key_pem=key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode(),
            proof_of_possession_verified=True,
        )
    issue(csr_pem=make_csr(ec_key()))  # another key is fine


def test_ca_key_is_never_certified(ca: HierarchyInitResult) -> None:
    issuing_public = x509.load_der_x509_certificate(bytes(ca.issuing.certificate_der or b"")).public_key()
    pem = issuing_public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyRejected) as exc:
        issue(public_key_pem=pem.decode(), proof_of_possession_verified=True)
    assert exc.value.code == "key_is_ca_key"


def test_lint_error_refuses_and_records_why(ca: HierarchyInitResult, settings: Settings) -> None:
    # A misconfigured publication URL is exactly what pkilint catches (invalid URI in CRL DP / AIA).
    settings.PKI_BASE_URL = "http://bad host"
    with pytest.raises(LintFailed) as exc:
        issue()
    assert exc.value.code == "lint_failed"
    assert any("pkix.invalid_uri_syntax" in f for f in exc.value.findings)
    record = IssuedCertificate.objects.order_by("-id").first()
    assert record is not None
    assert record.status == "failed" and record.certificate_der is None
    assert "invalid_uri_syntax" in record.failure_reason and record.lint_findings


def test_lint_threshold_can_refuse_warnings(ca: HierarchyInitResult, settings: Settings) -> None:
    settings.PKI_LINT_FAIL_SEVERITY = "WARNING"
    issue()  # our profiles raise no warnings
    settings.PKI_LINT_FAIL_SEVERITY = "INFO"  # stricter than anyone would run: INFO findings now refuse
    with pytest.raises(LintFailed):
        issue()


def _ca_signature_raises(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """The CA key's signature (the second `sign` of an issuance; the first signs the lint pre-certificate)
    raises `error`."""
    original = x509.CertificateBuilder.sign
    calls = {"n": 0}

    def sign(self: x509.CertificateBuilder, key: object, algorithm: object, **kw: object) -> x509.Certificate:
        calls["n"] += 1
        if calls["n"] == 2:
            raise error
        return original(self, key, algorithm, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(x509.CertificateBuilder, "sign", sign)


def test_a_crash_during_lint_leaves_a_record_and_nothing_signed(
    ca: HierarchyInitResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The record comes first (lint runs while its INSERT commits): a crash in lint leaves it `recorded`,
    # with the pre-certificate, and the CA key never signs.
    def crash(der: bytes) -> list[object]:
        raise RuntimeError("worker killed during lint")

    monkeypatch.setattr(issuance.lint, "lint_certificate", crash)
    _ca_signature_raises(monkeypatch, AssertionError("the CA key signed after a crash in lint"))
    with pytest.raises(RuntimeError, match="during lint"):
        issue(reference="crash-1")
    record = IssuedCertificate.objects.get(reference="crash-1")
    assert record.status == "recorded" and record.certificate_der is None and record.lint_findings == []
    assert x509.load_der_x509_certificate(bytes(record.precertificate_der)).serial_number == int(record.serial, 16)


def test_a_crash_while_signing_leaves_a_record_that_says_how_far_it_got(
    ca: HierarchyInitResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not an Exception: as when the worker is killed, no handler runs.
    _ca_signature_raises(monkeypatch, SystemExit("worker killed while signing"))
    with pytest.raises(SystemExit):
        issue(reference="crash-2")
    record = IssuedCertificate.objects.get(reference="crash-2")
    # Recorded before the signature: possibly signed, revocable; the linted TBS is kept.
    assert record.status == "recorded" and record.certificate_der is None
    assert record.precertificate_der
    assert x509.load_der_x509_certificate(bytes(record.precertificate_der)).serial_number == int(record.serial, 16)


def test_signing_failure_marks_the_record_failed(ca: HierarchyInitResult, monkeypatch: pytest.MonkeyPatch) -> None:
    _ca_signature_raises(monkeypatch, RuntimeError("HSM unplugged"))
    with pytest.raises(KeyBackendError) as exc:
        issue(reference="hsm-1")
    assert exc.value.code == "signing_failed"
    record = IssuedCertificate.objects.get(reference="hsm-1")
    assert record.status == "failed" and "HSM unplugged" in record.failure_reason and record.certificate_der is None
    # The lint ran (and passed) before the signature: its findings are kept with the failure.
    assert record.lint_findings and all(finding.startswith("INFO ") for finding in record.lint_findings)


def test_issue_refuses_to_run_inside_a_callers_transaction(ca: HierarchyInitResult) -> None:
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        issue()


def _csr_file(tmp_path: Path, **kwargs: object) -> Path:
    return write(tmp_path / "req.csr", make_csr(**kwargs))  # type: ignore[arg-type]


def test_pki_issue_command(ca: HierarchyInitResult, tmp_path: Path) -> None:
    out = tmp_path / "cert.pem"
    stdout = StringIO()
    call_command(
        "pki_issue",
        "--csr",
        _csr_file(tmp_path),
        "--profile",
        "org-sign",
        "--years",
        "2",
        "--out",
        out,
        "--chain",
        stdout=stdout,
    )
    text = out.read_text()
    assert text.count("BEGIN CERTIFICATE") == 3
    certificate = x509.load_pem_x509_certificate(text.encode())
    assert certificate.subject.get_attributes_for_oid(ORGANIZATION_IDENTIFIER)[0].value == f"NTRCN-{USCC}"
    assert "issued" in stdout.getvalue()
    # DER CSRs are accepted too.
    der = x509.load_pem_x509_csr(make_csr().encode()).public_bytes(serialization.Encoding.DER)
    call_command(
        "pki_issue", "--csr", write(tmp_path / "r.der", der), "--profile", "org-enc", "--out", out, stdout=StringIO()
    )
    assert (
        x509.load_pem_x509_certificate(out.read_bytes())
        .extensions.get_extension_for_class(x509.KeyUsage)
        .value.key_agreement
    )


@pytest.mark.parametrize(
    ("csr_kwargs", "fragment"),
    [
        ({"uscc": None}, "organizationIdentifier"),
        ({"uscc": "91500000000000000"}, "统一社会信用代码"),
        ({"org": ""}, "（O）"),
        ({"cn": "别的名字"}, "CN"),
    ],
    ids=["no-org-id", "bad-uscc", "no-o", "cn-differs"],
)
def test_pki_issue_checks_the_csr_subject_against_the_profile(
    ca: HierarchyInitResult, tmp_path: Path, csr_kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(CommandError) as exc:
        call_command(
            "pki_issue",
            "--csr",
            _csr_file(tmp_path, **csr_kwargs),
            "--profile",
            "org-sign",
            "--out",
            tmp_path / "x.pem",
        )
    assert "[subject_invalid]" in str(exc.value) and fragment in str(exc.value)
    assert not (tmp_path / "x.pem").exists()


def test_pki_issue_refuses_a_bad_csr_file(ca: HierarchyInitResult, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="csr_invalid"):
        call_command(
            "pki_issue",
            "--csr",
            write(tmp_path / "x.csr", "nonsense"),
            "--profile",
            "org-sign",
            "--out",
            tmp_path / "o",
        )
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key under test
    with pytest.raises(CommandError, match="key_too_small"):
        call_command(
            "pki_issue", "--csr", _csr_file(tmp_path, key=key), "--profile", "org-sign", "--out", tmp_path / "o"
        )


def test_issued_certificates_are_signed_by_the_issuing_key(ca: HierarchyInitResult) -> None:
    certificate = load_pem(issue().certificate_pem)
    issuing = x509.load_der_x509_certificate(bytes(ca.issuing.certificate_der or b""))
    certificate.verify_directly_issued_by(issuing)
    assert certificate.signature_hash_algorithm is not None
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
