"""CA keys on a PKCS#11 token (an HSM; SoftHSM2 in tests).

Keys are generated on the token as sensitive, non-extractable signing keys and
found again by label. Signing goes through a small pool of logged-in sessions
(one PKCS#11 session runs one operation at a time; login is token-wide, so only
the first session presents the PIN). Private keys are handed out as
`cryptography` private-key subclasses whose `sign()` calls the token, so the
ordinary certificate, CRL and OCSP builders sign with them.

SoftHSM 2.6 has no CKM_ECDSA_SHA256: the digest is computed here and signed
with plain CKM_ECDSA, and the raw r||s is converted to DER. RSA uses
CKM_SHA256_RSA_PKCS (or a DigestInfo with CKM_RSA_PKCS for prehashed data).

python-pkcs11 initialises the module with C_Initialize(NULL), which by the
PKCS#11 spec promises it that no two threads call in at once (SoftHSM then runs
without mutexes, and concurrent signing from threads crashed it in our tests).
So every call into the module holds `_MODULE_LOCK`; the pool still saves an
open + login per signature, and parallelism comes from processes (web and task
workers), each with its own library state.

python-pkcs11 keeps one loaded library per process (`pkcs11.lib()` caches by
path) and SoftHSM reads SOFTHSM2_CONF only in C_Initialize, so a process that
switches token directories (the test suite does, one token per test) calls
`pkcs11_reset()`: our sessions are dropped and the library is finalised; the
next use initialises it again under the new configuration.

SoftHSM's file-backed tokens are written at C_Initialize (the token's
generation file) and at C_Login (its token.object), and a process reading them
meanwhile sees a half-written token: NoSuchToken, GeneralError or
UserPinNotInitialized (softhsm/SoftHSMv2#757). So every process here takes a
host-wide lock for those two steps (`_token_files_locked`); signing on open
sessions reads neither file and takes no lock.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Self

import pkcs11
from asn1crypto.core import OctetString
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.exceptions import (
    DataInvalid,
    DataLenRange,
    MechanismInvalid,
    NoSuchKey,
    NoSuchToken,
    PinIncorrect,
    PinLocked,
    PKCS11Error,
    UserAlreadyLoggedIn,
)
from pkcs11.util.ec import encode_named_curve_parameters

from certdesk.pki import conf
from certdesk.pki.errors import KeyBackendError, KeyExists
from certdesk.pki.keys.base import CaPrivateKey, KeyAlgorithm, KeyBackend

_CURVES: dict[str, ec.EllipticCurve] = {
    encode_named_curve_parameters("secp256r1").hex(): ec.SECP256R1(),
    encode_named_curve_parameters("secp384r1").hex(): ec.SECP384R1(),
}
_RSA_MECHANISMS: dict[str, Mechanism] = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
# DER DigestInfo prefixes (RFC 8017 §9.2) for signing a digest with CKM_RSA_PKCS.
# Keyed by digest size: 32 → SHA-256, 48 → SHA-384, 64 → SHA-512.
_DIGEST_INFO_BY_SIZE: dict[int, bytes] = {
    32: bytes.fromhex("3031300d060960864801650304020105000420"),
    48: bytes.fromhex("3041300d060960864801650304020205000430"),
    64: bytes.fromhex("3051300d060960864801650304020305000440"),
}
# Errors that say something about the data, not about the session: never retried.
_NOT_RETRYABLE = (DataInvalid, DataLenRange, MechanismInvalid, PinIncorrect, PinLocked)
# Serialises every call into PKCS#11 modules in this process (see the module docstring).
_MODULE_LOCK = threading.RLock()


@contextmanager
def _token_files_locked(module: str) -> Iterator[None]:
    """Hold an exclusive flock on the module's file while this process initialises the module or
    logs in (see the module docstring). The module's path is the name every process using it already
    agrees on, so no setting is needed. For a real HSM it serialises only process start-up."""
    try:
        fd = os.open(module, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        # No such module: loading it will fail with its own error.
        yield
        return
    try:
        with suppress(OSError):  # a file system without locks: go on unserialised, as before
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class SessionPool:
    """Logged-in sessions on one token, shared by the threads of a process."""

    def __init__(self, *, module: str, token_label: str, pin: str, size: int) -> None:
        self.module = module
        self.token_label = token_label
        self._pin = pin
        self.size = max(1, size)
        self._cond = threading.Condition()
        self._token: Any = None
        self._all: list[Any] = []
        self._idle: list[Any] = []
        self._keys: dict[tuple[int, str], Any] = {}
        self._generation = 0

    def _start(self) -> None:
        _fork_check()
        with _token_files_locked(self.module):
            lib = pkcs11.lib(self.module)
            try:
                token = lib.get_token(token_label=self.token_label)
            except NoSuchToken:
                raise KeyBackendError(
                    f"PKCS#11 模块 {self.module} 中找不到标签为 {self.token_label!r} 的令牌（PKI_PKCS11_TOKEN_LABEL）。",
                    code="token_missing",
                ) from None
            try:
                anchor = token.open(rw=True, user_pin=self._pin)
            except UserAlreadyLoggedIn:
                # Another session of this process already logged in; login is token-wide.
                anchor = token.open(rw=True)
            except (PinIncorrect, PinLocked) as exc:
                raise KeyBackendError(
                    f"PKCS#11 令牌 {self.token_label!r} 拒绝了 PIN（PKI_PKCS11_PIN）：{type(exc).__name__}。",
                    code="token_pin",
                ) from None
        self._token = token
        self._all = [anchor]
        self._idle = [anchor]

    @contextmanager
    def session(self) -> Iterator[Any]:
        with self._cond:
            if self._token is None:
                self._start()
            while not self._idle:
                if len(self._all) < self.size:
                    extra = self._token.open(rw=True)
                    self._all.append(extra)
                    self._idle.append(extra)
                elif not self._cond.wait(timeout=30):
                    raise KeyBackendError("PKCS#11 会话池等待超时。", code="token_busy")
            session = self._idle.pop()
            generation = self._generation
        try:
            yield session
        finally:
            with self._cond:
                # A session from before a reset is dead; do not hand it out again.
                if generation == self._generation:
                    self._idle.append(session)
                self._cond.notify()

    def reset(self, *, close: bool = True) -> None:
        with _MODULE_LOCK, self._cond:
            if close:
                for session in reversed(self._all):
                    with suppress(PKCS11Error):
                        session.close()
            self._token = None
            self._all = []
            self._idle = []
            self._keys = {}
            self._generation += 1
            self._cond.notify_all()

    def _find(self, session: Any, object_class: ObjectClass, label: str) -> Any:
        cache_key = (id(session), f"{int(object_class)}:{label}")
        key = self._keys.get(cache_key)
        if key is None:
            key = session.get_key(object_class=object_class, label=label)
            self._keys[cache_key] = key
        return key

    def run(self, fn: Any) -> Any:
        """Run `fn(session)`; after a stale-session error reset the pool and try once more."""
        for attempt in (1, 2):
            try:
                with _MODULE_LOCK, self.session() as session:
                    return fn(session)
            except KeyBackendError:
                raise
            except NoSuchKey:
                raise
            except _NOT_RETRYABLE:
                raise
            except PKCS11Error as exc:
                # Sessions die when anything in the process finalises the library
                # (another token user, a fork): start over once.
                if attempt == 2:
                    raise KeyBackendError(f"PKCS#11 操作失败：{type(exc).__name__} {exc}", code="token_error") from exc
                self.reset(close=False)
        raise AssertionError("unreachable")

    def sign(self, *, label: str, data: bytes, mechanism: Mechanism) -> bytes:
        def op(session: Any) -> bytes:
            key = self._find(session, ObjectClass.PRIVATE_KEY, label)
            return bytes(key.sign(data, mechanism=mechanism))

        return bytes(self.run(op))


_pools: dict[tuple[str, str, str], SessionPool] = {}
_key_cache: dict[tuple[str, str, str], CaPrivateKey] = {}
_pools_lock = threading.Lock()
_pid = os.getpid()


def _fork_check() -> None:
    """A forked child must not use its parent's sessions: initialise the library afresh."""
    global _pid
    if os.getpid() == _pid:
        return
    _pid = os.getpid()
    with _MODULE_LOCK:
        with _pools_lock:
            for pool in _pools.values():
                pool.reset(close=False)
        for path, lib in list(pkcs11._loaded.items()):
            if lib.initialized:
                with _token_files_locked(path):
                    lib.reinitialize()


