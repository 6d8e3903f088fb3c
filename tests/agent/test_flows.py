"""The agent's flows end to end: `certdesk-agent enroll / renew / unlock` (in this process, on
this test's SoftHSM keys) against the live portal (pytest-django's live_server, its real CA).

The orders are put straight into the state the key work needs (PAID, READY_TO_DOWNLOAD,
READY_TO_UNLOCK); the business flows before that are tested elsewhere."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from certdesk_agent.drivers.pkcs11 import Pkcs11Driver
from certdesk_agent.errors import AdminPinRejected, PortalUnreachable
from certdesk_agent.portal import PortalClient
from certdesk_agent.state import SessionStore
from certdesk_agent.types import CertificateSubject, KeyPairInfo, KeyRole
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certdesk.accounts.models import User
from certdesk.audit.models import AuditRecord
from certdesk.core.sealing import seal, unseal
from certdesk.fulfilment.keywork import agent_certificate_request, agent_pairing_create, agent_session_open
from certdesk.orders.models import Order, OrderStatus
from certdesk.pki.models import IssuedCertificate
from certdesk.ra.models import CertificateRole
from certdesk.tokens.models import UsbKey, UsbKeyStatus
from certdesk.tokens.services import usb_key_create, usb_key_mark_issued
from tests.agent.conftest import AgentRun
from tests.agent.softhsm import EmulatedKey

SN = "551234567890"
NEW_PIN = "Neu-PIN-2026"


@pytest.fixture
def paid_order(complete_order: Order) -> Order:
    Order.objects.filter(pk=complete_order.pk).update(status=OrderStatus.PAID, amount_fen=70000)
    complete_order.refresh_from_db()
    return complete_order


@pytest.fixture
def station_key(new_key: Callable[..., EmulatedKey]) -> EmulatedKey:
    """A blank key from stock: the token on the station and its inventory record."""
    emulated = new_key(SN)
    usb_key_create(sn=SN, so_pin=emulated.so_pin, initial_user_pin=emulated.user_pin)
    return emulated


def _pairs(driver: Pkcs11Driver, key: EmulatedKey, pin: str | None = None) -> dict[KeyRole, list[KeyPairInfo]]:
    found: dict[KeyRole, list[KeyPairInfo]] = {}
    for pair in driver.list_key_pairs(key.sn, pin=pin or key.user_pin):
        assert pair.role is not None
        found.setdefault(pair.role, []).append(pair)
    return found


def _openssl_verify(live_server: Any, tmp_path: Path, certificate: x509.Certificate) -> str:
    files = {}
    for role in ("root", "issuing"):
        with urllib.request.urlopen(f"{live_server.url}/pki/ca/{role}.crt", timeout=10) as response:  # noqa: S310
            served = x509.load_der_x509_certificate(response.read())
        files[role] = tmp_path / f"{role}.pem"
        files[role].write_bytes(served.public_bytes(serialization.Encoding.PEM))
    leaf = tmp_path / f"leaf-{certificate.serial_number:x}.pem"
    leaf.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", files["root"], "-untrusted", files["issuing"], leaf],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout + result.stderr


def _enroll(run_agent: Callable[..., AgentRun], order: Order, issuer: User, key: EmulatedKey) -> AgentRun:
    code = agent_pairing_create(order=order, actor=issuer).code
    result = run_agent("enroll", "--code", code, "--pin", key.user_pin)
    assert (result.code, result.err) == (0, ""), result.err
    return result


def _follow_up(order: Order, *, business_type: str, status: str, previous_serial: str = "", years: int = 1) -> Order:
    """Another order of the same customer for the same key (a renewal, a change, an unlock)."""
    follow = Order.objects.get(pk=order.pk)
    follow.pk = None
    follow.number = "GX2611270000001"
    follow.business_type = business_type
    follow.status = status
    follow.years = years
    follow.key_sn = SN
    follow.previous_serial = previous_serial
    follow.save()
    return follow


# ---- station: a blank key written for a dual-certificate new order -------------------------------


def test_station_writes_a_dual_certificate_key(
    live_server: Any,
    file_ca: Any,
    run_agent: Callable[..., AgentRun],
    driver: Pkcs11Driver,
    paid_order: Order,
    issuer: User,
    station_key: EmulatedKey,
    tmp_path: Path,
) -> None:
    result = _enroll(run_agent, paid_order, issuer, station_key)

    assert "签名证书已写入 USB Key" in result.out and "加密证书已写入 USB Key" in result.out
    assert "订单状态：待发货" in result.out
    paid_order.refresh_from_db()
    assert (paid_order.status, paid_order.key_sn) == (OrderStatus.TO_SHIP, SN)
    inventory = UsbKey.objects.get(sn=SN)
    assert inventory.status == UsbKeyStatus.ISSUED
    assert {c.role for c in inventory.certificates.all()} == {"sign", "enc"}

    pairs = _pairs(driver, station_key)
    assert {role: len(found) for role, found in pairs.items()} == {KeyRole.SIGN: 1, KeyRole.ENC: 1}
    for role, (pair,) in pairs.items():
        assert pair.certificate is not None
        certificate = pair.certificate.certificate
        # The certificate certifies the pair that was made on the key …
        assert certificate.public_key() == pair.public_key
        assert pair.can_sign is (role is KeyRole.SIGN)
        # … and chains to the CA the portal serves.
        assert f"{tmp_path}/leaf-{certificate.serial_number:x}.pem: OK" in _openssl_verify(
            live_server, tmp_path, certificate
        )
    # The authority certificates went onto the key too.
    assert sum(c.is_ca for c in driver.get_key(SN).certificates) == 2
    assert IssuedCertificate.objects.filter(reference=paid_order.number).count() == 2


def test_the_pin_is_asked_for_again_while_tries_are_left(
    file_ca: Any,
    run_agent: Callable[..., AgentRun],
    driver: Pkcs11Driver,
    paid_order: Order,
    issuer: User,
    station_key: EmulatedKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter(["wrong-pin-1", station_key.user_pin])
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return next(answers)

    monkeypatch.setattr("certdesk_agent.cli._ask_secret", ask)
    code = agent_pairing_create(order=paid_order, actor=issuer).code

    result = run_agent("enroll", "--code", code)

    assert result.code == 0, result.err
    assert len(asked) == 2 and SN in asked[0]
    assert "PIN 码错误，还可以尝试 5 次" in result.out
    assert driver.get_key(SN).retries_left == 6  # a good PIN gives the tries back


# ---- renewal and change: a new certificate onto the same key --------------------------------------


@pytest.mark.parametrize("business_type", ["renew", "change"])
def test_download_replaces_the_certificates_on_the_same_key(
    business_type: str,
    file_ca: Any,
    run_agent: Callable[..., AgentRun],
    driver: Pkcs11Driver,
    paid_order: Order,
    issuer: User,
    customer: User,
    station_key: EmulatedKey,
) -> None:
    _enroll(run_agent, paid_order, issuer, station_key)
    old = {role: pair for role, (pair,) in _pairs(driver, station_key).items()}
    old_sign = old[KeyRole.SIGN].certificate
    assert old_sign is not None
    old_serial = IssuedCertificate.objects.get(reference=paid_order.number, profile="org-sign").serial
    follow = _follow_up(
        paid_order,
        business_type=business_type,
        status=OrderStatus.READY_TO_DOWNLOAD,
        previous_serial=old_serial,
        years=3,
    )

    result = run_agent(
        "renew", "--code", agent_pairing_create(order=follow, actor=customer).code, "--pin", station_key.user_pin
    )

    assert result.code == 0, result.err
    follow.refresh_from_db()
    assert follow.status == OrderStatus.COMPLETED
    pairs = _pairs(driver, station_key)
    # Exactly one pair per role, the new ones: the pairs they replace are gone from the key.
    assert {role: len(found) for role, found in pairs.items()} == {KeyRole.SIGN: 1, KeyRole.ENC: 1}
    assert not {pair.key_id for (pair,) in pairs.values()} & {pair.key_id for pair in old.values()}
    new_sign = pairs[KeyRole.SIGN][0].certificate
    assert new_sign is not None
    assert f"序列号 {old_sign.serial_hex.upper()}" in result.out
    old_record = IssuedCertificate.objects.get(serial=old_serial)
    if business_type == "renew":
        # 证书更新: the new validity runs on from the old expiry.
        expected = old_sign.not_after.replace(year=old_sign.not_after.year + 3)
        assert abs((new_sign.not_after - expected).total_seconds()) < 5
        assert old_record.revoked_at is None
    else:
        # 证书变更: the old subject data no longer holds, its certificate is revoked.
        assert old_record.revoked_at is not None
    assert {c.serial_hex for c in UsbKey.objects.get(sn=SN).certificates.all()} >= {
        IssuedCertificate.objects.get(reference=follow.number, profile="org-sign").serial.lower()
    }


# ---- online unlock -------------------------------------------------------------------------------


@pytest.fixture
def locked_key(new_key: Callable[..., EmulatedKey], driver: Pkcs11Driver) -> EmulatedKey:
    """A 55 key in the customer's hands whose PIN was mistyped until it locked."""
    emulated = new_key(SN)
    usb_key_mark_issued(key=usb_key_create(sn=SN, so_pin=emulated.so_pin), owner_uscc="91110000600037341L")
    for _ in range(emulated.max_retries):
        with pytest.raises(Exception, match="PIN"):
            driver.verify_pin(SN, pin="not-the-pin")
    assert driver.get_key(SN).locked
    return emulated


