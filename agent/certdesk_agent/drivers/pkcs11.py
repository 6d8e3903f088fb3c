"""USB keys through a PKCS#11 module (the vendor's, or SoftHSM2 for the emulated keys).

How a key is named: by its SN, read from the token label (`sn_from="label"`,
the default: an emulated key carries its SN there because SoftHSM picks the
token serial itself and PKCS#11 has no way to set it) or from the token's
serial number (`sn_from="serial"`, what vendor modules report as the key SN).

Sessions: every public method takes the driver's lock (one conversation with a
module at a time in this process), opens the sessions it needs, and closes
them (logging out) before it returns. A failed login is the one case where
python-pkcs11 leaves a session behind; the driver then closes the slot's
sessions (`C_CloseAllSessions`) or, if the module does not export that,
re-initialises the library. Nothing of the agent is open on the key at that
moment, so nothing else is lost.

PIN tries: when the key carries the emulated counter (see `certdesk_agent.retries`)
the driver counts each user-PIN attempt on it and refuses a locked key itself;
otherwise it relies on the module (CKR_PIN_LOCKED, the token's PIN flags).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11
from pkcs11.attributes import AttributeMapper, handle_ulong
from pkcs11.util.ec import encode_named_curve_parameters
from pkcs11.util.x509 import decode_x509_certificate

from certdesk_agent.drivers import _cryptoki
from certdesk_agent.drivers.base import KeyDriver
from certdesk_agent.errors import (
    AdminPinLocked,
    AdminPinRejected,
    AgentError,
    DeleteRefused,
    DriverUnavailable,
    KeyCannotSign,
    KeyLocked,
    KeyNotFound,
    KeyPairNotFound,
    NoKeyPresent,
    PinPolicyError,
    TokenError,
    WrongPin,
)
from certdesk_agent.onkey import OnKeyEllipticCurvePrivateKey, OnKeyRSAPrivateKey
from certdesk_agent.pins import admin_pin_check, user_pin_check
from certdesk_agent.retries import retry_counter_read, retry_counter_write
from certdesk_agent.types import (
    CertificateInfo,
    CertificateSubject,
    KeyAlgorithm,
    KeyInfo,
    KeyPairInfo,
    KeyRole,
    PublicKey,
    key_id_for,
    key_model_name,
)

MODULE_ENV = "CERTDESK_AGENT_PKCS11_MODULE"
SN_FROM_ENV = "CERTDESK_AGENT_SN_FROM"
DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SN_SOURCES = ("label", "serial")

CKA_CERTIFICATE_CATEGORY = 0x87  # python-pkcs11 0.10 has no handler for it
CATEGORY_TOKEN_USER = 1
CATEGORY_AUTHORITY = 2
CA_CERTIFICATE_LABEL_PREFIX = "ca:"

_P256_PARAMS = encode_named_curve_parameters("secp256r1")
_RSA_EXPONENT = b"\x01\x00\x01"

# Errors that mean the key went away or the module lost track of it mid-operation.
_GONE = (p11.TokenNotPresent, p11.DeviceRemoved, p11.SessionHandleInvalid, p11.SessionClosed, p11.SlotIDInvalid)

_module_locks: dict[str, threading.RLock] = {}
_module_locks_guard = threading.Lock()


def _module_lock(module: str) -> threading.RLock:
    with _module_locks_guard:
        return _module_locks.setdefault(module, threading.RLock())


def _mapper() -> AttributeMapper:
    mapper = AttributeMapper()
    mapper.register_handler(Attribute(CKA_CERTIFICATE_CATEGORY), *handle_ulong)
    return mapper


def _find(session: Any, attrs: dict[Attribute, Any]) -> list[Any]:
    """All matching objects, the search finished before anything else happens: a session runs
    one C_FindObjects at a time (a second one is CKR_OPERATION_ACTIVE), and an abandoned
    generator would leave the search open."""
    return list(session.get_objects(attrs))


def _public_key_of(obj: Any) -> PublicKey | None:
    """The `cryptography` public key of a PKCS#11 public-key object; None for what the agent does
    not handle (other curves, the SM2 keys some vendors expose with their own key types)."""
    try:
        key_type = obj[Attribute.KEY_TYPE]
    except ValueError:  # a vendor-defined key type python-pkcs11 has no name for
        return None
    if key_type == KeyType.EC:
        if bytes(obj[Attribute.EC_PARAMS]) != _P256_PARAMS:
            return None
        point = bytes(obj[Attribute.EC_POINT])
        # CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (04 41 04 x y);
        # some modules hand out the bare point (04 x y).
        if len(point) == 67 and point[:3] == b"\x04\x41\x04":
            point = point[2:]
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            return None
    if key_type == KeyType.RSA:
        n = int.from_bytes(bytes(obj[Attribute.MODULUS]), "big")
        e = int.from_bytes(bytes(obj[Attribute.PUBLIC_EXPONENT]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    return None


def _certificate_of(obj: Any) -> CertificateInfo | None:
    try:
        certificate = x509.load_der_x509_certificate(bytes(obj[Attribute.VALUE]))
    except ValueError:
        return None  # not ours to judge; a broken object is simply not listed
    return CertificateInfo.of(certificate, key_id=bytes(obj[Attribute.ID]))


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


class Pkcs11Driver(KeyDriver):
    name: ClassVar[str] = "pkcs11"

    def __init__(self, *, module: str | None = None, sn_from: str | None = None) -> None:
        self.module = module or os.environ.get(MODULE_ENV) or DEFAULT_MODULE
        self.sn_from = sn_from or os.environ.get(SN_FROM_ENV) or "label"
        if self.sn_from not in SN_SOURCES:
            raise ValueError(f"sn_from must be one of {SN_SOURCES}, not {self.sn_from!r}")
        self._lock = _module_lock(self.module)

    def __repr__(self) -> str:
        return f"Pkcs11Driver(module={self.module!r}, sn_from={self.sn_from!r})"

    # ---- plumbing ------------------------------------------------------------------------------

    def _lib(self) -> Any:
        try:
            return pkcs11.lib(self.module)
        except p11.PKCS11Error as exc:
            raise DriverUnavailable(self.module, type(exc).__name__) from exc
        except (OSError, RuntimeError) as exc:
            raise DriverUnavailable(self.module, str(exc)) from exc

    @contextmanager
    def _operation(self) -> Iterator[None]:
        """One conversation with the module: serialised, PKCS#11 errors turned into agent errors."""
        with self._lock:
            try:
                yield
            except AgentError:
                raise
            except _GONE as exc:
                raise NoKeyPresent() from exc
            except p11.PKCS11Error as exc:
                raise TokenError(type(exc).__name__) from exc

    def refresh(self) -> None:
        """Finalise and initialise the module again: it then sees keys (or SoftHSM token files,
        or a changed SOFTHSM2_CONF) that appeared since it was loaded."""
        with self._lock:
            lib = self._lib()
            try:
                lib.reinitialize()
            except p11.PKCS11Error as exc:
                raise DriverUnavailable(self.module, type(exc).__name__) from exc

    def _sn(self, token: Any) -> str:
        if self.sn_from == "serial":
            raw = token.serial
            return (raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)).strip()
        return str(token.label).strip()

    def _tokens(self) -> list[Any]:
        return [
            token
            for slot in self._lib().get_slots(token_present=True)
            if (token := slot.get_token()).flags & TokenFlag.TOKEN_INITIALIZED
        ]

    def _token(self, sn: str) -> Any:
        """The token of key `sn`, with fresh flags (PKCS#11 token info is a snapshot)."""
        tokens = self._tokens()
        if not tokens:
            raise NoKeyPresent()
        for token in tokens:
            if self._sn(token) == sn:
                return token
        raise KeyNotFound(sn)

    def _discard_sessions(self, token: Any) -> None:
        """Close the orphan a failed login leaves behind (see _cryptoki)."""
        if _cryptoki.close_all_sessions(self.module, token.slot.slot_id) is None:
            self._lib().reinitialize()

    def _open(self, token: Any, **kwargs: Any) -> Any:
        return token.open(rw=True, attribute_mapper=_mapper(), **kwargs)

    @contextmanager
    def _public_session(self, token: Any, *, rw: bool = False) -> Iterator[Any]:
        with token.open(rw=rw, attribute_mapper=_mapper()) as session:
            yield session

    @contextmanager
    def _user_session(self, token: Any, sn: str, pin: str) -> Iterator[Any]:
        """A logged-in read-write session; counts the attempt on an emulated key."""
        if not pin:
            raise PinPolicyError("请输入 PIN 码。")
        if token.flags & TokenFlag.USER_PIN_LOCKED:
            raise KeyLocked(sn)
        with self._public_session(token, rw=True) as public:
            state = retry_counter_read(public)
            if state is not None:
                if state.locked:
                    raise KeyLocked(sn)
                # Count the attempt before trying it, as card firmware does.
                retry_counter_write(public, state.counted())
        try:
            session = self._open(token, user_pin=pin)
        except (p11.PinIncorrect, p11.PinLenRange, p11.PinInvalid):
            self._discard_sessions(token)
            if state is not None:
                left = state.counted().left
                if left == 0:
                    raise KeyLocked(sn, just_now=True) from None
                raise WrongPin(left) from None
            flags = token.slot.get_token().flags
            if flags & TokenFlag.USER_PIN_LOCKED:
                raise KeyLocked(sn, just_now=True) from None
            raise WrongPin(1 if flags & TokenFlag.USER_PIN_FINAL_TRY else None) from None
        except p11.PinLocked:
            self._discard_sessions(token)
            raise KeyLocked(sn) from None
        except p11.UserPinNotInitialized:
            self._discard_sessions(token)
            raise KeyLocked(sn) from None
        try:
            if state is not None:
                retry_counter_write(session, state.full())
            yield session
        finally:
            with suppress(p11.PKCS11Error):
                session.close()

    @contextmanager
    def _so_session(self, token: Any, sn: str, so_pin: str) -> Iterator[Any]:
        session = None
        for attempt in (1, 2):
            try:
                session = self._open(token, so_pin=so_pin)
                break
            except (p11.PinIncorrect, p11.PinLenRange, p11.PinInvalid):
                self._discard_sessions(token)
                raise AdminPinRejected(sn) from None
            except p11.PinLocked:
                self._discard_sessions(token)
                raise AdminPinLocked(sn) from None
            except (p11.SessionReadOnlyExists, p11.UserAlreadyLoggedIn, p11.AnotherUserAlreadyLoggedIn):
                # Someone's session is still open on the key (an orphan of a failed login in a
                # process that did not clean up): close them and try once more.
                self._discard_sessions(token)
                if attempt == 2:
                    raise
        assert session is not None
        try:
            yield session
        finally:
            with suppress(p11.PKCS11Error):
                session.close()

    def _key_pairs(self, session: Any) -> list[KeyPairInfo]:
        certificates: dict[bytes, CertificateInfo] = {}
        for obj in _find(session, {Attribute.CLASS: ObjectClass.CERTIFICATE}):
            info = _certificate_of(obj)
            if info is not None and not info.is_ca:
                certificates[info.key_id] = info
        pairs = []
        for private in _find(session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
            key_id = bytes(private[Attribute.ID])
            publics = _find(session, {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: key_id})
            if len(publics) != 1:
                continue  # not a pair this agent can use
            public_key = _public_key_of(publics[0])
            if public_key is None:
                continue
            pairs.append(
                KeyPairInfo(
                    key_id=key_id,
                    role=KeyRole.from_label(str(private[Attribute.LABEL])),
                    algorithm=KeyAlgorithm.of(public_key),
                    public_key=public_key,
                    can_sign=bool(private[Attribute.SIGN]),
                    certificate=certificates.get(key_id),
                )
            )
        return pairs

    def _pair(self, session: Any, key_id: bytes) -> KeyPairInfo:
        for pair in self._key_pairs(session):
            if pair.key_id == key_id:
                return pair
        raise KeyPairNotFound(f"证书盘上没有标识为 {key_id.hex()} 的密钥对。")

    # ---- without a PIN -------------------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        with self._operation():
            keys = []
            for token in self._tokens():
                sn = self._sn(token)
                with self._public_session(token) as session:
                    state = retry_counter_read(session)
                    certificates = [
                        info
                        for obj in _find(session, {Attribute.CLASS: ObjectClass.CERTIFICATE})
                        if (info := _certificate_of(obj)) is not None
                    ]
                flags = token.flags
                left: int | None
                maximum: int | None
                if state is not None:
                    locked, left, maximum = state.locked, state.left, state.max
                else:
                    locked = bool(flags & TokenFlag.USER_PIN_LOCKED)
                    left = 0 if locked else (1 if flags & TokenFlag.USER_PIN_FINAL_TRY else None)
                    maximum = None
                certificates.sort(key=lambda c: (c.is_ca, c.not_after))
                keys.append(
                    KeyInfo(
                        sn=sn,
                        model=key_model_name(sn),
                        driver=self.name,
                        locked=locked,
                        retries_left=left,
                        retries_max=maximum,
                        certificates=tuple(certificates),
                    )
                )
            keys.sort(key=lambda k: k.sn)
            return keys

    # ---- with the user PIN ---------------------------------------------------------------------

    def verify_pin(self, sn: str, *, pin: str) -> None:
        with self._operation():
            token = self._token(sn)
            with self._user_session(token, sn, pin):
                pass

    def change_pin(self, sn: str, *, old_pin: str, new_pin: str) -> None:
        user_pin_check(new_pin)
        with self._operation():
            token = self._token(sn)
            with self._user_session(token, sn, old_pin) as session:
                try:
                    session.set_pin(old_pin, new_pin)
                except (p11.PinLenRange, p11.PinInvalid, p11.PinTooWeak) as exc:
                    raise PinPolicyError(f"证书盘不接受这个新 PIN 码（{type(exc).__name__}）。") from exc

    def list_key_pairs(self, sn: str, *, pin: str) -> list[KeyPairInfo]:
        with self._operation():
            token = self._token(sn)
            with self._user_session(token, sn, pin) as session:
                return self._key_pairs(session)

    def generate_key_pair(
        self, sn: str, *, pin: str, role: KeyRole = KeyRole.SIGN, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256
    ) -> KeyPairInfo:
        private_template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
        }
        public_template = {Attribute.TOKEN: True, Attribute.PRIVATE: False}
        if role is KeyRole.SIGN:
            capabilities = MechanismFlag.SIGN | MechanismFlag.VERIFY
        elif algorithm is KeyAlgorithm.EC_P256:
            capabilities = MechanismFlag.DERIVE
        else:
            capabilities = MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT | MechanismFlag.WRAP | MechanismFlag.UNWRAP
        with self._operation():
            token = self._token(sn)
            with self._user_session(token, sn, pin) as session:
                # Made under a random temporary CKA_ID, then given the key identifier of its own
                # public key (known only once the token has made the pair).
                temporary_id = os.urandom(20)
                if algorithm is KeyAlgorithm.EC_P256:
                    params = session.create_domain_parameters(
                        KeyType.EC, {Attribute.EC_PARAMS: _P256_PARAMS}, local=True
                    )
                    public, private = params.generate_keypair(
                        store=True,
                        id=temporary_id,
                        label=role.label,
                        capabilities=capabilities,
                        private_template=private_template,
                        public_template=public_template,
                    )
                else:
                    public, private = session.generate_keypair(
                        KeyType.RSA,
                        2048,
                        store=True,
                        id=temporary_id,
                        label=role.label,
                        capabilities=capabilities,
                        private_template=private_template,
                        public_template={**public_template, Attribute.PUBLIC_EXPONENT: _RSA_EXPONENT},
                    )
                try:
                    public_key = _public_key_of(public)
                    if public_key is None:
                        raise TokenError("证书盘生成的公钥无法读取")
                    key_id = key_id_for(public_key)
                    private[Attribute.ID] = key_id
                    public[Attribute.ID] = key_id
                except BaseException:
                    for obj in (private, public):
                        with suppress(p11.PKCS11Error):
                            obj.destroy()
                    raise
                return KeyPairInfo(
                    key_id=key_id,
                    role=role,
                    algorithm=algorithm,
                    public_key=public_key,
                    can_sign=role is KeyRole.SIGN,
                )

    def _signer(self, session: Any, key_id: bytes) -> OnKeyEllipticCurvePrivateKey | OnKeyRSAPrivateKey:
        """The signing pair `key_id` as a `cryptography` private key bound to the open session."""
        pair = self._pair(session, key_id)
        if not pair.can_sign:
            raise KeyCannotSign(key_id.hex())
        privates = _find(session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id})
        if len(privates) != 1:
            raise KeyPairNotFound(f"证书盘上标识为 {key_id.hex()} 的私钥不唯一。")
        private = privates[0]
        if isinstance(pair.public_key, ec.EllipticCurvePublicKey):
            return OnKeyEllipticCurvePrivateKey(
                public_key=pair.public_key,
                sign_digest=lambda digest: bytes(private.sign(digest, mechanism=Mechanism.ECDSA)),
            )
        return OnKeyRSAPrivateKey(
            public_key=pair.public_key,
            sign_data=lambda data, _hash: bytes(private.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)),
        )

    def create_csr(
        self, sn: str, *, pin: str, key_id: bytes, subject: CertificateSubject
    ) -> x509.CertificateSigningRequest:
        with self._operation():
            token = self._token(sn)
            with self._user_session(token, sn, pin) as session:
                signer = self._signer(session, key_id)
                builder = x509.CertificateSigningRequestBuilder().subject_name(subject.to_name())
                return builder.sign(signer, hashes.SHA256())

    def sign(self, sn: str, *, pin: str, key_id: bytes, data: bytes) -> bytes:
        with self._operation():
            token = self._token(sn)
            with self._user_session(token, sn, pin) as session:
                signer = self._signer(session, key_id)
                if isinstance(signer, OnKeyEllipticCurvePrivateKey):
                    return signer.sign(data, ec.ECDSA(hashes.SHA256()))
                return signer.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def import_certificate(
        self, sn: str, *, pin: str, certificate: x509.Certificate, chain: Sequence[x509.Certificate] = ()
    ) -> CertificateInfo:
        public_key = certificate.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise KeyPairNotFound("证书的公钥类型不受支持。")
        key_id = key_id_for(public_key)
        with self._operation():
            token = self._token(sn)
            with self._user_session(token, sn, pin) as session:
                try:
                    pair = self._pair(session, key_id)
                except KeyPairNotFound:
                    raise KeyPairNotFound(
                        "证书盘上没有与该证书公钥匹配的私钥：请确认插入的是申请证书时使用的那把 USB Key。"
                    ) from None
                if pair.public_key.public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                ) != public_key.public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                ):
                    raise KeyPairNotFound("证书的公钥与证书盘上的密钥对不一致。")
                label = pair.role.label if pair.role else str(certificate.serial_number)
                self._store_certificate(session, certificate, key_id=key_id, label=label, category=CATEGORY_TOKEN_USER)
                for ca in chain:
                    ca_key = ca.public_key()
                    ca_id = (
                        key_id_for(ca_key) if isinstance(ca_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey) else b""
                    )
                    ca_label = CA_CERTIFICATE_LABEL_PREFIX + CertificateInfo.of(ca, key_id=ca_id).common_name
                    self._store_certificate(
                        session, ca, key_id=ca_id, label=ca_label[:64], category=CATEGORY_AUTHORITY, replace=False
                    )
                return CertificateInfo.of(certificate, key_id=key_id)

    def _store_certificate(
        self,
        session: Any,
        certificate: x509.Certificate,
        *,
        key_id: bytes,
        label: str,
        category: int,
        replace: bool = True,
    ) -> None:
        """Store one certificate unless the very same one is already there. With `replace`, the
        other certificates under the same CKA_ID go, after the new one is stored."""
        der = _der(certificate)
        if _find(session, {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.VALUE: der}):
            return
        previous = _find(session, {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: key_id}) if replace else []
        template = decode_x509_certificate(der)
        template.update(
            {
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.ID: key_id,
                Attribute.LABEL: label,
                Attribute(CKA_CERTIFICATE_CATEGORY): category,
            }
        )
        session.create_object(template)
        for obj in previous:
            obj.destroy()

    def delete_key_pair(self, sn: str, *, pin: str, key_id: bytes, replaced_by: bytes | None = None) -> None:
        with self._operation():
            token = self._token(sn)
            with self._user_session(token, sn, pin) as session:
                objects = _find(session, {Attribute.ID: key_id})
                private_or_public = [
                    obj for obj in objects if obj[Attribute.CLASS] in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY)
                ]
                if not private_or_public:
                    raise KeyPairNotFound(f"证书盘上没有标识为 {key_id.hex()} 的密钥对。")
                pairs = {pair.key_id: pair for pair in self._key_pairs(session)}
                old = pairs.get(key_id)
                if old is not None and old.certificate is not None:
                    if replaced_by is None or replaced_by == key_id:
                        raise DeleteRefused("这对密钥上还有证书：须在新证书写入并确认之后才能删除旧的密钥对。")
                    new = pairs.get(replaced_by)
                    if new is None or new.certificate is None:
                        raise DeleteRefused("替代它的新密钥对不存在或还没有证书：旧的密钥对暂不删除。")
                    if new.role != old.role:
                        raise DeleteRefused("新旧密钥对的用途（签名/加密）不同：旧的密钥对暂不删除。")
                # Certificate first, private key last: an interrupted delete never leaves a
                # certificate without its key.
                order = {ObjectClass.CERTIFICATE: 0, ObjectClass.PUBLIC_KEY: 1, ObjectClass.PRIVATE_KEY: 2}
                for obj in sorted(objects, key=lambda o: order.get(o[Attribute.CLASS], 3)):
                    obj.destroy()

    # ---- with the administrator (SO) PIN -------------------------------------------------------

    def unlock(self, sn: str, *, so_pin: str, new_user_pin: str, new_so_pin: str) -> None:
        user_pin_check(new_user_pin)
        admin_pin_check(new_so_pin)
        if new_so_pin == so_pin:
            raise PinPolicyError("新的管理员 PIN 必须与当前的不同。")
        with self._operation():
            token = self._token(sn)
            with self._so_session(token, sn, so_pin) as session:
                # The administrator PIN is replaced first: the portal has already forgotten the
                # released one, so once this succeeds the key and the portal agree again whatever
                # happens next (and a retry works with the new one).
                try:
                    session.set_pin(so_pin, new_so_pin)
                except (p11.PinLenRange, p11.PinInvalid, p11.PinTooWeak) as exc:
                    raise PinPolicyError(f"证书盘不接受新的管理员 PIN（{type(exc).__name__}）。") from exc
                try:
                    session.init_pin(new_user_pin)
                except (p11.PinLenRange, p11.PinInvalid, p11.PinTooWeak) as exc:
                    raise PinPolicyError(f"证书盘不接受这个新 PIN 码（{type(exc).__name__}）。") from exc
                state = retry_counter_read(session)
                if state is not None:
                    retry_counter_write(session, state.full())