def session_pool(*, module: str, token_label: str, pin: str, size: int) -> SessionPool:
    with _pools_lock:
        key = (module, token_label, pin)
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = SessionPool(module=module, token_label=token_label, pin=pin, size=size)
        return pool


def pkcs11_reset() -> None:
    """Close every pooled session and finalise the loaded PKCS#11 libraries.

    Needed when SOFTHSM2_CONF changes within a process (each test has its own
    token directory): SoftHSM reads it only when the library is initialised,
    and `pkcs11.lib()` initialises it again on next use.
    """
    with _MODULE_LOCK:
        with _pools_lock:
            for pool in _pools.values():
                pool.reset(close=True)
        for lib in list(pkcs11._loaded.values()):
            if lib.initialized:
                lib.finalize()
        _key_cache.clear()


def _public_key_from_token(public: Any) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    if public.key_type == KeyType.EC:
        curve = _CURVES.get(bytes(public[Attribute.EC_PARAMS]).hex())
        if curve is None:
            raise KeyBackendError("令牌上的 EC 密钥曲线不受支持（仅 P-256、P-384）。", code="key_unsupported")
        point = OctetString.load(bytes(public[Attribute.EC_POINT])).native
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    if public.key_type == KeyType.RSA:
        n = int.from_bytes(bytes(public[Attribute.MODULUS]), "big")
        e = int.from_bytes(bytes(public[Attribute.PUBLIC_EXPONENT]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    raise KeyBackendError(f"令牌上的密钥类型 {public.key_type} 不受支持。", code="key_unsupported")


class _TokenKey:
    """What the token key classes share: which key on which pool, and that it never leaves the token."""

    def __init__(self, *, pool: SessionPool, label: str, public_key: Any) -> None:
        self._pool = pool
        self.label = label
        self._public_key = public_key

    def _refuse(self) -> Any:
        raise UnsupportedAlgorithm("the private key lives on a PKCS#11 token and cannot be exported")

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        return self._refuse()

    # Nothing to copy: the key is a reference to the token's object.
    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[Any, Any]) -> Self:
        return self


class Pkcs11EllipticCurvePrivateKey(_TokenKey, ec.EllipticCurvePrivateKey):
    """An EC key on a token, usable wherever `cryptography` expects an EC private key (signing only)."""

    _public_key: ec.EllipticCurvePublicKey

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
        raw = self._pool.sign(label=self.label, data=digest, mechanism=Mechanism.ECDSA)
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
        return self._refuse()

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        return self._refuse()


class Pkcs11RSAPrivateKey(_TokenKey, rsa.RSAPrivateKey):
    """An RSA key on a token (PKCS#1 v1.5 signatures only: what X.509 signing here uses)."""

    _public_key: rsa.RSAPublicKey

    def sign(
        self,
        data: bytes,
        padding: asym_padding.AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo,
    ) -> bytes:
        if not isinstance(padding, asym_padding.PKCS1v15):
            raise UnsupportedAlgorithm("only PKCS#1 v1.5 RSA signatures are supported on the token")
        if isinstance(algorithm, utils.Prehashed):
            prefix = _DIGEST_INFO_BY_SIZE.get(algorithm.digest_size)
            if prefix is None:
                raise UnsupportedAlgorithm(f"a {algorithm.digest_size}-byte digest is not supported")
            return self._pool.sign(label=self.label, data=prefix + bytes(data), mechanism=Mechanism.RSA_PKCS)
        if isinstance(algorithm, utils.NoDigestInfo):
            raise UnsupportedAlgorithm("signing without DigestInfo is not supported")
        mechanism = _RSA_MECHANISMS.get(algorithm.name)
        if mechanism is None:
            raise UnsupportedAlgorithm(f"hash {algorithm.name} is not supported")
        return self._pool.sign(label=self.label, data=bytes(data), mechanism=mechanism)

    def decrypt(self, ciphertext: bytes, padding: asym_padding.AsymmetricPadding) -> bytes:
        return self._refuse()

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public_key

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        return self._refuse()


class Pkcs11KeyBackend(KeyBackend):
    name = "pkcs11"

    def __init__(
        self,
        *,
        module: str | None = None,
        token_label: str | None = None,
        pin: str | None = None,
        pool_size: int | None = None,
    ) -> None:
        self.module = module if module is not None else conf.pkcs11_module()
        self.token_label = token_label if token_label is not None else conf.pkcs11_token_label()
        pin = pin if pin is not None else conf.pkcs11_pin()
        if not pin:
            raise KeyBackendError("使用 PKCS#11 密钥需要设置 PKI_PKCS11_PIN。", code="token_pin_missing")
        self.pool = session_pool(
            module=self.module,
            token_label=self.token_label,
            pin=pin,
            size=pool_size if pool_size is not None else conf.pkcs11_pool_size(),
        )

    def describe(self, *, key_ref: str) -> str:
        return f"pkcs11:token={self.token_label};object={key_ref}"

    def exists(self, *, key_ref: str) -> bool:
        def op(session: Any) -> bool:
            # Exhaust the search so C_FindObjectsFinal runs before the session is used again.
            return bool(list(session.get_objects({Attribute.LABEL: key_ref})))

        return bool(self.pool.run(op))

    def generate(self, *, key_ref: str, algorithm: KeyAlgorithm) -> CaPrivateKey:
        key_id = secrets.token_bytes(16)
        private_template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
        }
        capabilities = MechanismFlag.SIGN | MechanismFlag.VERIFY

        def op(session: Any) -> None:
            # Checked inside the same session call so the label test and the create are adjacent.
            if bool(list(session.get_objects({Attribute.LABEL: key_ref}))):
                raise KeyExists(
                    f"令牌 {self.token_label!r} 上已有标签为 {key_ref!r} 的对象，拒绝覆盖。", code="key_exists"
                )
            if algorithm.is_ec:
                params = session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(algorithm.curve.name)},
                    local=True,
                )
                params.generate_keypair(
                    store=True,
                    label=key_ref,
                    id=key_id,
                    capabilities=capabilities,
                    private_template=private_template,
                )
            else:
                session.generate_keypair(
                    KeyType.RSA,
                    algorithm.rsa_bits,
                    store=True,
                    label=key_ref,
                    id=key_id,
                    capabilities=capabilities,
                    private_template=private_template,
                    public_template={Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01"},
                )

        self.pool.run(op)
        return self.load(key_ref=key_ref)

    def load(self, *, key_ref: str) -> CaPrivateKey:
        cache_key = (self.module, self.token_label, key_ref)
        cached = _key_cache.get(cache_key)
        if cached is not None:
            return cached

        def op(session: Any) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
            try:
                public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=key_ref)
                session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=key_ref)
            except NoSuchKey:
                raise KeyBackendError(
                    f"令牌 {self.token_label!r} 上找不到标签为 {key_ref!r} 的密钥对。", code="key_missing"
                ) from None
            return _public_key_from_token(public)

        public_key = self.pool.run(op)
        key: CaPrivateKey
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            key = Pkcs11EllipticCurvePrivateKey(pool=self.pool, label=key_ref, public_key=public_key)
        else:
            key = Pkcs11RSAPrivateKey(pool=self.pool, label=key_ref, public_key=public_key)
        _key_cache[cache_key] = key
        return key
