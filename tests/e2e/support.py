"""The people and tools of the e2e tests: staff members, the agent on the PC, and what a\nrelying party sees of a certificate (the served CRL, OCSP)."""

from __future__ import annotations

import datetime
import io
import re
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

# shot(page, "name", docs=False): a screenshot artefact (conftest.shot).
Shot = Callable[..., None]


@dataclass(frozen=True)
class Staff:
    mobile: str
    password: str
    user: Any


@dataclass(frozen=True)
class AgentRun:
    code: int
    out: str
    err: str


class Agent:
    """`certdesk-agent …` on this test's emulated keys, against the live portal."""

    def __init__(self, portal: str) -> None:
        self.portal = portal

    def __call__(self, command: str, *args: str) -> AgentRun:
        from certdesk_agent.cli import main

        from tests.agent.softhsm import SOFTHSM_MODULE

        out, err = io.StringIO(), io.StringIO()
        portal = ["--portal", self.portal] if command in ("enroll", "renew", "unlock") else []
        code = main(["--module", SOFTHSM_MODULE, "--sn-from", "label", command, *portal, *args], out=out, err=err)
        return AgentRun(code=code, out=out.getvalue(), err=err.getvalue())

    def ok(self, command: str, *args: str) -> str:
        result = self(command, *args)
        assert (result.code, result.err) == (0, ""), result.err
        return result.out


# ---- what the agent printed ----------------------------------------------------------------------

_ISSUED = re.compile(r"签名证书已签发：序列号 (\w+)，有效期 (\d{4}-\d{2}-\d{2}) 至 (\d{4}-\d{2}-\d{2})。")


@dataclass(frozen=True)
class Issued:
    """The signing certificate as the agent reported it to the person at the PC."""

    serial: str
    not_before: datetime.date
    not_after: datetime.date


def signing_certificate_in(out: str) -> Issued:
    match = _ISSUED.search(out)
    assert match, out
    return Issued(
        serial=match.group(1),
        not_before=datetime.date.fromisoformat(match.group(2)),
        not_after=datetime.date.fromisoformat(match.group(3)),
    )


# ---- what a relying party sees: the served CRL and OCSP ------------------------------------------


def _get(url: str, data: bytes | None = None, content_type: str = "") -> bytes:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type} if data else {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the live server
        return bytes(response.read())


def issuing_ca(portal: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(_get(f"{portal}/pki/ca/issuing.crt"))


def served_crl_reasons(portal: str) -> dict[int, x509.ReasonFlags | None]:
    """The serials on the CRL at /pki/crl/issuing.crl (signature checked), with their reasons."""
    crl = x509.load_der_x509_crl(_get(f"{portal}/pki/crl/issuing.crl"))
    issuer = issuing_ca(portal)
    public_key = issuer.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    assert crl.issuer == issuer.subject and crl.is_signature_valid(public_key)
    reasons: dict[int, x509.ReasonFlags | None] = {}
    for entry in crl:
        try:
            reasons[entry.serial_number] = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reasons[entry.serial_number] = None
    return reasons


def ocsp_answer(portal: str, certificate_pem: str) -> ocsp.OCSPResponse:
    """Ask the portal's OCSP responder (POST /pki/ocsp/) about a certificate."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuing_ca(portal), hashes.SHA1()).build()  # noqa: S303 - RFC 6960 CertID
    body = _get(f"{portal}/pki/ocsp/", request.public_bytes(serialization.Encoding.DER), "application/ocsp-request")
    answer = ocsp.load_der_ocsp_response(body)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.serial_number == certificate.serial_number
    return answer
