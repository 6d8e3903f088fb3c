"""The work the portal sends the agent to do on a key: write certificates (`enroll`, `renew`)
and reset a forgotten PIN (`unlock`).

Every step is safe to run again after a crash, a lost connection or a pulled key, by running
the same command with the same pairing code:

- the session token is kept (`state.SessionStore`), so a spent code still leads to its session;
- before generating a key pair, the portal's progress and the key's pairs are compared: a pair
  of the role without a certificate (the one the portal already knows, if any) is reused, and
  the portal answers the same key with the same certificate, so nothing is issued twice;
- importing a certificate that is already on the key changes nothing, confirming twice neither;
- old pairs are deleted only after the portal confirmed, and only once the new pair of the same
  role holds its certificate (the driver refuses anything else).

The unlock is the exception the portal's design accepts: the key's admin PIN is released once
and never stored here, so an unlock interrupted after the release goes to support, unless the
new PIN is found to work on the key (then the unlock did happen and is reported as such).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from certdesk_agent.drivers.base import KeyDriver
from certdesk_agent.errors import (
    AgentError,
    KeyLocked,
    OrderNotWaiting,
    PinPolicyError,
    PortalError,
    UnlockFailed,
    WrongCommand,
    WrongPin,
)
from certdesk_agent.pins import user_pin_check
from certdesk_agent.portal import (
    IssuedCertificate,
    PortalClient,
    PortalSession,
    enc_pop_message,
    spki_sha256,
)
from certdesk_agent.state import SavedSession, SessionStore
from certdesk_agent.types import NTR_PREFIX, ORGANIZATION_IDENTIFIER, KeyAlgorithm, KeyPairInfo, KeyRole

ROLE_NAMES = {KeyRole.SIGN: "签名证书", KeyRole.ENC: "加密证书"}
CERTIFICATE_OPERATIONS = ("write", "download")
COMMAND_FOR = {"write": "enroll", "download": "renew", "unlock": "unlock"}


@dataclass
class Console:
    """Where the flows talk to the person at the PC."""

    out: TextIO
    ask_secret: Callable[[str], str]

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


@dataclass(frozen=True)
class Paired:
    token: str
    session: PortalSession


def _same_serial(a: str, b: str) -> bool:
    try:
        return int(a, 16) == int(b, 16)
    except ValueError:
        return False


def pair_session(*, portal: PortalClient, store: SessionStore, code: str, key_sn: str, console: Console) -> Paired:
    """The session for this pairing code: the one kept from an earlier run, or a new one."""
    saved = store.load(portal.base_url, code)
    if saved is not None:
        if saved.key_sn != key_sn:
            raise WrongCommand(
                f"这个配对码已与 USB Key {saved.key_sn} 配对：请插入那把 Key（或在订单页面重新获取配对码）。"
            )
        try:
            session = portal.get_session(token=saved.token)
        except PortalError as exc:
            if exc.code != "session_invalid":
                raise
            store.forget(portal.base_url, code)
        else:
            console.say("继续上次未完成的办理。")
            return Paired(token=saved.token, session=session)
    token, session = portal.open_session(pairing_code=code, key_sn=key_sn)
    store.save(portal.base_url, code, SavedSession(token=token, expires_at=session.expires_at, key_sn=key_sn))
    return Paired(token=token, session=session)


def _verify_pin(driver: KeyDriver, sn: str, pin: str | None, console: Console) -> str:
    """The user PIN, checked on the key (each try counts on it). Asked for again while tries are
    left when the person types it; a PIN given on the command line is tried once."""
    if driver.get_key(sn).locked:
        raise KeyLocked(sn)  # refused before any PIN reaches the key
    asked = pin is None
    while True:
        if asked:
            pin = console.ask_secret(f"请输入 USB Key {sn} 的 PIN 码：")
        assert pin is not None
        try:
            driver.verify_pin(sn, pin=pin)
            return pin
        except WrongPin as exc:
            if not asked:
                raise
            console.say(exc.message)


# ---- certificates onto the key (enroll, renew) --------------------------------------------------


def _has_organisation(pair: KeyPairInfo, uscc: str) -> bool:
    if pair.certificate is None:
        return False
    values = pair.certificate.certificate.subject.get_attributes_for_oid(ORGANIZATION_IDENTIFIER)
    return any(value.value == NTR_PREFIX + uscc for value in values)


class _CertificateWork:
    def __init__(
        self, *, driver: KeyDriver, portal: PortalClient, paired: Paired, sn: str, pin: str, console: Console
    ) -> None:
        self.driver = driver
        self.portal = portal
        self.token = paired.token
        self.session = paired.session
        self.sn = sn
        self.pin = pin
        self.console = console
        try:
            self.algorithm = KeyAlgorithm(self.session.key_algorithm)
        except ValueError:
            raise AgentError(
                f"平台要求的密钥算法 {self.session.key_algorithm} 本证书助手不支持：请升级证书助手。"
            ) from None

    def pairs(self) -> list[KeyPairInfo]:
        return self.driver.list_key_pairs(self.sn, pin=self.pin)

    def ensure(self, role: KeyRole, done: dict[KeyRole, KeyPairInfo]) -> tuple[KeyPairInfo, str]:
        """The pair of `role` holding this order's certificate, made (or finished) as needed;
        returns it with the certificate's serial."""
        name = ROLE_NAMES[role]
        known = [c for c in self.session.certificates if c.role == role]
        mine = [p for p in self.pairs() if p.role == role and p.algorithm is self.algorithm]
        # Already written in an earlier run (then only the confirmation was missing).
        for progress in known:
            for candidate in mine:
                certificate = candidate.certificate
                if certificate is not None and _same_serial(certificate.serial_hex, progress.serial):
                    self.console.say(f"{name}已在 USB Key 上（序列号 {progress.serial}）。")
                    return candidate, progress.serial
        # A pair without a certificate: the one the portal issued for (if it is here), else any
        # such pair of this role left by an interrupted run. Never a second pair for the order.
        blank = [p for p in mine if p.certificate is None and (role is not KeyRole.SIGN or p.can_sign)]
        issued_for = {c.spki_sha256 for c in known}
        reused = next((p for p in blank if spki_sha256(p.public_key) in issued_for), blank[0] if blank else None)
        if reused is None:
            self.console.say(f"正在 USB Key 上生成{name}的密钥对……")
            pair = self.driver.generate_key_pair(self.sn, pin=self.pin, role=role, algorithm=self.algorithm)
        else:
            self.console.say(f"使用 USB Key 上已生成的{name}密钥对。")
            pair = reused
        try:
            issued = self.request(role, pair, done)
        except PortalError as exc:
            if reused is None or exc.code != "certificate_retired":
                raise
            # The portal withdrew this pair's certificate (a newer pair was certified meanwhile):
            # the pair is useless, so it goes and a fresh one is made, once.
            self.driver.delete_key_pair(self.sn, pin=self.pin, key_id=pair.key_id)
            self.console.say(f"平台已作废该密钥对的证书，重新生成{name}的密钥对……")
            pair = self.driver.generate_key_pair(self.sn, pin=self.pin, role=role, algorithm=self.algorithm)
            issued = self.request(role, pair, done)
        if issued.certificate.public_key() != pair.public_key:
            raise AgentError(f"平台签发的{name}与 USB Key 上的密钥对不一致，未写入。请联系客服。")
        self.console.say(
            f"{name}已签发：序列号 {issued.serial}，有效期 {issued.not_before:%Y-%m-%d} 至 {issued.not_after:%Y-%m-%d}。"
        )
        self.driver.import_certificate(self.sn, pin=self.pin, certificate=issued.certificate, chain=issued.chain)
        self.console.say(f"{name}已写入 USB Key。")
        return pair, issued.serial

    def request(self, role: KeyRole, pair: KeyPairInfo, done: dict[KeyRole, KeyPairInfo]) -> IssuedCertificate:
        if role is KeyRole.SIGN:
            csr = self.driver.create_csr(self.sn, pin=self.pin, key_id=pair.key_id, subject=self.session.subject)
            return self.portal.request_certificate(token=self.token, role=role, csr=csr)
        # An encryption pair cannot sign its own request: the signing pair, certified first,
        # vouches that it lives on this very key.
        signer = done.get(KeyRole.SIGN)
        if signer is None:
            raise AgentError("须先写入签名证书，才能申请加密证书。")
        message = enc_pop_message(order_number=self.session.order_number, key_sn=self.sn, public_key=pair.public_key)
        signature = self.driver.sign(self.sn, pin=self.pin, key_id=signer.key_id, data=message)
        return self.portal.request_certificate(
            token=self.token, role=role, public_key=pair.public_key, pop_signature=signature
        )

    def tidy(self, current: dict[KeyRole, KeyPairInfo]) -> None:
        """After the confirmation: the pairs the new ones replace go (renew/change), and so do
        pairs of these roles that never got a certificate (left by interrupted runs)."""
        replacing = self.session.operation == "download"
        for pair in self.pairs():
            new = current.get(pair.role) if pair.role is not None else None
            if new is None or pair.key_id == new.key_id:
                continue
            if pair.certificate is None:
                self.driver.delete_key_pair(self.sn, pin=self.pin, key_id=pair.key_id)
            elif replacing and (
                _has_organisation(pair, self.session.subject.uscc)
                or (self.session.renewal_of and _same_serial(pair.certificate.serial_hex, self.session.renewal_of))
            ):
                self.driver.delete_key_pair(self.sn, pin=self.pin, key_id=pair.key_id, replaced_by=new.key_id)
                name = ROLE_NAMES.get(pair.role, "证书") if pair.role else "证书"
                self.console.say(f"已从 USB Key 删除被替换的原{name}（序列号 {pair.certificate.serial_hex.upper()}）。")


