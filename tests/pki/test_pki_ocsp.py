"""OCSP responder (RFC 6960): statuses, nonce, delegated signer, pre-signed hot path, errors."""

from __future__ import annotations

import base64
import datetime
import hashlib
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.test import Client
from pkitestlib import ec_key, issue, lint_errors, load_pem, utcnow
from pytest_django.fixtures import Settings

from certdesk.pki import lint, responder
from certdesk.pki.models import CertificateAuthority, OcspResponse
from certdesk.pki.services import (
    HierarchyInitResult,
    certificate_revoke,
    certificate_unhold,
    ocsp_respond,
    ocsp_signer_rotate,
    pki_maintain,
)
from certdesk.pki.types import RevocationReason


def _issuing(ca: HierarchyInitResult) -> x509.Certificate:
    return x509.load_der_x509_certificate(bytes(ca.issuing.certificate_der or b""))


def _request(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    *,
    algorithm: hashes.HashAlgorithm | None = None,
    nonce: bytes | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, algorithm or hashes.SHA1())  # noqa: S303
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _check_signed(der: bytes, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    signer = response.certificates[0]
    # A delegated responder certificate, issued by the CA, for OCSP signing, exempt from checking.
    signer.verify_directly_issued_by(issuer)
    assert ExtendedKeyUsageOID.OCSP_SIGNING in signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert signer.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(signer.public_key()).digest  # type: ignore[arg-type]
    public = signer.public_key()
    assert response.signature_hash_algorithm is not None
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))
    else:
        public.verify(
            response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm
        )  # type: ignore[union-attr]
    assert lint_errors(lint.lint_ocsp_response(der)) == []
    return response


def test_good_revoked_unknown(ca: HierarchyInitResult, settings: Settings) -> None:
    issuing = _issuing(ca)
    good = load_pem(issue().certificate_pem)
    response = _check_signed(ocsp_respond(request_der=_request(good, issuing)), issuing)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == good.serial_number
    assert response.next_update_utc is not None
    assert response.next_update_utc - response.this_update_utc == datetime.timedelta(hours=24)

    revoked = load_pem(issue().certificate_pem)
    info = certificate_revoke(serial=format(revoked.serial_number, "X"), reason=RevocationReason.KEY_COMPROMISE)
    response = _check_signed(ocsp_respond(request_der=_request(revoked, issuing)), issuing)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == info.revoked_at
    assert response.revocation_reason == x509.ReasonFlags.key_compromise

    # A certificate we never issued (same issuer name and key, made-up serial).
    stranger = (
        x509.CertificateBuilder()
        .subject_name(good.subject)
        .issuer_name(issuing.subject)
        .public_key(ec_key().public_key())
        .serial_number(0x1234567890ABCDEF)
        .not_valid_before(utcnow())
        .not_valid_after(utcnow() + datetime.timedelta(days=1))
        .sign(ec_key(), hashes.SHA256())
    )
    response = _check_signed(ocsp_respond(request_der=_request(stranger, issuing)), issuing)
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    assert not OcspResponse.objects.filter(serial="1234567890ABCDEF").exists()  # unknowns are not cached


@pytest.mark.parametrize("algorithm", [hashes.SHA256(), hashes.SHA384(), hashes.SHA512()], ids=lambda a: a.name)
def test_other_certid_hashes(ca: HierarchyInitResult, algorithm: hashes.HashAlgorithm) -> None:
    issuing = _issuing(ca)
    good = load_pem(issue().certificate_pem)
    response = _check_signed(ocsp_respond(request_der=_request(good, issuing, algorithm=algorithm)), issuing)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.hash_algorithm.name == algorithm.name


