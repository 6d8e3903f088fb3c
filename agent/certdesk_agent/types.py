"""The values the agent hands around: keys, key pairs, certificates, subjects.

Plain frozen dataclasses, independent of any driver, so a PKCS#11 key and (later)
an SKF key look the same to the CLI and the portal client.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
NTR_PREFIX = "NTRCN-"

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class KeyRole(enum.StrEnum):
    """What a key pair on the key is for; a signing and an encryption pair can live side by side."""

    SIGN = "sign"
    ENC = "enc"

    @property
    def label(self) -> str:
        """The PKCS#11 label of the pair's objects (private key, public key, certificate)."""
        return f"certdesk-{self.value}"

    @classmethod
    def from_label(cls, label: str) -> KeyRole | None:
        for role in cls:
            if label == role.label:
                return role
        return None


class KeyAlgorithm(enum.StrEnum):
    EC_P256 = "ec-p256"
    RSA_2048 = "rsa-2048"

    @classmethod
    def of(cls, public_key: PublicKey) -> KeyAlgorithm | None:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            return cls.EC_P256 if isinstance(public_key.curve, ec.SECP256R1) else None
        return cls.RSA_2048 if public_key.key_size == 2048 else None


@dataclass(frozen=True)
class KeyModel:
    prefix: str
    name: str
    online_unlock: bool


# Key models recognised by the first two digits of the SN (the manual's 在线解锁 chapter:
# 55/56 are reset online, 11 needs a support engineer by remote assistance). The server keeps
# the same table for its inventory (certdesk.tokens.keymodels); the agent only shows the name.
KEY_MODELS: dict[str, KeyModel] = {
    "55": KeyModel(prefix="55", name="EZCA-K55", online_unlock=True),
    "56": KeyModel(prefix="56", name="EZCA-K56", online_unlock=True),
    "11": KeyModel(prefix="11", name="EZCA-K11", online_unlock=False),
}
UNKNOWN_MODEL_NAME = "未知型号"


def key_model(sn: str) -> KeyModel | None:
    return KEY_MODELS.get(sn.strip()[:2])


def key_model_name(sn: str) -> str:
    model = key_model(sn)
    return model.name if model is not None else UNKNOWN_MODEL_NAME


@dataclass(frozen=True)
class CertificateSubject:
    """An organisation certificate's subject: C=CN, O and CN = the organisation's name,
    organizationIdentifier (2.5.4.97) = NTRCN-<USCC>. The portal has validated the values;
    the agent only lays them out the way the CA engine reads them."""

    organization: str
    uscc: str
    province: str = ""
    city: str = ""

    def to_name(self) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
        if self.province:
            attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, self.province))
        if self.city:
            attrs.append(x509.NameAttribute(NameOID.LOCALITY_NAME, self.city))
        attrs += [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
            x509.NameAttribute(ORGANIZATION_IDENTIFIER, NTR_PREFIX + self.uscc),
            x509.NameAttribute(NameOID.COMMON_NAME, self.organization),
        ]
        return x509.Name(attrs)


def _name_text(name: x509.Name) -> str:
    return name.rfc4514_string({ORGANIZATION_IDENTIFIER: "organizationIdentifier"})


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not values:
        return _name_text(name)
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def key_id_for(public_key: PublicKey) -> bytes:
    """The CKA_ID of a key pair and its certificate: the RFC 5280 key identifier (SHA-1 of the
    subjectPublicKey), so a certificate finds its private key by its own public key."""
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest


@dataclass(frozen=True)
class CertificateInfo:
    certificate: x509.Certificate = field(repr=False)
    key_id: bytes
    is_ca: bool

    @property
    def subject(self) -> str:
        return _name_text(self.certificate.subject)

    @property
    def common_name(self) -> str:
        return _common_name(self.certificate.subject)

    @property
    def issuer(self) -> str:
        return _name_text(self.certificate.issuer)

    @property
    def serial_hex(self) -> str:
        return format(self.certificate.serial_number, "x")

    @property
    def not_before(self) -> datetime.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime.datetime:
        return self.certificate.not_valid_after_utc

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "common_name": self.common_name,
            "issuer": self.issuer,
            "serial": self.serial_hex,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "key_id": self.key_id.hex(),
            "is_ca": self.is_ca,
        }

    @classmethod
    def of(cls, certificate: x509.Certificate, *, key_id: bytes) -> CertificateInfo:
        try:
            is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        return cls(certificate=certificate, key_id=key_id, is_ca=is_ca)


@dataclass(frozen=True)
class KeyPairInfo:
    key_id: bytes
    role: KeyRole | None
    algorithm: KeyAlgorithm | None
    public_key: PublicKey = field(repr=False)
    can_sign: bool
    certificate: CertificateInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id.hex(),
            "role": self.role.value if self.role else None,
            "algorithm": self.algorithm.value if self.algorithm else None,
            "can_sign": self.can_sign,
            "certificate": self.certificate.to_dict() if self.certificate else None,
        }


@dataclass(frozen=True)
class KeyInfo:
    """A key that is plugged in, as far as can be seen without a PIN."""

    sn: str
    model: str
    driver: str
    locked: bool
    retries_left: int | None  # None: the key does not say (real keys only report "low" / "final try")
    retries_max: int | None
    certificates: tuple[CertificateInfo, ...] = ()

    @property
    def user_certificates(self) -> tuple[CertificateInfo, ...]:
        return tuple(c for c in self.certificates if not c.is_ca)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sn": self.sn,
            "model": self.model,
            "driver": self.driver,
            "locked": self.locked,
            "retries_left": self.retries_left,
            "retries_max": self.retries_max,
            "certificates": [c.to_dict() for c in self.certificates],
        }