def certificates_run(
    *,
    driver: KeyDriver,
    portal: PortalClient,
    store: SessionStore,
    code: str,
    sn: str | None,
    pin: str | None,
    console: Console,
) -> int:
    """`enroll` / `renew`: the order's certificates onto the key, confirmed with the portal."""
    key_sn = driver.resolve_sn(sn)
    paired = pair_session(portal=portal, store=store, code=code, key_sn=key_sn, console=console)
    session = paired.session
    if session.operation not in CERTIFICATE_OPERATIONS:
        raise WrongCommand(
            f"这个配对码用于“{session.business_type_label}”：请运行 certdesk-agent {COMMAND_FOR[session.operation]} --code …"
        )
    roles_text = " + ".join(ROLE_NAMES[role] for role in session.roles)
    console.say(
        f"订单 {session.order_number}（{session.business_type_label}），{session.subject.organization}，"
        f"USB Key {key_sn}：{roles_text}。"
    )
    if not session.operation_pending and not session.all_installed:
        raise OrderNotWaiting(f"订单当前状态为“{session.order_status_label}”，不需要写入证书。")
    pin = _verify_pin(driver, key_sn, pin, console)
    work = _CertificateWork(driver=driver, portal=portal, paired=paired, sn=key_sn, pin=pin, console=console)
    current: dict[KeyRole, KeyPairInfo] = {}
    serials: list[str] = []
    for role in sorted(session.roles, key=lambda r: r is not KeyRole.SIGN):  # signing first
        pair, serial = work.ensure(role, current)
        current[role] = pair
        serials.append(serial)
    _status, label = portal.confirm(token=paired.token, serials=serials)
    console.say(f"平台已确认，订单状态：{label}。")
    work.tidy(current)
    store.forget(portal.base_url, code)
    console.say("完成。")
    return 0


