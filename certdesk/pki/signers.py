"""Our signing keys with their certificates, loaded once per process."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certdesk.pki.keys import CaPrivateKey, CaPublicKey, key_backend, signature_hash
from certdesk.pki.models import CertificateAuthority


@dataclass(frozen=True)
class Signer:
    ca_id: int
    name: str
    certificate: x509.Certificate
    key: CaPrivateKey

    @property
    def hash(self) -> hashes.SHA256 | hashes.SHA384:
        return signature_hash(self.key)


_signers: dict[tuple[int, str, str], Signer] = {}
_lock = threading.Lock()


def signer_for(ca: CertificateAuthority) -> Signer:
    """The key and certificate of an active CA row (keyed by its certificate serial, so a re-made CA is reloaded)."""
    cache_key = (ca.pk, ca.serial, ca.key_ref)
    with _lock:
        signer = _signers.get(cache_key)
    if signer is not None:
        return signer
    if not ca.certificate_der:
        raise ValueError(f"CA {ca.name} has no certificate yet")
    certificate = x509.load_der_x509_certificate(bytes(ca.certificate_der))
    key = key_backend(ca.key_backend).load(key_ref=ca.key_ref)
    signer = Signer(ca_id=ca.pk, name=ca.name, certificate=certificate, key=key)
    with _lock:
        _signers[cache_key] = signer
    return signer


_chains: dict[tuple[int, str], str] = {}


def chain_pem(issuing: CertificateAuthority) -> str:
    """Issuing CA then root certificate, PEM; built once per process and issuing CA."""
    cache_key = (issuing.pk, issuing.serial)
    chain = _chains.get(cache_key)
    if chain is None:
        parts = [bytes(issuing.certificate_der or b"")]
        parent = issuing.parent_id
        while parent is not None:
            der, parent = CertificateAuthority.objects.values_list("certificate_der", "parent_id").get(pk=parent)
            parts.append(bytes(der or b""))
        chain = _chains[cache_key] = "".join(
            x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode() for der in parts
        )
    return chain


def signers_clear() -> None:
    with _lock:
        _signers.clear()
        _chains.clear()


def public_key_bit_string(public_key: CaPublicKey) -> bytes:
    """The contents of subjectPublicKey (what OCSP issuerKeyHash and SKI method 1 hash)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def spki_der(public_key: CaPublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def spki_sha256(public_key: CaPublicKey) -> str:
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def key_sha1(public_key: CaPublicKey) -> str:
    return hashlib.sha1(public_key_bit_string(public_key)).hexdigest()  # noqa: S324 - RFC 6960 CertID hash, not security
