"""tokens_import and tokens_make_demo, the demo keys seen by the agent, and an online unlock end to end."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from certdesk_agent.drivers.pkcs11 import Pkcs11Driver
from certdesk_agent.errors import AdminPinRejected, KeyLocked, WrongPin
from django.core.management import CommandError, call_command
from django.db import connection
from pytest_django.fixtures import Settings

from certdesk.core.sealing import unseal
from certdesk.tokens.keymodels import key_unlock_method
from certdesk.tokens.models import UsbKey, UsbKeyStatus
from certdesk.tokens.services import (
    so_pin_generate,
    usb_key_mark_issued,
    usb_key_mark_locked,
    usb_key_so_pin_confirm,
    usb_key_so_pin_release_once,
)
from tests.agent.softhsm import SOFTHSM_MODULE, library_reinitialize

USCC = "91110000600037341L"

CSV = """\ufeffsn,model,vendor,so_pin,user_pin
551000000001,EZCA-K55,东方中讯,Vendor-SO-0001,12345678
111000000002,,,Vendor-SO-0002,
551000000001,EZCA-K55,东方中讯,Vendor-SO-9999,12345678
55-bad,EZCA-K55,东方中讯,Vendor-SO-0004,
561000000005,,,,
561000000006,,,abc,
991000000007,,,Vendor-SO-0007,
991000000008,OTHER-K9,某厂商,Vendor-SO-0008,
,,,,
"""


def _import(path: Path) -> tuple[str, str, CommandError | None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("tokens_import", str(path), stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def _raw_so_pin(sn: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT so_pin_sealed FROM tokens_usbkey WHERE sn = %s", [sn])
        return str(cursor.fetchone()[0])


# ---- tokens_import ------------------------------------------------------------------------------------


def test_import_takes_the_good_rows_and_reports_the_bad_ones(db: None, tmp_path: Path) -> None:
    path = tmp_path / "stock.csv"
    path.write_text(CSV, encoding="utf-8")

    out, err, error = _import(path)

    assert error is not None
    assert sorted(UsbKey.objects.values_list("sn", "model", "vendor")) == [
        ("111000000002", "EZCA-K11", "东方中讯"),
        ("551000000001", "EZCA-K55", "东方中讯"),
        ("991000000008", "OTHER-K9", "某厂商"),
    ]
    assert unseal(_raw_so_pin("551000000001")) == "Vendor-SO-0001"  # the first row won, not the duplicate
    assert "导入 3 把，跳过 0 把，拒绝 5 行。" in out
    rejected = err.splitlines()
    assert rejected == [
        "  拒绝 第 4 行 551000000001：与第 2 行的序列号重复",
        "  拒绝 第 5 行 55-bad：序列号“55-bad”无效：应为 6–32 位字母或数字。",
        "  拒绝 第 6 行 561000000005：管理员 PIN应为 6–32 位。",
        "  拒绝 第 7 行 561000000006：管理员 PIN应为 6–32 位。",
        "  拒绝 第 8 行 991000000007：无法从序列号识别型号，请填写型号。",
    ]
    assert "5 行被拒绝" in str(error)
    for secret in ("Vendor-SO", "abc"):
        assert secret not in out and secret not in err and secret not in str(error)


def test_import_is_idempotent(db: None, tmp_path: Path) -> None:
    path = tmp_path / "stock.csv"
    path.write_text("sn,so_pin\n551000000001,Vendor-SO-0001\n111000000002,Vendor-SO-0002\n", encoding="utf-8")
    out, _err, error = _import(path)
    assert error is None and "导入 2 把" in out

    path.write_text(
        "sn,so_pin\n551000000001,Changed-SO-0001\n111000000002,Vendor-SO-0002\n561000000003,Vendor-SO-0003\n",
        encoding="utf-8",
    )
    out, _err, error = _import(path)

    assert error is None
    assert "导入 1 把，跳过 2 把，拒绝 0 行。" in out
    assert "跳过 第 2 行 551000000001：已在库存中，未改动" in out
    assert unseal(_raw_so_pin("551000000001")) == "Vendor-SO-0001"
    assert UsbKey.objects.count() == 3


def test_import_refuses_a_file_without_the_needed_columns(db: None, tmp_path: Path) -> None:
    path = tmp_path / "stock.csv"
    path.write_text("serial_number,pin\n551000000001,12345678\n", encoding="utf-8")
    with pytest.raises(CommandError, match="缺少列：sn, so_pin"):
        call_command("tokens_import", str(path))
    with pytest.raises(CommandError, match="无法读取"):
        call_command("tokens_import", str(tmp_path / "missing.csv"))


# ---- tokens_make_demo ---------------------------------------------------------------------------------


def test_make_demo_creates_keys_with_the_prefix_and_a_sealed_so_pin(
    db: None, demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    call_command("tokens_make_demo", "2", "--prefix", "56", stdout=out)

    keys = list(UsbKey.objects.order_by("sn"))
    assert len(keys) == 2
    for key in keys:
        assert key.sn.startswith("56") and len(key.sn) == 12 and key.sn.isdigit()
        assert (key.model, key.status, key.emulated) == ("EZCA-K56", UsbKeyStatus.IN_STOCK, True)
        assert key_unlock_method(key.sn) == "online"
        raw = _raw_so_pin(key.sn)
        so_pin = unseal(raw)
        assert raw.startswith("sealed:") and so_pin not in raw and len(so_pin) == 16
        assert so_pin not in out.getvalue()
        assert f"{key.sn}  EZCA-K56  user PIN 12345678" in out.getvalue()
    assert (demo_dir / "softhsm2.conf").exists()

    # The agent sees exactly these keys in the demo directory, each with its retry counter.
    monkeypatch.setenv("SOFTHSM2_CONF", str(demo_dir / "softhsm2.conf"))
    library_reinitialize()
    listed = Pkcs11Driver(module=SOFTHSM_MODULE).list_keys()
    assert [(k.sn, k.model, k.locked, k.retries_left) for k in listed] == [
        (key.sn, "EZCA-K56", False, 6) for key in keys
    ]


def test_make_demo_ensure_tops_up_to_n_keys(db: None, demo_dir: Path) -> None:
    call_command("tokens_make_demo", "1", "--prefix", "11", "--ensure", stdout=io.StringIO())
    call_command("tokens_make_demo", "2", "--prefix", "11", "--ensure", stdout=io.StringIO())
    out = io.StringIO()
    call_command("tokens_make_demo", "2", "--prefix", "11", "--ensure", stdout=out)
    assert "2 emulated USB keys with prefix 11 already in stock" in out.getvalue()
    assert UsbKey.objects.filter(sn__startswith="11", model="EZCA-K11").count() == 2
    assert key_unlock_method(UsbKey.objects.first().sn) == "remote"  # type: ignore[union-attr]


def test_make_demo_only_in_demo_mode(db: None, demo_dir: Path, settings: Settings) -> None:
    settings.DEMO_MODE = False
    with pytest.raises(CommandError, match="demo mode"):
        call_command("tokens_make_demo", "1")
    settings.DEMO_MODE = True
    with pytest.raises(CommandError, match="prefix"):
        call_command("tokens_make_demo", "1", "--prefix", "5")
    assert not UsbKey.objects.exists()


def test_make_demo_removes_its_tokens_when_the_inventory_refuses_them(
    db: None, demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from certdesk.core.errors import DomainError
    from certdesk.tokens.management.commands import tokens_make_demo

    def refuse(**kwargs: object) -> UsbKey:
        raise DomainError("库存拒绝", code="test")

    monkeypatch.setattr(tokens_make_demo, "usb_key_create", refuse)
    with pytest.raises(CommandError, match="库存拒绝"):
        call_command("tokens_make_demo", "2", stdout=io.StringIO())

    monkeypatch.setenv("SOFTHSM2_CONF", str(demo_dir / "softhsm2.conf"))
    library_reinitialize()
    assert Pkcs11Driver(module=SOFTHSM_MODULE).list_keys() == []
    assert not UsbKey.objects.exists()


def test_online_unlock_end_to_end(db: None, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A demo key locks after wrong PINs; the server releases its SO PIN once; the agent unlocks."""
    call_command("tokens_make_demo", "1", "--prefix", "55", "--max-retries", "3", stdout=io.StringIO())
    key = usb_key_mark_issued(key=UsbKey.objects.get(), owner_uscc=USCC)
    monkeypatch.setenv("SOFTHSM2_CONF", str(demo_dir / "softhsm2.conf"))
    library_reinitialize()
    driver = Pkcs11Driver(module=SOFTHSM_MODULE)
    driver.verify_pin(key.sn, pin="12345678")
    for _ in range(2):
        with pytest.raises(WrongPin):
            driver.verify_pin(key.sn, pin="00000000")
    with pytest.raises(KeyLocked):
        driver.verify_pin(key.sn, pin="00000000")
    usb_key_mark_locked(key=key, actor="customer")

    fresh = so_pin_generate()
    released = usb_key_so_pin_release_once(key=key, fresh_so_pin=fresh, actor="unlock-order")
    driver.unlock(key.sn, so_pin=released, new_user_pin="24681357", new_so_pin=fresh)
    usb_key_so_pin_confirm(key=key, actor="agent")

    driver.verify_pin(key.sn, pin="24681357")
    assert driver.get_key(key.sn).retries_left == 3
    with pytest.raises(AdminPinRejected):
        driver.unlock(key.sn, so_pin=released, new_user_pin="11112222", new_so_pin=so_pin_generate())
    key.refresh_from_db()
    assert key.status == UsbKeyStatus.ISSUED
    # The server's current SO PIN is the one the key has now.
    next_fresh = so_pin_generate()
    assert usb_key_so_pin_release_once(key=key, fresh_so_pin=next_fresh) == fresh
    driver.unlock(key.sn, so_pin=fresh, new_user_pin="11112222", new_so_pin=next_fresh)
