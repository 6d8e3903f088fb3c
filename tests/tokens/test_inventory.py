"""Key inventory services: stock, status, the sealed administrator PIN released once."""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from certdesk.audit.models import AuditRecord
from certdesk.core.errors import DomainError, InvalidTransition
from certdesk.core.sealing import unseal
from certdesk.tokens.models import UsbKey, UsbKeyStatus
from certdesk.tokens.selectors import usb_key_get, usb_keys_in_stock_count, usb_keys_of_owner
from certdesk.tokens.services import (
    so_pin_generate,
    usb_key_certificate_add,
    usb_key_certificate_remove,
    usb_key_create,
    usb_key_initial_user_pin_reveal,
    usb_key_mark_issued,
    usb_key_mark_locked,
    usb_key_mark_lost,
    usb_key_mark_retired,
    usb_key_so_pin_confirm,
    usb_key_so_pin_release_once,
    usb_key_take_from_stock,
)

USCC = "91110000600037341L"
SO_PIN = "Factory-SO-2026"


def _raw_column(sn: str, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM tokens_usbkey WHERE sn = %s", [sn])  # noqa: S608 - fixed names
        return str(cursor.fetchone()[0])


@pytest.fixture
def issued_key(db: None) -> UsbKey:
    key = usb_key_create(sn="551234567890", so_pin=SO_PIN, initial_user_pin="12345678")
    return usb_key_mark_issued(key=key, owner_uscc=USCC)


def test_a_key_is_created_with_its_pins_sealed(db: None) -> None:
    key = usb_key_create(sn="551234567890", so_pin=SO_PIN, initial_user_pin="12345678")

    assert (key.model, key.vendor, key.status) == ("EZCA-K55", "东方中讯", UsbKeyStatus.IN_STOCK)
    raw = _raw_column(key.sn, "so_pin_sealed")
    assert raw.startswith("sealed:") and SO_PIN not in raw
    assert unseal(raw) == SO_PIN
    raw_user = _raw_column(key.sn, "initial_user_pin_sealed")
    assert raw_user.startswith("sealed:") and "12345678" not in raw_user
    assert SO_PIN not in repr(key) and SO_PIN not in str(key)
    record = AuditRecord.objects.get(action="usb_key.created")
    assert SO_PIN not in str(record.data)


def test_creating_refuses_bad_input(db: None) -> None:
    usb_key_create(sn="551234567890", so_pin=SO_PIN)
    with pytest.raises(DomainError) as duplicate:
        usb_key_create(sn="551234567890", so_pin=SO_PIN)
    assert duplicate.value.code == "sn_duplicate"
    with pytest.raises(DomainError, match="无法从序列号识别型号"):
        usb_key_create(sn="991234567890", so_pin=SO_PIN)
    assert usb_key_create(sn="991234567890", so_pin=SO_PIN, model="OTHER-K1").model == "OTHER-K1"
    for bad_sn in ("55-1234", "55", "５５1234567890"):
        with pytest.raises(DomainError) as excinfo:
            usb_key_create(sn=bad_sn, so_pin=SO_PIN)
        assert excinfo.value.code == "sn_invalid"
    with pytest.raises(DomainError) as short:
        usb_key_create(sn="551111111111", so_pin="123")
    assert short.value.code == "pin_invalid" and "123" not in short.value.message


def test_take_from_stock_issues_the_oldest_key(db: None) -> None:
    first = usb_key_create(sn="551000000001", so_pin=SO_PIN)
    usb_key_create(sn="111000000002", so_pin=SO_PIN)

    taken = usb_key_take_from_stock(owner_uscc=USCC, actor="issuer-1")

    assert taken.pk == first.pk
    assert (taken.status, taken.owner_uscc) == (UsbKeyStatus.ISSUED, USCC)
    assert taken.issued_at is not None
    assert usb_key_take_from_stock(owner_uscc=USCC, model="EZCA-K11").sn == "111000000002"
    with pytest.raises(DomainError) as empty:
        usb_key_take_from_stock(owner_uscc=USCC)
    assert empty.value.code == "out_of_stock"
    with pytest.raises(DomainError):
        usb_key_take_from_stock(owner_uscc="91500000000000000")  # the manual's sample: 17 characters
    assert list(usb_keys_of_owner(owner_uscc=USCC).values_list("sn", flat=True)) == ["111000000002", "551000000001"]


@pytest.mark.django_db(transaction=True)
def test_two_issuers_never_take_the_same_key() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks (SELECT … FOR UPDATE SKIP LOCKED) need PostgreSQL; SQLite serialises writers anyway")
    for n in range(12):
        usb_key_create(sn=f"5510000000{n:02d}", so_pin=SO_PIN)
    workers = 8
    barrier = threading.Barrier(workers)
    taken: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def issuer() -> None:
        try:
            barrier.wait()
            key = usb_key_take_from_stock(owner_uscc=USCC)
            with lock:
                taken.append(key.sn)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=issuer) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(taken) == workers and len(set(taken)) == workers
    assert usb_keys_in_stock_count() == 12 - workers
    assert UsbKey.objects.filter(status=UsbKeyStatus.ISSUED).count() == workers


