"""The one interface every CA key store implements.

As in django-ca's key backends, a backend hands out ordinary `cryptography`
private-key objects; for an HSM they are wrappers whose `sign()` calls the
token, so the standard X.509, CRL and OCSP builders sign with a key that never
leaves it. Backends store key *references* (a file name, a token label) in the
database; secrets come from settings only.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import ClassVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# The private-key types a CA key may have (what the X.509 builders accept and we support).
CaPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
CaPublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class KeyAlgorithm(enum.StrEnum):
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"

    @property
    def is_ec(self) -> bool:
        return self in (KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384)

    @property
    def curve(self) -> ec.EllipticCurve:
        if self is KeyAlgorithm.EC_P384:
            return ec.SECP384R1()
        if self is KeyAlgorithm.EC_P256:
            return ec.SECP256R1()
        raise ValueError(f"{self} is not an elliptic-curve algorithm")

    @property
    def rsa_bits(self) -> int:
        return {KeyAlgorithm.RSA_2048: 2048, KeyAlgorithm.RSA_3072: 3072}[self]

    @classmethod
    def parse(cls, value: str) -> KeyAlgorithm:
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown key algorithm {value!r}; choose one of {choices}") from None

    @classmethod
    def of(cls, key: CaPrivateKey | CaPublicKey) -> KeyAlgorithm:
        if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            return cls.EC_P384 if key.curve.name == "secp384r1" else cls.EC_P256
        return cls.RSA_3072 if key.key_size >= 3072 else cls.RSA_2048


def signature_hash(key: CaPrivateKey | CaPublicKey) -> hashes.SHA256 | hashes.SHA384:
    """The hash a CA key signs with: SHA-384 for P-384 (matching strength), else SHA-256."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


class KeyBackend(ABC):
    """Creates and loads CA signing keys. One instance per configuration."""

    name: ClassVar[str]

    @abstractmethod
    def exists(self, *, key_ref: str) -> bool:
        """Whether a key with this reference is already stored."""

    @abstractmethod
    def generate(self, *, key_ref: str, algorithm: KeyAlgorithm) -> CaPrivateKey:
        """Create and store a new key under `key_ref`; refuse (`KeyExists`) if one is there."""

    @abstractmethod
    def load(self, *, key_ref: str) -> CaPrivateKey:
        """A signing key object for `key_ref` (may be cached by the backend)."""

    def describe(self, *, key_ref: str) -> str:
        return f"{self.name}:{key_ref}"