def test_nonce_is_echoed_and_signed_fresh(ca: HierarchyInitResult) -> None:
    issuing = _issuing(ca)
    good = load_pem(issue().certificate_pem)
    first = ocsp.load_der_ocsp_response(ocsp_respond(request_der=_request(good, issuing, nonce=b"n" * 16)))
    second = ocsp.load_der_ocsp_response(ocsp_respond(request_der=_request(good, issuing, nonce=b"m" * 16)))
    assert first.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16
    assert second.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"m" * 16
    plain = ocsp.load_der_ocsp_response(ocsp_respond(request_der=_request(good, issuing)))
    with pytest.raises(x509.ExtensionNotFound):
        plain.extensions.get_extension_for_class(x509.OCSPNonce)


def test_hot_path_serves_the_pre_signed_response_without_signing(
    ca: HierarchyInitResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuing = _issuing(ca)
    result = issue()
    good = load_pem(result.certificate_pem)
    stored = OcspResponse.objects.get(serial=result.serial, hash_algorithm="sha1")  # published at issuance

    def no_signing(**kwargs: object) -> object:
        raise AssertionError("the hot path must not sign")

    monkeypatch.setattr(responder, "sign_response", no_signing)
    request = _request(good, issuing)
    assert ocsp_respond(request_der=request) == bytes(stored.der)
    assert ocsp_respond(request_der=request) == bytes(stored.der)
    monkeypatch.undo()

    # Revocation re-signs the stored response in the same transaction: the next request sees it.
    certificate_revoke(serial=result.serial, reason=RevocationReason.CERTIFICATE_HOLD)
    answer = ocsp.load_der_ocsp_response(ocsp_respond(request_der=request))
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.certificate_hold
    certificate_unhold(serial=result.serial)
    assert ocsp.load_der_ocsp_response(ocsp_respond(request_der=request)).certificate_status == ocsp.OCSPCertStatus.GOOD


def test_stale_responses_are_refreshed(ca: HierarchyInitResult) -> None:
    issuing = _issuing(ca)
    result = issue()
    good = load_pem(result.certificate_pem)
    old_next = utcnow().replace(microsecond=0) + datetime.timedelta(hours=2)
    OcspResponse.objects.filter(serial=result.serial).update(next_update=old_next)
    report = pki_maintain()
    assert report["ocsp_responses"] == 1
    assert OcspResponse.objects.get(serial=result.serial).next_update > old_next
    # Also on the request path, if the periodic refresh was late.
    OcspResponse.objects.filter(serial=result.serial).update(next_update=old_next)
    answer = ocsp.load_der_ocsp_response(ocsp_respond(request_der=_request(good, issuing)))
    assert answer.next_update_utc is not None and answer.next_update_utc > old_next


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x00", b"garbage", b"\x30\x03\x02\x01\x01", b"\x30" + b"\x82\xff\xff" + b"A" * 100, b"A" * 5000],
    ids=["empty", "zero", "text", "wrong-der", "truncated", "too-big"],
)
def test_malformed_requests_get_malformed_request(ca: HierarchyInitResult, garbage: bytes) -> None:
    response = ocsp.load_der_ocsp_response(ocsp_respond(request_der=garbage))
    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_unknown_issuer_is_unauthorized(ca: HierarchyInitResult) -> None:
    other_key = ec_key()
    other_ca = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=Some Other CA"))
        .issuer_name(x509.Name.from_rfc4514_string("CN=Some Other CA"))
        .public_key(other_key.public_key())
        .serial_number(7)
        .not_valid_before(utcnow())
        .not_valid_after(utcnow() + datetime.timedelta(days=1))
        .sign(other_key, hashes.SHA256())
    )
    response = ocsp.load_der_ocsp_response(ocsp_respond(request_der=_request(other_ca, other_ca)))
    assert response.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_http_post_and_get(ca: HierarchyInitResult, client: Client) -> None:
    issuing = _issuing(ca)
    good = load_pem(issue().certificate_pem)
    request = _request(good, issuing)
    response = client.post("/pki/ocsp/", data=request, content_type="application/ocsp-request")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(response.content).certificate_status == ocsp.OCSPCertStatus.GOOD

    encoded = urllib.parse.quote(base64.b64encode(request).decode(), safe="")
    response = client.get(f"/pki/ocsp/{encoded}")
    assert response.status_code == 200
    assert ocsp.load_der_ocsp_response(response.content).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert "max-age=" in response["Cache-Control"] and "public" in response["Cache-Control"]
    assert response["ETag"] and response["Last-Modified"] and response["Expires"]
    # URL-safe alphabet without padding is accepted too.
    urlsafe = base64.urlsafe_b64encode(request).decode().rstrip("=")
    assert (
        ocsp.load_der_ocsp_response(client.get(f"/pki/ocsp/{urlsafe}").content).certificate_status
        == ocsp.OCSPCertStatus.GOOD
    )

    for bad in (
        client.get("/pki/ocsp/!!!not-base64!!!"),
        client.post("/pki/ocsp/", data=b"junk", content_type="application/ocsp-request"),
    ):
        assert bad.status_code == 200
        assert ocsp.load_der_ocsp_response(bad.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        assert bad["Cache-Control"] == "no-store"
    assert client.put("/pki/ocsp/", data=b"x").status_code == 405


def test_ocsp_survives_internal_errors(
    ca: HierarchyInitResult, monkeypatch: pytest.MonkeyPatch, client: Client
) -> None:
    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(responder, "respond", broken)
    response = client.post("/pki/ocsp/", data=b"\x30\x00", content_type="application/ocsp-request")
    assert response.status_code == 200
    assert ocsp.load_der_ocsp_response(response.content).response_status == ocsp.OCSPResponseStatus.INTERNAL_ERROR


def test_signer_rotation(ca: HierarchyInitResult, settings: Settings) -> None:
    issuing = _issuing(ca)
    good = load_pem(issue().certificate_pem)
    old_signer = ca.ocsp_signer
    assert ocsp_signer_rotate().pk == old_signer.pk  # not due yet

    # Due: less than PKI_OCSP_SIGNER_RENEW_BEFORE_DAYS left.
    settings.PKI_OCSP_SIGNER_RENEW_BEFORE_DAYS = 31
    report = pki_maintain()
    assert report["ocsp_signers"] == 1
    new_signer = CertificateAuthority.objects.get(role="ocsp", status="active")
    assert new_signer.pk != old_signer.pk
    assert CertificateAuthority.objects.get(pk=old_signer.pk).status == "retired"
    settings.PKI_OCSP_SIGNER_RENEW_BEFORE_DAYS = 10

    # Forced rotation (suspected compromise) drops every response the old key signed.
    forced = ocsp_signer_rotate(force=True)
    assert not OcspResponse.objects.exists()
    response = _check_signed(ocsp_respond(request_der=_request(good, issuing)), issuing)
    assert response.certificates[0].serial_number == int(forced.serial, 16)


def test_revoking_the_ocsp_signer_brings_in_a_new_one(ca: HierarchyInitResult) -> None:
    issuing = _issuing(ca)
    good = load_pem(issue().certificate_pem)
    certificate_revoke(serial=ca.ocsp_signer.serial, reason=RevocationReason.KEY_COMPROMISE)
    assert not OcspResponse.objects.exists()
    response = _check_signed(ocsp_respond(request_der=_request(good, issuing)), issuing)
    assert response.certificates[0].serial_number != int(ca.ocsp_signer.serial, 16)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_worker_memory_cache_follows_changes_announced_by_other_processes(
    ca: HierarchyInitResult, settings: Settings, tmp_path: Path
) -> None:
    settings.PKI_STATE_DIR = tmp_path / "state"
    issuing = _issuing(ca)
    result = issue()
    request = _request(load_pem(result.certificate_pem), issuing)
    first = ocsp_respond(request_der=request)  # read from the database, kept in this worker's memory
    key = (result.serial, "sha1", ca.issuing.pk)
    assert responder.memory_cache.get(key, utcnow().timestamp()) == first

    # Another worker process revokes: the row changes under us, and (on commit) the epoch file is replaced.
    other = ocsp_respond(request_der=_request(load_pem(issue().certificate_pem), issuing))
    OcspResponse.objects.filter(serial=result.serial).update(der=other)
    assert ocsp_respond(request_der=request) == first  # this worker has not heard yet
    responder.epoch_bump()
    assert ocsp_respond(request_der=request) == other

    settings.PKI_OCSP_MEMORY_CACHE = False
    OcspResponse.objects.filter(serial=result.serial).update(der=first)
    assert ocsp_respond(request_der=request) == first  # without the memory cache every request reads the row


def test_revocation_announces_the_change_when_it_commits(
    ca: HierarchyInitResult, settings: Settings, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PKI_STATE_DIR = tmp_path / "state"
    result = issue()
    before = responder.epoch_read()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        certificate_revoke(serial=result.serial, reason=RevocationReason.SUPERSEDED)
    assert responder.epoch_bump in callbacks
    assert responder.epoch_read() != before and (tmp_path / "state" / "ocsp.epoch").exists()


def test_a_response_from_an_older_status_never_replaces_a_newer_one(ca: HierarchyInitResult) -> None:
    issuing = _issuing(ca)
    result = issue()
    signer = responder.active_signer(ca.issuing.pk, utcnow())
    stale_good = responder.sign_response(
        signer=signer,
        issuer_id=ca.issuing.pk,
        issuer_certificate=issuing,
        serial=int(result.serial, 16),
        hash_name="sha1",
        nonce=None,
        now=utcnow(),
    )
    certificate_revoke(serial=result.serial, reason=RevocationReason.KEY_COMPROMISE)
    # A request that read "good" just before the revocation finishes late: it must not win.
    assert not responder.store(serial=result.serial, hash_name="sha1", issuer_id=ca.issuing.pk, response=stale_good)
    stored = ocsp.load_der_ocsp_response(bytes(OcspResponse.objects.get(serial=result.serial).der))
    assert stored.certificate_status == ocsp.OCSPCertStatus.REVOKED


def test_get_with_a_nonce_is_not_cacheable(ca: HierarchyInitResult, client: Client) -> None:
    request = _request(load_pem(issue().certificate_pem), _issuing(ca), nonce=b"z" * 16)
    response = client.get("/pki/ocsp/" + urllib.parse.quote(base64.b64encode(request).decode(), safe=""))
    assert ocsp.load_der_ocsp_response(response.content).extensions.get_extension_for_class(x509.OCSPNonce)
    assert response["Cache-Control"] == "no-store"


def test_an_issuers_certid_hashes_are_computed_once_per_hash(ca: HierarchyInitResult) -> None:
    issuing = _issuing(ca)
    first, second = load_pem(issue().certificate_pem), load_pem(issue().certificate_pem)
    responder.issuer_hashes.cache_clear()

    def ask(certificate: x509.Certificate) -> None:
        for algorithm in (hashes.SHA1(), hashes.SHA256()):  # noqa: S303 - CertID hashes
            # A nonce: signed afresh on the request, never served from the stored response.
            answer = ocsp_respond(request_der=_request(certificate, issuing, algorithm=algorithm, nonce=b"n" * 16))
            assert _check_signed(answer, issuing).certificate_status == ocsp.OCSPCertStatus.GOOD

    ask(first)
    computed = responder.issuer_hashes.cache_info()
    ask(second)
    after = responder.issuer_hashes.cache_info()
    assert after.misses == computed.misses  # nothing computed again
    assert after.hits >= computed.hits + 2
    name_hash, key_hash = responder.issuer_hashes(issuing, "sha1")
    assert name_hash == hashlib.sha1(issuing.subject.public_bytes()).digest()  # noqa: S324 - RFC 6960 CertID
    assert key_hash.hex() == ca.issuing.key_sha1
