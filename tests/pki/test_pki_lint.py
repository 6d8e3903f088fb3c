"""The candidate index on pkilint's validators and the remembered nested decodes change nothing but speed:
same findings, same order."""

from __future__ import annotations

import datetime
import gc
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pkilint import loader
from pkitestlib import issue, load_pem, utcnow
from pyasn1_alt_modules import rfc5280

from certdesk.pki import lint
from certdesk.pki.models import Crl
from certdesk.pki.services import HierarchyInitResult, certificate_revoke, ocsp_respond
from certdesk.pki.types import RevocationReason

Builder = x509.CertificateBuilder
CA_KEY = ec.generate_private_key(ec.SECP256R1())
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lint Test CA")])


def _base(subject: x509.Name | None = None, public_key: Any = None, *, years: int = 1) -> Builder:
    now = utcnow().replace(microsecond=0)
    start, end = now, now + datetime.timedelta(days=365 * years)
    return (
        x509.CertificateBuilder()
        .subject_name(subject if subject is not None else x509.Name([]))
        .issuer_name(CA_NAME)
        .public_key(public_key or ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )


def _der(builder: Builder) -> bytes:
    return builder.sign(CA_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


# Certificates with something wrong in every part pkilint looks at.
BROKEN: dict[str, Callable[[], bytes]] = {
    "no extensions, empty subject": lambda: _der(_base()),
    "CA without key usage or SKI": lambda: _der(
        _base(CA_NAME).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
    ),
    "bad URIs and DNS names": lambda: _der(
        _base()
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("-bad-.example..com"), x509.UniformResourceIdentifier("nope")]),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier("ht tp://x")], None, None, None)]
            ),
            critical=False,
        )
    ),
    "40 years, any EKU, RSA-1024": lambda: _der(
        _base(
            x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "某公司")]),
            rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(),  # noqa: S505 - on purpose
            years=40,  # notAfter past 2049: GeneralizedTime
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, False, False, False), critical=False)
    ),
    "policies with a user notice, AKI without key id": lambda: _der(
        _base(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x" * 64)]))
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier("1.2.3.4"), [x509.UserNotice(None, "n" * 300)])]
            ),
            critical=True,
        )
        .add_extension(x509.AuthorityKeyIdentifier(None, [x509.DirectoryName(CA_NAME)], 1), critical=False)
    ),
}


def _both(
    run: Callable[[Any, Any, bytes, str], list[lint.LintFinding]],
    new: Callable[..., Any],
    doc_loader: Any,
    der: bytes,
    label: str,
) -> tuple[list[str], list[str]]:
    """Findings as pkilint gives them (no index, nothing remembered) and as we run it (index, remembered
    decodes and checks, cold and then warm); the second is returned once both runs of it agree."""
    limit, checks = lint.DECODE_MEMO_MAX_BYTES, lint.CHECK_MEMO_MAX_ENTRIES
    try:
        lint.DECODE_MEMO_MAX_BYTES = -1  # every value decoded afresh
        lint.CHECK_MEMO_MAX_ENTRIES = 0  # every URI, DNS name, e-mail address checked afresh
        plain = [str(f) for f in run(doc_loader, new(indexed=False), der, label)]
    finally:
        lint.DECODE_MEMO_MAX_BYTES, lint.CHECK_MEMO_MAX_ENTRIES = limit, checks
    lint._decoded.clear()
    lint._checked.clear()
    cold = [str(f) for f in run(doc_loader, new(indexed=True), der, label)]
    warm = [str(f) for f in run(doc_loader, new(indexed=True), der, label)]
    assert warm == cold
    return plain, warm


def _certificate_findings(der: bytes) -> tuple[list[str], list[str]]:
    return _both(
        lint._run, lint._certificate_validator_new, loader.RFC5280CertificateDocumentLoader(), der, "certificate"
    )


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_certificates_get_the_same_findings(case: str) -> None:
    plain, indexed = _certificate_findings(BROKEN[case]())
    assert [f for f in plain if f.startswith(("ERROR", "WARNING", "FATAL"))], "the case must trip pkilint"
    assert indexed == plain


def test_our_certificates_crls_and_ocsp_responses_get_the_same_findings(ca: HierarchyInitResult) -> None:
    issued = [issue(), issue(profile="org-enc")]
    certificates = [r.certificate_der for r in issued] + [
        bytes(c.certificate_der or b"") for c in (ca.root, ca.issuing, ca.ocsp_signer)
    ]
    for der in certificates:
        plain, indexed = _certificate_findings(der)
        assert indexed == plain

    revoked = load_pem(issued[0].certificate_pem)
    certificate_revoke(
        serial=f"{revoked.serial_number:X}",
        reason=RevocationReason.KEY_COMPROMISE,
        invalidity_date=utcnow() - datetime.timedelta(days=1),
    )
    crl_der = bytes(Crl.objects.filter(issuer=ca.issuing).order_by("-number").first().der)  # type: ignore[union-attr]
    plain, indexed = _both(
        lint._run, lint._crl_validator_new, loader.RFC5280CertificateListDocumentLoader(), crl_der, "crl"
    )
    assert indexed == plain

    issuing = x509.load_der_x509_certificate(bytes(ca.issuing.certificate_der or b""))
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(revoked, issuing, hashes.SHA256())
        .add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False)
        .build()
    )
    response = ocsp_respond(request_der=request.public_bytes(serialization.Encoding.DER))
    plain, indexed = _both(
        lint._run, lint._ocsp_validator_new, loader.RFC6960OCSPResponseDocumentLoader(), response, "ocsp"
    )
    assert indexed == plain