# ---- online unlock ------------------------------------------------------------------------------


def _new_pin(new_pin: str | None, console: Console) -> str:
    if new_pin is not None:
        user_pin_check(new_pin)
        return new_pin
    while True:
        first = console.ask_secret("请设置新的 PIN 码（6–16 位字母、数字或英文标点）：")
        try:
            user_pin_check(first)
        except PinPolicyError as exc:
            console.say(exc.message)
            continue
        if console.ask_secret("请再输入一次新的 PIN 码：") == first:
            return first
        console.say("两次输入的 PIN 码不一致，请重新设置。")


def _to_support(portal: PortalClient, token: str, error: AgentError | str) -> None:
    detail = error if isinstance(error, str) else f"{error.code}: {error.message}"
    portal.unlock_finish(token=token, ok=False, error=detail)


def unlock_run(
    *,
    driver: KeyDriver,
    portal: PortalClient,
    store: SessionStore,
    code: str,
    sn: str | None,
    new_pin: str | None,
    console: Console,
) -> int:
    """`unlock`: the admin PIN released once by the portal resets the user PIN on the key."""
    key_sn = driver.resolve_sn(sn)
    paired = pair_session(portal=portal, store=store, code=code, key_sn=key_sn, console=console)
    session, token = paired.session, paired.token
    if session.operation != "unlock":
        raise WrongCommand(
            f"这个配对码用于“{session.business_type_label}”：请运行 certdesk-agent {COMMAND_FOR[session.operation]} --code …"
        )
    console.say(f"订单 {session.order_number}（在线解锁），USB Key {key_sn}。")
    if not session.operation_pending:
        store.forget(portal.base_url, code)
        if session.order_status == "completed":
            console.say("这把 USB Key 已解锁，请使用新的 PIN 码。")
            return 0
        raise OrderNotWaiting(f"订单当前状态为“{session.order_status_label}”：在线解锁未完成，请联系客服。")
    pin = _new_pin(new_pin, console)

    def recover() -> int:
        # The admin PIN was released in an earlier run that did not report back. If the new PIN
        # works on the key, that run did unlock it; otherwise support takes over.
        console.say("上次解锁在发放管理员 PIN 之后中断，正在检查 USB Key……")
        try:
            driver.verify_pin(key_sn, pin=pin)
        except (WrongPin, KeyLocked) as exc:
            _to_support(portal, token, "中断后重试：新 PIN 在 Key 上无效")
            store.forget(portal.base_url, code)
            raise UnlockFailed(f"上次解锁没有完成（{exc.message}）。订单已转人工远程协助，客服会与您联系。") from None
        portal.unlock_finish(token=token, ok=True)
        store.forget(portal.base_url, code)
        console.say("解锁已完成，请使用新的 PIN 码。")
        return 0

    if session.unlock_pending:
        return recover()
    try:
        pins = portal.unlock_start(token=token)
    except PortalError as exc:
        if exc.code == "so_pin_already_released":
            return recover()
        raise
    try:
        driver.unlock(key_sn, so_pin=pins.so_pin, new_user_pin=pin, new_so_pin=pins.new_so_pin)
    except AgentError as exc:
        # The key may hold either admin PIN now: never retried here (a locked admin PIN is the
        # end of a key); support takes the order over.
        _to_support(portal, token, exc)
        store.forget(portal.base_url, code)
        raise UnlockFailed(f"{exc.message} 解锁没有完成，订单已转人工远程协助，客服会与您联系。") from None
    portal.unlock_finish(token=token, ok=True)
    store.forget(portal.base_url, code)
    console.say("解锁成功：USB Key 的 PIN 码已重置，请使用新的 PIN 码。")
    return 0
