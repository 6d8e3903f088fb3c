"""The real thing over HTTP: openssl fetches the chain and the CRL and asks the OCSP responder."""

from __future__ import annotations

import base64
import urllib.parse
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from pkitestlib import issue, openssl, pem, write
from pytest_django.live_server_helper import LiveServer

from certdesk.pki.services import HierarchyInitResult, certificate_revoke
from certdesk.pki.types import RevocationReason


def _get(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own live test server
        return response.read(), response.headers["Content-Type"]


def test_openssl_ocsp_and_crl_against_the_live_server(
    live_ca: HierarchyInitResult, live_server: LiveServer, tmp_path: Path
) -> None:
    base = live_server.url
    files: dict[str, Path] = {}
    for role in ("root", "issuing"):
        der, content_type = _get(f"{base}/pki/ca/{role}.crt")
        assert content_type == "application/pkix-cert"
        files[role] = write(tmp_path / f"{role}.pem", pem(x509.load_der_x509_certificate(der)))

    good = write(tmp_path / "good.pem", issue().certificate_pem)
    revoked_result = issue()
    revoked = write(tmp_path / "revoked.pem", revoked_result.certificate_pem)
    certificate_revoke(serial=revoked_result.serial, reason=RevocationReason.KEY_COMPROMISE)

    def ask(cert: Path | str, *extra: str) -> str:
        target = ("-serial", cert) if isinstance(cert, str) else ("-cert", cert)
        result = openssl(
            "ocsp",
            "-issuer", files["issuing"],
            *target,
            "-url", f"{base}/pki/ocsp/",
            "-CAfile", files["root"],
            "-verify_other", files["issuing"],
            *extra,
        )  # fmt: skip
        return result.stdout + result.stderr

    out = ask(good)
    assert "Response verify OK" in out and f"{good}: good" in out
    assert "WARNING" not in out  # the nonce was echoed
    out = ask(revoked, "-no_nonce")
    assert "Response verify OK" in out and f"{revoked}: revoked" in out
    assert "Reason: keyCompromise" in out
    # Our issuer, a serial we never issued.
    out = ask("0x0BADC0FFEE")
    assert "Response verify OK" in out and "0x0BADC0FFEE: unknown" in out

    crl_der, content_type = _get(f"{base}/pki/crl/issuing.crl")
    assert content_type == "application/pkix-crl"
    crl = write(tmp_path / "issuing.crl", crl_der)
    text = openssl("crl", "-inform", "DER", "-in", crl, "-noout", "-text").stdout
    assert revoked_result.serial in text.replace(":", "").upper()
    crl_pem = tmp_path / "crl.pem"
    openssl("crl", "-inform", "DER", "-in", crl, "-out", crl_pem)
    chain = ("-CAfile", files["root"], "-untrusted", files["issuing"], "-crl_check", "-CRLfile", crl_pem)
    assert "OK" in openssl("verify", *chain, good).stdout
    result = openssl("verify", *chain, revoked, check=False)
    assert result.returncode != 0 and "certificate revoked" in result.stdout + result.stderr


def test_ocsp_get_over_http(live_ca: HierarchyInitResult, live_server: LiveServer) -> None:
    # RFC 6960 A.1: the request base64-encoded in the path (openssl's client only POSTs).
    issuing = x509.load_der_x509_certificate(bytes(live_ca.issuing.certificate_der or b""))
    certificate = x509.load_pem_x509_certificate(issue().certificate_pem.encode())
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuing, hashes.SHA1()).build()  # noqa: S303
    encoded = urllib.parse.quote(base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode(), safe="")
    body, content_type = _get(f"{live_server.url}/pki/ocsp/{encoded}")
    assert content_type == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.GOOD
    garbage, _ = _get(f"{live_server.url}/pki/ocsp/Z2FyYmFnZQ==")
    assert ocsp.load_der_ocsp_response(garbage).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