@pytest.fixture
def unlock_order(complete_order: Order, locked_key: EmulatedKey) -> Order:
    Order.objects.filter(pk=complete_order.pk).update(
        business_type="unlock", status=OrderStatus.READY_TO_UNLOCK, key_sn=SN
    )
    complete_order.refresh_from_db()
    return complete_order


def test_unlock_resets_the_pin_and_retires_the_released_admin_pin(
    live_server: Any,
    run_agent: Callable[..., AgentRun],
    driver: Pkcs11Driver,
    customer: User,
    unlock_order: Order,
    locked_key: EmulatedKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept: list[str] = []
    # Keep the session token the agent would forget at the end, to knock again below.
    monkeypatch.setattr(SessionStore, "forget", lambda self, portal, code: kept.append(code))
    code = agent_pairing_create(order=unlock_order, actor=customer).code

    result = run_agent("unlock", "--code", code, "--new-pin", NEW_PIN)

    assert result.code == 0, result.err
    assert "解锁成功" in result.out
    unlock_order.refresh_from_db()
    assert unlock_order.status == OrderStatus.COMPLETED
    # The user PIN works again, with every try back.
    assert not driver.get_key(SN).locked
    driver.verify_pin(SN, pin=NEW_PIN)
    assert driver.get_key(SN).retries_left == locked_key.max_retries
    # The released admin PIN no longer works on the key …
    with pytest.raises(AdminPinRejected):
        driver.unlock(SN, so_pin=locked_key.so_pin, new_user_pin="12345678", new_so_pin="another-so-pin-1")
    # … the portal holds the one that does, and nothing is pending …
    inventory = UsbKey.objects.get(sn=SN)
    assert inventory.so_pin_released_at is None
    fresh = unseal(inventory.so_pin_sealed)
    assert fresh != locked_key.so_pin
    # … and the session that released it gets nothing more.
    saved = SessionStore().load(live_server.url, kept[0])
    assert saved is not None
    request = urllib.request.Request(  # noqa: S310
        f"{live_server.url}/api/agent/v1/unlock/start",
        method="POST",
        headers={"Authorization": f"Bearer {saved.token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    body = json.loads(refused.value.read())
    assert refused.value.code == 409 and body["code"] == "order_changed" and "so_pin" not in body
    assert AuditRecord.objects.filter(action="usb_key.so_pin_released", object_id=SN).count() == 1
    # The key and the portal agree: the portal's admin PIN opens the key.
    driver.unlock(SN, so_pin=fresh, new_user_pin=NEW_PIN, new_so_pin="another-so-pin-1")


def test_an_unlock_interrupted_after_the_release_goes_to_support(
    run_agent: Callable[..., AgentRun],
    driver: Pkcs11Driver,
    customer: User,
    unlock_order: Order,
    locked_key: EmulatedKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = agent_pairing_create(order=unlock_order, actor=customer).code
    real_unlock = Pkcs11Driver.unlock

    def die(self: Pkcs11Driver, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # Ctrl+C (or the PC switched off) between the release and the key

    monkeypatch.setattr(Pkcs11Driver, "unlock", die)
    interrupted = run_agent("unlock", "--code", code, "--new-pin", NEW_PIN)
    assert interrupted.code == 130 and "重新运行同一命令即可继续" in interrupted.err
    monkeypatch.setattr(Pkcs11Driver, "unlock", real_unlock)

    again = run_agent("unlock", "--code", code, "--new-pin", NEW_PIN)

    assert again.code == 1
    assert "继续上次未完成的办理" in again.out and "人工远程协助" in again.err
    unlock_order.refresh_from_db()
    assert unlock_order.status == OrderStatus.REMOTE_ASSISTANCE
    assert driver.get_key(SN).locked  # nothing was done to the key
    # The admin PIN was released once, not twice.
    assert AuditRecord.objects.filter(action="usb_key.so_pin_released", object_id=SN).count() == 1


def test_a_refused_admin_pin_hands_the_order_to_support(
    run_agent: Callable[..., AgentRun], customer: User, unlock_order: Order, locked_key: EmulatedKey
) -> None:
    # The portal's record of the admin PIN and the key disagree (a key re-initialised by hand).
    UsbKey.objects.filter(sn=SN).update(so_pin_sealed=seal("not-the-so-pin-9"))
    result = run_agent(
        "unlock", "--code", agent_pairing_create(order=unlock_order, actor=customer).code, "--new-pin", NEW_PIN
    )

    assert result.code == 1
    assert "拒绝了管理员 PIN" in result.err and "人工远程协助" in result.err
    unlock_order.refresh_from_db()
    assert unlock_order.status == OrderStatus.REMOTE_ASSISTANCE


# ---- the key's PIN and the wrong key -------------------------------------------------------------


def test_wrong_pins_lock_the_key_and_nothing_is_issued(
    file_ca: Any,
    run_agent: Callable[..., AgentRun],
    driver: Pkcs11Driver,
    paid_order: Order,
    issuer: User,
    station_key: EmulatedKey,
) -> None:
    code = agent_pairing_create(order=paid_order, actor=issuer).code
    for left in range(station_key.max_retries - 1, 0, -1):
        result = run_agent("enroll", "--code", code, "--pin", "wrong-pin")
        assert result.code == 1
        assert result.err == f"错误：PIN 码错误，还可以尝试 {left} 次；次数用完 USB Key 将被锁定。\n"
    last = run_agent("enroll", "--code", code, "--pin", "wrong-pin")
    assert last.code == 1 and "PIN 码错误次数已达上限" in last.err and "已锁定" in last.err
    assert driver.get_key(SN).locked
    # Locked: refused before the PIN is even tried, the right one included.
    refused = run_agent("enroll", "--code", code, "--pin", station_key.user_pin)
    assert refused.code == 1 and "已锁定" in refused.err and "在线解锁" in refused.err
    assert IssuedCertificate.objects.filter(reference=paid_order.number).count() == 0
    paid_order.refresh_from_db()
    assert paid_order.status == OrderStatus.PAID


def test_a_key_with_another_sn_is_refused(
    file_ca: Any,
    run_agent: Callable[..., AgentRun],
    paid_order: Order,
    customer: User,
    new_key: Callable[..., EmulatedKey],
) -> None:
    usb_key_mark_issued(key=usb_key_create(sn=SN, so_pin="so-pin-0000-aaaa"), owner_uscc="91110000600037341L")
    follow = _follow_up(paid_order, business_type="renew", status=OrderStatus.READY_TO_DOWNLOAD)

    nothing = run_agent("renew", "--code", agent_pairing_create(order=follow, actor=customer).code, "--pin", "x")
    assert (nothing.code, nothing.err) == (1, "错误：未检测到 USB Key：请插入证书盘（并确认驱动已安装）后重试。\n")

    other = new_key("559999999999")
    usb_key_create(sn=other.sn, so_pin=other.so_pin)
    wrong = run_agent(
        "renew", "--code", agent_pairing_create(order=follow, actor=customer).code, "--pin", other.user_pin
    )
    assert wrong.code == 1
    assert wrong.err.startswith(
        "错误：证书服务平台拒绝了请求：插入的 Key（SN 559999999999）不是本订单的 Key（SN 551234567890）"
    )

    absent = run_agent("renew", "--code", agent_pairing_create(order=follow, actor=customer).code, "--sn", SN)
    assert absent.code == 1 and f"未找到序列号为 {SN} 的 USB Key" in absent.err
    follow.refresh_from_db()
    assert follow.status == OrderStatus.READY_TO_DOWNLOAD


def test_a_code_for_another_command_says_which_one(
    run_agent: Callable[..., AgentRun], customer: User, unlock_order: Order, locked_key: EmulatedKey
) -> None:
    code = agent_pairing_create(order=unlock_order, actor=customer).code
    result = run_agent("enroll", "--code", code, "--pin", "x")
    assert result.code == 1 and "certdesk-agent unlock --code" in result.err
    # The code is spent, but its session was kept: the right command goes on with it.
    assert run_agent("unlock", "--code", code, "--new-pin", NEW_PIN).code == 0


# ---- interrupted and run again -------------------------------------------------------------------


def test_a_crash_between_issuance_and_the_key_is_recovered_without_a_second_certificate(
    file_ca: Any,
    run_agent: Callable[..., AgentRun],
    driver: Pkcs11Driver,
    paid_order: Order,
    issuer: User,
    station_key: EmulatedKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_import = Pkcs11Driver.import_certificate
    calls = {"n": 0}

    def import_once_crashing(self: Pkcs11Driver, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the agent died after the CA signed, before the key had it")
        return real_import(self, *args, **kwargs)

    monkeypatch.setattr(Pkcs11Driver, "import_certificate", import_once_crashing)
    code = agent_pairing_create(order=paid_order, actor=issuer).code
    with pytest.raises(RuntimeError):
        run_agent("enroll", "--code", code, "--pin", station_key.user_pin)
    assert IssuedCertificate.objects.filter(reference=paid_order.number).count() == 1

    again = run_agent("enroll", "--code", code, "--pin", station_key.user_pin)

    assert again.code == 0, again.err
    assert "继续上次未完成的办理" in again.out and "使用 USB Key 上已生成的签名证书密钥对" in again.out
    assert IssuedCertificate.objects.filter(reference=paid_order.number).count() == 2
    pairs = _pairs(driver, station_key)
    assert {role: len(found) for role, found in pairs.items()} == {KeyRole.SIGN: 1, KeyRole.ENC: 1}
    assert all(pair.certificate is not None for (pair,) in pairs.values())
    paid_order.refresh_from_db()
    assert paid_order.status == OrderStatus.TO_SHIP


def test_a_lost_answer_is_recovered_without_a_second_certificate(
    file_ca: Any,
    run_agent: Callable[..., AgentRun],
    driver: Pkcs11Driver,
    paid_order: Order,
    issuer: User,
    station_key: EmulatedKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_request = PortalClient.request_certificate

    def answer_lost_for_enc(self: PortalClient, **kwargs: Any) -> Any:
        issued = real_request(self, **kwargs)
        if kwargs["role"] is KeyRole.ENC:
            raise PortalUnreachable(self.base_url, "timed out")  # the CA signed; the answer never came
        return issued

    monkeypatch.setattr(PortalClient, "request_certificate", answer_lost_for_enc)
    code = agent_pairing_create(order=paid_order, actor=issuer).code
    lost = run_agent("enroll", "--code", code, "--pin", station_key.user_pin)
    assert lost.code == 1 and "无法连接证书服务平台" in lost.err and "重新运行同一命令" in lost.err
    monkeypatch.setattr(PortalClient, "request_certificate", real_request)

    again = run_agent("enroll", "--code", code, "--pin", station_key.user_pin)

    assert again.code == 0, again.err
    assert "签名证书已在 USB Key 上" in again.out
    assert IssuedCertificate.objects.filter(reference=paid_order.number).count() == 2
    pairs = _pairs(driver, station_key)
    assert {role: len(found) for role, found in pairs.items()} == {KeyRole.SIGN: 1, KeyRole.ENC: 1}


def test_a_pair_whose_certificate_was_withdrawn_is_replaced(
    file_ca: Any,
    run_agent: Callable[..., AgentRun],
    driver: Pkcs11Driver,
    paid_order: Order,
    issuer: User,
    station_key: EmulatedKey,
) -> None:
    # An earlier attempt certified pair A, then pair B (which withdrew A's certificate), and B
    # was lost from the key: only A, whose certificate is superseded, is left without one.
    opened = agent_session_open(code=agent_pairing_create(order=paid_order, actor=issuer).code, key_sn=SN)
    pin = station_key.user_pin
    subject = CertificateSubject(organization=paid_order.cert_org_name, uscc=paid_order.cert_uscc)
    first, second = (driver.generate_key_pair(SN, pin=pin) for _ in range(2))
    for pair in (first, second):
        csr = driver.create_csr(SN, pin=pin, key_id=pair.key_id, subject=subject)
        agent_certificate_request(
            session=opened.session,
            role=CertificateRole.SIGN,
            csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode(),
        )
    driver.delete_key_pair(SN, pin=pin, key_id=second.key_id)

    result = run_agent("enroll", "--code", agent_pairing_create(order=paid_order, actor=issuer).code, "--pin", pin)

    assert result.code == 0, result.err
    assert "平台已作废该密钥对的证书" in result.out
    pairs = _pairs(driver, station_key)
    assert {role: len(found) for role, found in pairs.items()} == {KeyRole.SIGN: 1, KeyRole.ENC: 1}
    assert pairs[KeyRole.SIGN][0].key_id not in (first.key_id, second.key_id)


def test_unlock_asks_for_the_new_pin_twice(
    run_agent: Callable[..., AgentRun],
    driver: Pkcs11Driver,
    customer: User,
    unlock_order: Order,
    locked_key: EmulatedKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter(["short", NEW_PIN, "a-typo-pin", NEW_PIN, NEW_PIN])
    monkeypatch.setattr("certdesk_agent.cli._ask_secret", lambda prompt: next(answers))

    result = run_agent("unlock", "--code", agent_pairing_create(order=unlock_order, actor=customer).code)

    assert result.code == 0, result.err
    assert "新 PIN 码须为 6–16 位" in result.out and "两次输入的 PIN 码不一致" in result.out
    driver.verify_pin(SN, pin=NEW_PIN)
