"""在线解锁 in the browser: a 55 key locked by wrong PINs is reset online with the agent;
an 11 key cannot be, and goes to 远程协助, which support completes in the browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from certdesk_agent.drivers.pkcs11 import Pkcs11Driver
from certdesk_agent.errors import KeyLocked, WrongPin
from playwright.sync_api import Page, expect

from certdesk.tokens.models import UsbKey, UsbKeyStatus
from tests.agent.softhsm import SOFTHSM_MODULE
from tests.e2e import steps
from tests.e2e.preconditions import PASSWORD, USCC, customer_create, customer_with_key
from tests.e2e.support import Agent, Shot, Staff

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
NEW_PIN = "Neu-PIN-2026"


def _apply_for_unlock(customer: Page, sn: str, tmp_path: Path, *, qq: str = "") -> str:
    steps.start_from_key(customer, "unlock", key_sn=sn, uscc=USCC)
    if qq:
        # An 11 key is unlocked by support over QQ: the QQ number is required.
        customer.click("button[value=next]")
        qq_field = customer.locator("label.field.has-error", has=customer.locator("input[name=agent_qq]"))
        expect(qq_field.locator(".errorlist")).to_have_text("请填写QQ号。")
        customer.fill("input[name=agent_qq]", qq)
    steps.info_next(customer)
    steps.print_and_agree(customer)
    assert steps.upload_all(customer, tmp_path) == ["数字证书申请表", "经办人身份证"]
    return steps.submit(customer)


def test_a_locked_55_key_is_unlocked_online(
    open_page: Callable[[], Page],
    catalog: None,
    ca: Any,
    agent: Agent,
    staff: Callable[[str], Staff],
    shot: Shot,
    tmp_path: Path,
) -> None:
    mobile, sn = "13712340011", "5500000301"
    reviewer = staff("reviewer")
    owner = customer_create(mobile)
    customer_with_key(owner=owner, reviewer=reviewer.user, issuer=staff("issuer").user, agent=agent, sn=sn)
    # The PIN forgotten: wrong PINs through the agent's key driver until the key locks.
    driver = Pkcs11Driver(module=SOFTHSM_MODULE, sn_from="label")
    for left in range(5, 0, -1):
        with pytest.raises(WrongPin) as wrong:
            driver.verify_pin(sn, pin="wrong-pin-1")
        assert wrong.value.tries_left == left
    with pytest.raises(KeyLocked):
        driver.verify_pin(sn, pin="wrong-pin-1")
    assert "已锁定" in agent.ok("keys")

    customer = open_page()
    steps.customer_login(customer, mobile, PASSWORD)
    number = _apply_for_unlock(customer, sn, tmp_path)
    reviewer_page = open_page()
    steps.staff_login(reviewer_page, reviewer)
    steps.review_approve(reviewer_page, number)

    # Free, so straight to 待解锁; the customer is told to unlock online.
    steps.demo_inbox_has(customer, mobile, f"在线解锁订单{number}已审核通过，请插入UKey")
    steps.open_order(customer, number, "待解锁")
    code = steps.key_pairing_code(customer, "解锁", "unlock")
    expect(customer.locator("main h1")).to_contain_text("在线解锁")
    shot(customer, "unlock-01-pairing")
    out = agent.ok("unlock", "--code", code, "--new-pin", NEW_PIN)
    assert "解锁成功" in out, out

    steps.open_order(customer, number, "完成")
    shot(customer, "unlock-02-completed")
    keys = agent.ok("keys")
    assert "已锁定" not in keys and "正常（剩余 6/6 次）" in keys, keys
    driver.verify_pin(sn, pin=NEW_PIN)  # the new PIN opens the key
    assert UsbKey.objects.get(sn=sn).status == UsbKeyStatus.ISSUED


def test_an_11_key_goes_to_remote_assistance_and_support_completes_it(
    open_page: Callable[[], Page],
    catalog: None,
    ca: Any,
    agent: Agent,
    staff: Callable[[str], Staff],
    shot: Shot,
    tmp_path: Path,
) -> None:
    mobile, sn, qq = "13712340012", "1100000401", "123456789"
    reviewer = staff("reviewer")
    owner = customer_create(mobile)
    customer_with_key(owner=owner, reviewer=reviewer.user, issuer=staff("issuer").user, agent=agent, sn=sn)

    customer = open_page()
    steps.customer_login(customer, mobile, PASSWORD)
    number = _apply_for_unlock(customer, sn, tmp_path, qq=qq)
    reviewer_page = open_page()
    steps.staff_login(reviewer_page, reviewer)
    steps.review_approve(reviewer_page, number)

    steps.open_order(customer, number, "远程协助")
    expect(customer.get_by_role("link", name="解锁", exact=True)).to_have_count(0)  # not online
    steps.demo_inbox_has(customer, mobile, "需由技术支持人员远程协助解锁")

    support = open_page()
    steps.staff_login(support, staff("support"))
    support.goto("/staff/support/")
    row = support.locator("tr", has_text=number)
    expect(row).to_contain_text(qq)
    expect(row).to_contain_text(sn)
    shot(support, "unlock-03-support")
    note = "已通过QQ远程协助重置PIN码"
    row.locator("input[name=note]").fill(note)
    row.get_by_role("button", name="完成").click()
    expect(support.locator(".messages")).to_contain_text(f"订单 {number} 远程协助已完成。")
    expect(support.locator("tr", has_text=number)).to_have_count(0)

    steps.open_order(customer, number, "完成")
    expect(customer.locator("ol.timeline")).to_contain_text(f"远程协助完成 → 完成 — {note}")
    steps.messages_have(customer, "业务已办结", number)
