"""Keys present, user PIN with the emulated retry counter, SO unlock — on real SoftHSM tokens."""

from __future__ import annotations

from collections.abc import Callable

import pkcs11
import pytest
from certdesk_agent.drivers import _cryptoki
from certdesk_agent.drivers.pkcs11 import Pkcs11Driver
from certdesk_agent.errors import (
    AdminPinRejected,
    DriverUnavailable,
    KeyLocked,
    KeyNotFound,
    MultipleKeysPresent,
    NoKeyPresent,
    PinPolicyError,
    WrongPin,
)
from certdesk_agent.retries import RETRY_COUNTER_LABEL, RetryState, retry_counter_read, retry_counter_write
from pkcs11 import Attribute, ObjectClass

from tests.agent.softhsm import SOFTHSM_MODULE, EmulatedKey, TokenDir

NEW_USER_PIN = "87654321"
FRESH_SO_PIN = "fresh-so-pin-1111"


def _token(sn: str) -> pkcs11.Token:
    return pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=sn)


def _counter(sn: str) -> RetryState | None:
    with _token(sn).open() as session:
        return retry_counter_read(session)


def _lock(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    for _ in range(key.max_retries - 1):
        with pytest.raises(WrongPin):
            driver.verify_pin(key.sn, pin="00000000")
    with pytest.raises(KeyLocked):
        driver.verify_pin(key.sn, pin="00000000")


# ---- keys present ------------------------------------------------------------------------------


def test_lists_the_keys_present_with_model_and_tries(driver: Pkcs11Driver, new_key: Callable[..., EmulatedKey]) -> None:
    new_key("551000000001")
    new_key("111000000002", max_retries=3)

    keys = driver.list_keys()

    assert [(k.sn, k.model, k.locked, k.retries_left, k.retries_max) for k in keys] == [
        ("111000000002", "EZCA-K11", False, 3, 3),
        ("551000000001", "EZCA-K55", False, 6, 6),
    ]
    assert all(k.driver == "pkcs11" and k.certificates == () for k in keys)


def test_no_key_one_key_and_many_keys(driver: Pkcs11Driver, new_key: Callable[..., EmulatedKey]) -> None:
    assert driver.list_keys() == []
    with pytest.raises(NoKeyPresent, match="未检测到 USB Key"):
        driver.resolve_sn(None)
    with pytest.raises(NoKeyPresent):
        driver.verify_pin("551000000001", pin="12345678")

    new_key("551000000001")
    assert driver.resolve_sn(None) == "551000000001"
    with pytest.raises(KeyNotFound, match="561000000009") as excinfo:
        driver.verify_pin("561000000009", pin="12345678")
    assert excinfo.value.sn == "561000000009"

    new_key("561000000002")
    with pytest.raises(MultipleKeysPresent) as many:
        driver.resolve_sn(None)
    assert many.value.sns == ["551000000001", "561000000002"]


def test_sn_from_the_token_serial(token_dir: TokenDir, key: EmulatedKey) -> None:
    driver = Pkcs11Driver(module=SOFTHSM_MODULE, sn_from="serial")
    assert [k.sn for k in driver.list_keys()] == [key.serial]


def test_a_module_that_cannot_be_loaded_is_a_clear_error(token_dir: TokenDir) -> None:
    driver = Pkcs11Driver(module="/nonexistent/libvendor-pkcs11.so")
    with pytest.raises(DriverUnavailable, match="CERTDESK_AGENT_PKCS11_MODULE"):
        driver.list_keys()


# ---- the user PIN and the emulated counter ---------------------------------------------------------


def test_wrong_pins_count_down_and_the_right_one_gives_the_tries_back(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    for expected in (5, 4):
        with pytest.raises(WrongPin, match=f"还可以尝试 {expected} 次") as excinfo:
            driver.verify_pin(key.sn, pin="00000000")
        assert excinfo.value.tries_left == expected
    assert _counter(key.sn) == RetryState(max=6, left=4)
    assert driver.get_key(key.sn).retries_left == 4

    driver.verify_pin(key.sn, pin=key.user_pin)

    assert _counter(key.sn) == RetryState(max=6, left=6)


def test_n_wrong_pins_lock_the_key_and_then_the_right_pin_is_refused(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    for left in range(5, 0, -1):
        with pytest.raises(WrongPin) as excinfo:
            driver.verify_pin(key.sn, pin="00000000")
        assert excinfo.value.tries_left == left
    with pytest.raises(KeyLocked, match="已锁定") as locked:
        driver.verify_pin(key.sn, pin="00000000")
    assert locked.value.just_now

    listed = driver.get_key(key.sn)
    assert listed.locked and listed.retries_left == 0
    with pytest.raises(KeyLocked) as again:
        driver.verify_pin(key.sn, pin=key.user_pin)
    assert not again.value.just_now
    assert _counter(key.sn) == RetryState(max=6, left=0)  # the right PIN did not reset it


def test_the_counter_is_public_data_readable_before_login(key: EmulatedKey) -> None:
    with _token(key.sn).open() as session:
        (obj,) = session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: RETRY_COUNTER_LABEL})
        assert obj[Attribute.PRIVATE] is False
        assert bytes(obj[Attribute.VALUE]) == b"6,6"


def test_an_interrupted_counter_write_never_grants_more_tries(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    # A write creates the new object before destroying the old one; if the process died in
    # between, both remain. The reader takes the smaller count, the next write cleans up.
    with _token(key.sn).open(rw=True) as session:
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.DATA,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.LABEL: RETRY_COUNTER_LABEL,
                Attribute.VALUE: b"6,2",
            }
        )
    assert _counter(key.sn) == RetryState(max=6, left=2)
    assert driver.get_key(key.sn).retries_left == 2

    driver.verify_pin(key.sn, pin=key.user_pin)

    with _token(key.sn).open() as session:
        objects = session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: RETRY_COUNTER_LABEL})
        values = [bytes(o[Attribute.VALUE]) for o in objects]
    assert values == [b"6,6"]


