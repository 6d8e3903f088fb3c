"""Helpers shared by the CA engine tests (imported as a plain module: tests/pki is on sys.path)."""

from __future__ import annotations

import datetime
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certdesk.pki.services import certificate_issue
from certdesk.pki.types import IssuanceRequest, IssuedCertificateResult

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
USCC = "91110000600037341L"
OTHER_USCC = "91350100M000100Y43"
ORG = "北京某某科技有限公司"
ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")


@dataclass(frozen=True)
class SoftHsmToken:
    conf: Path
    label: str
    pin: str
    so_pin: str


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def make_csr(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    *,
    org: str = ORG,
    uscc: str | None = USCC,
    cn: str | None = None,
    province: str = "北京市",
    city: str = "北京市",
) -> str:
    key = key or ec_key()
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if province:
        attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, province))
    if city:
        attrs.append(x509.NameAttribute(NameOID.LOCALITY_NAME, city))
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if uscc is not None:
        attrs.append(x509.NameAttribute(ORGANIZATION_IDENTIFIER, f"NTRCN-{uscc}"))
    if cn is None:
        cn = org
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def request_for(**overrides: object) -> IssuanceRequest:
    fields: dict[str, object] = {
        "profile": "org-sign",
        "organisation_name": ORG,
        "uscc": USCC,
        "province": "北京市",
        "city": "北京市",
        "validity_years": 1,
    }
    if "csr_pem" not in overrides and "public_key_pem" not in overrides:
        fields["csr_pem"] = make_csr()
    fields.update(overrides)
    return IssuanceRequest(**fields)  # type: ignore[arg-type]


def issue(**overrides: object) -> IssuedCertificateResult:
    return certificate_issue(request=request_for(**overrides))


def load_pem(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def openssl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed: {result.stdout}{result.stderr}")
    return result


def served_chain(client: object, directory: Path) -> tuple[Path, Path]:
    """Fetch root and issuing CA certificates from the served URLs and write them as PEM files."""
    paths = []
    for role in ("root", "issuing"):
        response = client.get(f"/pki/ca/{role}.crt")  # type: ignore[attr-defined]
        assert response.status_code == 200, response
        assert response["Content-Type"] == "application/pkix-cert"
        certificate = x509.load_der_x509_certificate(response.content)
        paths.append(write(directory / f"{role}.pem", pem(certificate)))
    return paths[0], paths[1]


def lint_errors(findings: list[object]) -> list[str]:
    return [str(f) for f in findings if getattr(f, "severity", "") in ("FATAL", "ERROR", "WARNING")]
