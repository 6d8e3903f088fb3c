"""A throwaway CA made with `cryptography`, and the enrolment steps the agent tests share."""

from __future__ import annotations

import datetime

from certdesk_agent.drivers.pkcs11 import Pkcs11Driver
from certdesk_agent.types import CertificateSubject, KeyPairInfo
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.agent.softhsm import EmulatedKey

USCC = "91110000600037341L"
ORG = "北京某某科技有限公司"
SUBJECT = CertificateSubject(organization=ORG, uscc=USCC)


class ThrowawayCa:
    """A CA made here with `cryptography`, to issue the certificates the tests import."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")]
        )
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, csr: x509.CertificateSigningRequest, *, days: int = 365) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )


def enrol(
    driver: Pkcs11Driver, key: EmulatedKey, ca: ThrowawayCa, *, days: int = 365
) -> tuple[KeyPairInfo, x509.Certificate]:
    pair = driver.generate_key_pair(key.sn, pin=key.user_pin)
    certificate = ca.issue(driver.create_csr(key.sn, pin=key.user_pin, key_id=pair.key_id, subject=SUBJECT), days=days)
    driver.import_certificate(key.sn, pin=key.user_pin, certificate=certificate, chain=[ca.certificate])
    return pair, certificate
