"""CA keys in encrypted PKCS#8 files (the embedded default).

Each key is `<PKI_KEY_DIR>/<key_ref>.p8`, PEM, encrypted with the passphrase
from `PKI_KEY_PASSPHRASE` (PBES2, AES-256-CBC: what `BestAvailableEncryption`
gives, readable by `openssl pkey`). Files are created with O_EXCL and mode
0600, so an existing key is never overwritten.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certdesk.pki import conf
from certdesk.pki.errors import KeyBackendError, KeyExists
from certdesk.pki.keys.base import CaPrivateKey, KeyAlgorithm, KeyBackend

_SAFE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Decrypting costs a KDF run; keep loaded keys per (path, passphrase) for the process.
_cache: dict[tuple[str, bytes], CaPrivateKey] = {}
_cache_lock = threading.Lock()


class FileKeyBackend(KeyBackend):
    name = "file"

    def __init__(self, *, key_dir: Path | None = None, passphrase: bytes | None = None) -> None:
        self.key_dir = key_dir if key_dir is not None else conf.key_dir()
        self.passphrase = passphrase if passphrase is not None else conf.key_passphrase()

    def _path(self, key_ref: str) -> Path:
        if not _SAFE_REF.match(key_ref):
            raise KeyBackendError(f"key reference {key_ref!r} is not a safe file name", code="key_ref_invalid")
        return self.key_dir / f"{key_ref}.p8"

    def exists(self, *, key_ref: str) -> bool:
        return self._path(key_ref).exists()

    def generate(self, *, key_ref: str, algorithm: KeyAlgorithm) -> CaPrivateKey:
        path = self._path(key_ref)
        key: CaPrivateKey
        if algorithm.is_ec:
            key = ec.generate_private_key(algorithm.curve)
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self.passphrase),
        )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyExists(f"密钥文件 {path} 已存在，拒绝覆盖。", code="key_exists") from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        with _cache_lock:
            _cache[(str(path), self.passphrase)] = key
        return key

    def load(self, *, key_ref: str) -> CaPrivateKey:
        path = self._path(key_ref)
        cache_key = (str(path), self.passphrase)
        with _cache_lock:
            cached = _cache.get(cache_key)
        if cached is not None:
            return cached
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeyBackendError(f"密钥文件 {path} 不存在。", code="key_missing") from None
        try:
            key = serialization.load_pem_private_key(data, password=self.passphrase)
        except (ValueError, TypeError):
            raise KeyBackendError(
                f"无法解密密钥文件 {path}：口令（PKI_KEY_PASSPHRASE）不对或文件已损坏。", code="key_unreadable"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyBackendError(f"密钥文件 {path} 的算法不受支持。", code="key_unsupported")
        with _cache_lock:
            _cache[cache_key] = key
        return key