def test_the_served_validators_are_indexed() -> None:
    # The lint functions use the indexed containers (what the equivalence tests above vouch for).
    for validator in (lint._certificate_validator(), lint._crl_validator(), lint._ocsp_validator()):
        assert "_validate_rec" in vars(validator)


def test_nested_values_are_decoded_once_and_documents_always(ca: HierarchyInitResult) -> None:
    lint._decoded.clear()
    first, second = issue(), issue()
    lint._decoded.clear()
    lint.lint_certificate(first.certificate_der)
    remembered = dict(lint._decoded)
    assert remembered, "extension values and names were remembered"
    assert all(len(key[1]) <= lint.DECODE_MEMO_MAX_BYTES for key in remembered)
    assert first.certificate_der not in {key[1] for key in remembered}  # the document itself is not
    # Nor the subject key identifier: it differs in every certificate.
    assert not any(isinstance(spec, rfc5280.SubjectKeyIdentifier) for spec, _value in remembered.values())
    lint.lint_certificate(second.certificate_der)
    shared = set(remembered) & set(lint._decoded)
    # Same profile, issuer and organisation: all but the per-certificate values (key id, …) were reused.
    assert len(shared) >= len(remembered) - 2
    assert all(lint._decoded[key] is remembered[key] for key in shared)


def test_a_value_that_fails_to_decode_is_reported_every_time() -> None:
    bad_basic_constraints = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.19"), b"\x05\x00")
    der = _der(_base().add_extension(bad_basic_constraints, critical=False))
    lint._decoded.clear()
    for _ in range(2):  # the failure is not remembered as a value: pkilint reports it again
        fatal = [str(f) for f in lint.lint_certificate(der) if f.severity == "FATAL"]
        assert any("itu.invalid_asn1_syntax" in f and "BasicConstraints" in f for f in fatal), fatal
    assert all(key[1] != b"\x05\x00" for key in lint._decoded)


def test_each_url_is_checked_once(ca: HierarchyInitResult, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    pkilint_check = lint._pkilint_validators_predicate

    def counting(func: Any, value: Any) -> bool:
        checked.append(value)
        return bool(pkilint_check(func, value))

    monkeypatch.setattr(lint, "_pkilint_validators_predicate", counting)
    lint._checked.clear()
    first, second = issue(), issue()
    assert lint.blocking(lint.lint_certificate(first.certificate_der)) == []
    urls = list(checked)
    assert any(url.endswith("/pki/ocsp/") for url in urls) and len(urls) == len(set(urls))
    lint.lint_certificate(second.certificate_der)
    assert checked == urls  # the same URLs in the next certificate: not checked again


def test_a_bad_url_is_refused_every_time() -> None:
    der = BROKEN["bad URIs and DNS names"]()
    lint._checked.clear()
    first = [str(f) for f in lint.lint_certificate(der)]
    assert any("invalid_uri_syntax" in f for f in first)
    assert [str(f) for f in lint.lint_certificate(der)] == first
    assert False in lint._checked.values()


def test_a_linted_document_leaves_nothing_for_the_cyclic_collector(ca: HierarchyInitResult) -> None:
    # pkilint's nodes point at their parents and back: unlinked after the lint, reference counting
    # frees every tree at once (before, ~650 objects a certificate waited for a collection).
    issued = load_pem(issue().certificate_pem)
    certificate_revoke(serial=f"{issued.serial_number:X}", reason=RevocationReason.KEY_COMPROMISE)
    crl_der = bytes(Crl.objects.filter(issuer=ca.issuing).order_by("-number").first().der)  # type: ignore[union-attr]
    issuing = x509.load_der_x509_certificate(bytes(ca.issuing.certificate_der or b""))
    request = ocsp.OCSPRequestBuilder().add_certificate(issued, issuing, hashes.SHA1()).build()  # noqa: S303 - as clients send it
    response_der = ocsp_respond(request_der=request.public_bytes(serialization.Encoding.DER))
    certificate_der = issued.public_bytes(serialization.Encoding.DER)
    gc.collect()
    gc.disable()
    try:
        lint.lint_certificate(certificate_der)
        lint.lint_crl(crl_der)
        lint.lint_ocsp_response(response_der)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_the_collector_is_off_during_a_lint_and_left_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    during: list[bool] = []
    findings = lint._findings

    def noting(results: Any) -> list[lint.LintFinding]:
        during.append(gc.isenabled())
        return findings(results)

    monkeypatch.setattr(lint, "_findings", noting)
    der = BROKEN["no extensions, empty subject"]()
    lint.lint_certificate(der)
    assert gc.isenabled()
    gc.disable()
    try:
        lint.lint_certificate(der)
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert during == [False, False]