def test_an_unreadable_counter_counts_as_locked(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    with _token(key.sn).open(rw=True) as session:
        retry_counter_write(session, RetryState(max=6, left=6))
        (obj,) = session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: RETRY_COUNTER_LABEL})
        obj.destroy()
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.DATA,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.LABEL: RETRY_COUNTER_LABEL,
                Attribute.VALUE: b"garbage",
            }
        )
    with pytest.raises(KeyLocked):
        driver.verify_pin(key.sn, pin=key.user_pin)


def test_a_key_without_the_counter_relies_on_the_module(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    # What a real key looks like to the driver: no emulated counter object.
    with _token(key.sn).open(rw=True) as session:
        for obj in list(session.get_objects({Attribute.LABEL: RETRY_COUNTER_LABEL})):
            obj.destroy()
    listed = driver.get_key(key.sn)
    assert (listed.locked, listed.retries_left, listed.retries_max) == (False, None, None)
    with pytest.raises(WrongPin) as excinfo:
        driver.verify_pin(key.sn, pin="00000000")
    assert excinfo.value.tries_left is None
    driver.verify_pin(key.sn, pin=key.user_pin)


def test_change_pin(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    with pytest.raises(PinPolicyError):
        driver.change_pin(key.sn, old_pin=key.user_pin, new_pin="123")
    driver.change_pin(key.sn, old_pin=key.user_pin, new_pin=NEW_USER_PIN)
    driver.verify_pin(key.sn, pin=NEW_USER_PIN)
    with pytest.raises(WrongPin):
        driver.verify_pin(key.sn, pin=key.user_pin)


# ---- SO unlock ---------------------------------------------------------------------------------------


def test_so_unlock_sets_the_new_user_pin_replaces_the_so_pin_and_resets_the_tries(
    driver: Pkcs11Driver, key: EmulatedKey
) -> None:
    _lock(driver, key)

    driver.unlock(key.sn, so_pin=key.so_pin, new_user_pin=NEW_USER_PIN, new_so_pin=FRESH_SO_PIN)

    listed = driver.get_key(key.sn)
    assert (listed.locked, listed.retries_left) == (False, 6)
    driver.verify_pin(key.sn, pin=NEW_USER_PIN)
    with pytest.raises(WrongPin):
        driver.verify_pin(key.sn, pin=key.user_pin)
    # The released SO PIN no longer works; the fresh one does.
    with pytest.raises(AdminPinRejected, match="管理员 PIN"):
        driver.unlock(key.sn, so_pin=key.so_pin, new_user_pin="11112222", new_so_pin="another-so-pin-22")
    driver.unlock(key.sn, so_pin=FRESH_SO_PIN, new_user_pin="11112222", new_so_pin="another-so-pin-22")
    driver.verify_pin(key.sn, pin="11112222")


def test_unlock_checks_the_new_pins_before_touching_the_key(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    with pytest.raises(PinPolicyError, match="6–16"):
        driver.unlock(key.sn, so_pin=key.so_pin, new_user_pin="123", new_so_pin=FRESH_SO_PIN)
    with pytest.raises(PinPolicyError):
        driver.unlock(key.sn, so_pin=key.so_pin, new_user_pin=NEW_USER_PIN, new_so_pin=key.so_pin)
    with pytest.raises(PinPolicyError):
        driver.unlock(key.sn, so_pin=key.so_pin, new_user_pin="1234 678", new_so_pin=FRESH_SO_PIN)
    driver.unlock(key.sn, so_pin=key.so_pin, new_user_pin=NEW_USER_PIN, new_so_pin=FRESH_SO_PIN)


def test_unlock_survives_a_session_left_open_by_a_failed_login(driver: Pkcs11Driver, key: EmulatedKey) -> None:
    # The python-pkcs11 pitfall: a failed login leaves a read-only session open, and an SO login
    # then fails with SessionReadOnlyExists. The driver closes the slot's sessions and retries.
    with pytest.raises(pkcs11.exceptions.PinIncorrect):
        _token(key.sn).open(user_pin="00000000")
    driver.unlock(key.sn, so_pin=key.so_pin, new_user_pin=NEW_USER_PIN, new_so_pin=FRESH_SO_PIN)
    driver.verify_pin(key.sn, pin=NEW_USER_PIN)


def test_without_close_all_sessions_the_driver_reinitialises_the_module(
    driver: Pkcs11Driver, key: EmulatedKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cryptoki, "close_all_sessions", lambda module, slot_id: None)
    with pytest.raises(WrongPin):
        driver.verify_pin(key.sn, pin="00000000")
    with pytest.raises(pkcs11.exceptions.PinIncorrect):
        _token(key.sn).open(user_pin="00000000")
    with pytest.raises(AdminPinRejected):
        driver.unlock(key.sn, so_pin="wrong-so-pin-00", new_user_pin=NEW_USER_PIN, new_so_pin=FRESH_SO_PIN)
    driver.unlock(key.sn, so_pin=key.so_pin, new_user_pin=NEW_USER_PIN, new_so_pin=FRESH_SO_PIN)
    driver.verify_pin(key.sn, pin=NEW_USER_PIN)