def test_status_changes_follow_the_rules(issued_key: UsbKey) -> None:
    locked = usb_key_mark_locked(key=issued_key, actor="support")
    assert locked.status == UsbKeyStatus.LOCKED
    with pytest.raises(InvalidTransition, match="已锁定"):
        usb_key_mark_issued(key=locked, owner_uscc=USCC)
    lost = usb_key_mark_lost(key=locked)
    assert lost.status == UsbKeyStatus.LOST
    with pytest.raises(InvalidTransition):
        usb_key_mark_locked(key=lost)
    retired = usb_key_mark_retired(key=lost)
    assert retired.status == UsbKeyStatus.RETIRED
    with pytest.raises(InvalidTransition):
        usb_key_mark_retired(key=retired)
    assert list(
        AuditRecord.objects.filter(object_id=issued_key.sn).order_by("seq").values_list("action", flat=True)
    ) == [
        "usb_key.created",
        "usb_key.marked_issued",
        "usb_key.marked_locked",
        "usb_key.marked_lost",
        "usb_key.marked_retired",
    ]


def test_the_so_pin_is_released_once_and_replaced(issued_key: UsbKey, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    usb_key_mark_locked(key=issued_key)
    fresh = so_pin_generate()
    assert len(fresh) == 16 and fresh != so_pin_generate()

    released = usb_key_so_pin_release_once(key=issued_key, fresh_so_pin=fresh, actor="unlock-order-1")

    assert released == SO_PIN
    raw = _raw_column(issued_key.sn, "so_pin_sealed")
    assert unseal(raw) == fresh and fresh not in raw and SO_PIN not in raw
    with pytest.raises(DomainError) as again:
        usb_key_so_pin_release_once(key=issued_key, fresh_so_pin=so_pin_generate())
    assert again.value.code == "so_pin_already_released"
    assert unseal(_raw_column(issued_key.sn, "so_pin_sealed")) == fresh  # the refused call changed nothing

    confirmed = usb_key_so_pin_confirm(key=issued_key, actor="agent")
    assert confirmed.status == UsbKeyStatus.ISSUED and confirmed.so_pin_released_at is None
    with pytest.raises(DomainError):
        usb_key_so_pin_confirm(key=issued_key)
    # The next unlock releases the PIN the key got last time, never the old one.
    assert usb_key_so_pin_release_once(key=issued_key, fresh_so_pin=so_pin_generate()) == fresh

    audit_text = str(list(AuditRecord.objects.values_list("data", flat=True)))
    for secret in (SO_PIN, fresh):
        assert secret not in caplog.text and secret not in audit_text


def test_the_so_pin_release_refuses_keys_not_out_with_a_customer(db: None) -> None:
    key = usb_key_create(sn="551234567890", so_pin=SO_PIN)
    with pytest.raises(InvalidTransition):
        usb_key_so_pin_release_once(key=key, fresh_so_pin=so_pin_generate())
    issued = usb_key_mark_issued(key=key, owner_uscc=USCC)
    with pytest.raises(DomainError, match="必须与当前的不同"):
        usb_key_so_pin_release_once(key=issued, fresh_so_pin=SO_PIN)
    with pytest.raises(DomainError):
        usb_key_so_pin_release_once(key=issued, fresh_so_pin="short")
    assert unseal(_raw_column(key.sn, "so_pin_sealed")) == SO_PIN


def test_initial_user_pin_is_revealed_with_an_audit_record(issued_key: UsbKey) -> None:
    assert usb_key_initial_user_pin_reveal(key=issued_key, actor="station-1") == "12345678"
    assert AuditRecord.objects.filter(action="usb_key.initial_user_pin_revealed", actor="station-1").exists()


def test_certificates_on_a_key(issued_key: UsbKey) -> None:
    not_after = timezone.now() + datetime.timedelta(days=365)
    usb_key_certificate_add(key=issued_key, serial_hex="0x7A3F00AA", role="sign", not_after=not_after)
    usb_key_certificate_add(key=issued_key, serial_hex="7a3f00aa", role="sign", not_after=not_after)  # idempotent
    usb_key_certificate_add(key=issued_key, serial_hex="01", role="enc", not_after=not_after)
    assert sorted(issued_key.certificates.values_list("serial_hex", "role")) == [("01", "enc"), ("7a3f00aa", "sign")]
    with pytest.raises(DomainError):
        usb_key_certificate_add(key=issued_key, serial_hex="xyz", role="sign", not_after=not_after)
    with pytest.raises(DomainError):
        usb_key_certificate_add(key=issued_key, serial_hex="02", role="auth", not_after=not_after)
    usb_key_certificate_remove(key=issued_key, serial_hex="7A3F00AA")
    assert list(issued_key.certificates.values_list("serial_hex", flat=True)) == ["01"]
    assert usb_key_get(sn=" 551234567890 ") == issued_key


def test_the_admin_never_shows_the_pins(issued_key: UsbKey, admin_user: object, staff_client_for: Any) -> None:
    from django.urls import reverse

    # The admin asks for the TOTP step too: sign in as a verified superuser.
    admin_client = staff_client_for(admin_user)
    for url in (
        reverse("admin:tokens_usbkey_changelist"),
        reverse("admin:tokens_usbkey_change", args=[issued_key.pk]),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        content = response.content.decode()
        assert issued_key.sn in content
        assert SO_PIN not in content and "sealed:" not in content and "so_pin" not in content
    assert admin_client.get(reverse("admin:tokens_usbkey_add")).status_code == 403
