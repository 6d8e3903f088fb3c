"""Private keys that stay on the USB key, dressed as `cryptography` private keys.

`cryptography`'s builders (CSR now; anything else later) call `sign()` on the
key object they are given; these classes answer by asking the token. Nothing
else is possible with them: every export raises.

SoftHSM 2.6 has no CKM_ECDSA_SHA256, so ECDSA hashes here, signs the digest
with plain CKM_ECDSA and turns the token's r‖s into the DER the builders
expect. RSA signs with CKM_SHA256_RSA_PKCS (PKCS#1 v1.5), which every module has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

# Callbacks bound to an open, logged-in session: digest -> raw r||s; (data, hash) -> PKCS#1 v1.5 signature.
EcdsaSigner = Callable[[bytes], bytes]
RsaSigner = Callable[[bytes, hashes.HashAlgorithm], bytes]


def _refuse() -> NoReturn:
    raise UnsupportedAlgorithm("this private key lives on the USB key and cannot be exported or used that way")


class OnKeyEllipticCurvePrivateKey(ec.EllipticCurvePrivateKey):
    def __init__(self, *, public_key: ec.EllipticCurvePublicKey, sign_digest: EcdsaSigner) -> None:
        self._public_key = public_key
        self._sign_digest = sign_digest

    def sign(self, data: Any, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UnsupportedAlgorithm("only ECDSA signatures are supported")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            digest = bytes(data)
        else:
            h = hashes.Hash(algorithm)
            h.update(bytes(data))
            digest = h.finalize()
        raw = self._sign_digest(digest)
        half = len(raw) // 2
        return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public_key

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public_key.curve

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        _refuse()

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _refuse()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _refuse()

    def __copy__(self) -> OnKeyEllipticCurvePrivateKey:
        return self

    def __deepcopy__(self, memo: dict[Any, Any]) -> OnKeyEllipticCurvePrivateKey:
        return self


class OnKeyRSAPrivateKey(rsa.RSAPrivateKey):
    def __init__(self, *, public_key: rsa.RSAPublicKey, sign_data: RsaSigner) -> None:
        self._public_key = public_key
        self._sign_data = sign_data

    def sign(
        self,
        data: bytes,
        padding: padding.AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo,
    ) -> bytes:
        if padding.name != "EMSA-PKCS1-v1_5":
            raise UnsupportedAlgorithm("only PKCS#1 v1.5 signatures are supported")
        if not isinstance(algorithm, hashes.SHA256):
            raise UnsupportedAlgorithm("only SHA-256 over the data is supported")
        return self._sign_data(bytes(data), algorithm)

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        _refuse()

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public_key

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _refuse()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _refuse()

    def __copy__(self) -> OnKeyRSAPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[Any, Any]) -> OnKeyRSAPrivateKey:
        return self
