"""Key backends: where CA private keys live. See `base.KeyBackend`."""

from __future__ import annotations

from certdesk.pki import conf
from certdesk.pki.errors import KeyBackendError
from certdesk.pki.keys.base import CaPrivateKey, CaPublicKey, KeyAlgorithm, KeyBackend, signature_hash

__all__ = ["CaPrivateKey", "CaPublicKey", "KeyAlgorithm", "KeyBackend", "key_backend", "signature_hash"]

BACKEND_NAMES = ("file", "pkcs11")


def key_backend(name: str | None = None) -> KeyBackend:
    """The backend called `name` (default: PKI_KEY_BACKEND), configured from settings."""
    name = name or conf.key_backend_name()
    if name == "file":
        from certdesk.pki.keys.file import FileKeyBackend

        return FileKeyBackend()
    if name == "pkcs11":
        # Imported lazily: a deployment with file keys never loads a PKCS#11 module.
        from certdesk.pki.keys.pkcs11 import Pkcs11KeyBackend

        return Pkcs11KeyBackend()
    raise KeyBackendError(f"未知的密钥后端 {name!r}（可选：{', '.join(BACKEND_NAMES)}）。", code="key_backend_unknown")
