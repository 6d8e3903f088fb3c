"""The one interface the rest of the agent uses to reach a USB key.

A driver speaks one key API: PKCS#11 now (`Pkcs11Driver`), the Chinese SKF
interface (GM/T 0016: SKF_VerifyPIN, SKF_UnblockPIN, containers) later. The CLI
and the portal client only ever see `KeyDriver`, the dataclasses in
`certdesk_agent.types` and the exceptions in `certdesk_agent.errors`, so an
SKF driver slots in without touching them.

Every method is one complete conversation with the key: it opens what it
needs, and closes every session (and logs out) before it returns or raises.
Methods that need the user PIN count the attempt on the key and raise
`WrongPin(tries_left)` or `KeyLocked`; a key is named by its SN.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from cryptography import x509

from certdesk_agent.errors import KeyNotFound, MultipleKeysPresent, NoKeyPresent
from certdesk_agent.types import (
    CertificateInfo,
    CertificateSubject,
    KeyAlgorithm,
    KeyInfo,
    KeyPairInfo,
    KeyRole,
)


class KeyDriver(ABC):
    name: ClassVar[str]

    # ---- without a PIN -------------------------------------------------------------------------

    @abstractmethod
    def list_keys(self) -> list[KeyInfo]:
        """The keys plugged in now, with lock state, tries left and the certificates on them."""

    def get_key(self, sn: str) -> KeyInfo:
        keys = self.list_keys()
        if not keys:
            raise NoKeyPresent()
        for key in keys:
            if key.sn == sn:
                return key
        raise KeyNotFound(sn)

    def resolve_sn(self, sn: str | None) -> str:
        """`sn` if that key is present; with None, the SN of the only key plugged in."""
        if sn is not None:
            return self.get_key(sn).sn
        keys = self.list_keys()
        if not keys:
            raise NoKeyPresent()
        if len(keys) > 1:
            raise MultipleKeysPresent([key.sn for key in keys])
        return keys[0].sn

    def refresh(self) -> None:  # noqa: B027 - optional hook, most drivers see plugged keys anyway
        """Look again for keys plugged in or pulled out since the driver started."""

    # ---- with the user PIN ---------------------------------------------------------------------

    @abstractmethod
    def verify_pin(self, sn: str, *, pin: str) -> None:
        """Check the user PIN (counted: WrongPin with tries left, KeyLocked)."""

    @abstractmethod
    def change_pin(self, sn: str, *, old_pin: str, new_pin: str) -> None:
        """The user sets a new PIN (after an unlock, or whenever they like)."""

    @abstractmethod
    def list_key_pairs(self, sn: str, *, pin: str) -> list[KeyPairInfo]:
        """The key pairs on the key (private keys are only visible after login)."""

    @abstractmethod
    def generate_key_pair(
        self, sn: str, *, pin: str, role: KeyRole = KeyRole.SIGN, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256
    ) -> KeyPairInfo:
        """A new key pair made inside the key: sensitive, never extractable."""

    @abstractmethod
    def create_csr(
        self, sn: str, *, pin: str, key_id: bytes, subject: CertificateSubject
    ) -> x509.CertificateSigningRequest:
        """A PKCS#10 request for the pair `key_id`, signed inside the key."""

    @abstractmethod
    def sign(self, sn: str, *, pin: str, key_id: bytes, data: bytes) -> bytes:
        """A signature over `data` made inside the key with the signing pair `key_id`: ECDSA with
        SHA-256 (DER) for EC pairs, PKCS#1 v1.5 with SHA-256 for RSA ones. The portal asks for one
        to vouch for an encryption pair on the same key, which cannot sign its own request."""

    @abstractmethod
    def import_certificate(
        self, sn: str, *, pin: str, certificate: x509.Certificate, chain: Sequence[x509.Certificate] = ()
    ) -> CertificateInfo:
        """Store the certificate next to its private key (same CKA_ID), and the CA chain."""

    @abstractmethod
    def delete_key_pair(self, sn: str, *, pin: str, key_id: bytes, replaced_by: bytes | None = None) -> None:
        """Remove a pair and its certificate. A pair that holds a certificate is only removed when
        `replaced_by` names another pair of the same role that holds one (the renewed one)."""

    # ---- with the administrator (SO) PIN -------------------------------------------------------

    @abstractmethod
    def unlock(self, sn: str, *, so_pin: str, new_user_pin: str, new_so_pin: str) -> None:
        """Reset the user PIN with the administrator PIN released by the portal, replace the
        administrator PIN by `new_so_pin` (the released one must never work again), and give the
        user their tries back."""
