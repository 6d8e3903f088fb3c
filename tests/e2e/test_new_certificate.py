"""证书新办 to 完成, in a real browser: a newcomer registers with the code from the demo
inbox, walks the catalogue and the wizard, a reviewer approves, the customer pays in
the sandbox, the issuer's station writes a blank key with the agent and ships it, the
customer confirms receipt."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from certdesk.orders.models import Order, OrderStatus
from certdesk.tokens.models import UsbKey, UsbKeyStatus
from tests.e2e import steps
from tests.e2e.preconditions import ORG, STOCK_USER_PIN, USCC, blank_key_in_stock
from tests.e2e.support import Agent, Shot, Staff

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
MOBILE = "13712345678"
PASSWORD = "E2e-Newcomer-2026"
STATION_SN = "5500000101"
TRACKING = "SF1234567890"


def _register(page: Page, shot: Shot) -> None:
    page.goto("/")
    for tile in ["证书新办", "证书更新", "证书变更", "证书补办", "在线解锁", "证书注销", "改派"]:
        expect(page.locator(".tiles").get_by_text(tile, exact=True)).to_have_count(1)
    shot(page, "new-01-home", docs=True)

    page.click("header >> text=注册")
    page.fill("input[name=mobile]", MOBILE)
    page.click("button[value=send_code]")
    expect(page.get_by_text("验证码已发送")).to_have_count(1)
    register_url = page.url
    # The SMS is in the demo inbox.
    page.goto(f"/demo/inbox/?to={MOBILE}")
    text = page.locator(".inbox .msg").first.inner_text()
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    shot(page, "new-02-demo-inbox")
    page.goto(register_url)
    page.fill("input[name=mobile]", MOBILE)
    page.fill("input[name=code]", match.group(1))
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("button[value=register]")
    expect(page.get_by_text("注册成功")).to_have_count(1)
    expect(page.locator("header .who")).to_have_text(MOBILE)


def _apply(page: Page, shot: Shot, tmp_path: Path) -> str:
    # 项目选择 with htmx: each choice fills the next select.
    page.click(".tile-new a")
    page.select_option("select[name=region]", label="重庆")
    page.select_option("select[name=industry]", label="公共资源交易")
    page.select_option("select[name=category]", label="公共资源项目")
    page.select_option("select[name=sub_project]", label="重庆市公共资源交易中心")
    page.select_option("select[name=certificate_type]", label="机构证书（签名+加密）")
    page.select_option("select[name=years]", label="2 年")
    expect(page.get_by_text("300.00 元/年")).to_have_count(1)
    page.locator("button:has-text('下一步'):enabled").wait_for()
    shot(page, "new-03-project-select")
    page.click("button:has-text('下一步')")
    expect(page.locator("main h1")).to_have_text("录入信息")

    # 录入信息: the manual's sample USCC is refused at its field, the rest is kept.
    steps.fill_fields(
        page,
        {
            "cert_org_name": ORG,
            "cert_uscc": "91500000000000000",
            "legal_rep_name": "张三",
            "legal_rep_id_number": "360426199101010071",
            "legal_rep_mobile": "13500000000",
            "invoice_title": ORG,
            "invoice_taxpayer_id": USCC,
            "invoice_email": "invoice@example.com",
            "agent_name": "李四",
            "agent_id_number": "11010519491231002X",
            "agent_mobile": "13600000000",
            "agent_email": "agent@example.com",
        },
    )
    page.check("input[name=org_same_as_cert]")
    page.check("input[name=invoice_type][value=normal]")
    page.check("input[name=delivery_method][value=mail]")
    steps.fill_fields(
        page, {"recipient_name": "李四", "recipient_phone": "13600000000", "shipping_address": "重庆市渝中区测试路1号"}
    )
    page.click("button[value=next]")
    uscc_field = page.locator("label.field.has-error", has=page.locator("input[name=cert_uscc]"))
    expect(uscc_field.locator(".errorlist")).to_contain_text("统一社会信用代码应为18位")
    expect(page.locator("input[name=agent_name]")).to_have_value("李四")
    shot(page, "new-04-info-error", docs=True)
    page.fill("input[name=cert_uscc]", USCC)
    steps.info_next(page)

    steps.print_and_agree(page)
    slots = steps.upload_all(page, tmp_path, unhurried_first=True)
    assert slots == [
        "数字证书申请表",
        "签章取样表",
        "工商营业执照/事业单位法人证书/统一社会信用代码证",
        "法人代表身份证",
        "经办人身份证",
    ]
    shot(page, "new-05-uploads", docs=True)
    number = steps.submit(page)
    shot(page, "new-06-submitted")
    return number


def test_newcomer_gets_a_certificate_new_to_completed(
    open_page: Callable[[], Page],
    shot: Shot,
    tmp_path: Path,
    catalog: None,
    ca: Any,
    agent: Agent,
    staff: Callable[[str], Staff],
) -> None:
    customer = open_page()
    _register(customer, shot)
    number = _apply(customer, shot, tmp_path)
    steps.demo_inbox_has(customer, MOBILE, f"证书新办订单{number}已提交")

    # 审核: a reviewer signs in with password and TOTP and approves.
    reviewer = open_page()
    steps.staff_login(reviewer, staff("reviewer"))
    steps.review_approve(reviewer, number, shot=shot, shot_name="new-07-review")

    # 付款: the SMS says how much; the sandbox "wallet" pays; the page updates by itself.
    steps.demo_inbox_has(customer, MOBILE, "应付金额700.00元")
    steps.pay_in_sandbox(customer, number, "700.00", shot=shot, shot_name="new-08-pay")
    shot(customer, "new-09-paid")
    steps.open_order(customer, number, "已付款")

    # 制证: the issuer's station gets a pairing code; the agent writes a blank key from stock.
    issuer = open_page()
    steps.staff_login(issuer, staff("issuer"))
    code = steps.station_pairing_code(issuer, number, shot=shot, shot_name="new-10-station")
    blank_key_in_stock(STATION_SN)
    out = agent.ok("enroll", "--code", code, "--pin", STOCK_USER_PIN)
    assert "签名证书已写入 USB Key" in out and "加密证书已写入 USB Key" in out, out
    assert "订单状态：待发货" in out, out
    keys = agent.ok("keys")
    assert STATION_SN in keys and ORG in keys, keys
    steps.open_order(customer, number, "待发货")

    # 发货 with a tracking number; the customer sees 已发货 and confirms receipt.
    steps.ship(issuer, number, TRACKING)
    steps.demo_inbox_has(customer, MOBILE, f"运单号{TRACKING}")
    steps.confirm_receipt(customer, number, TRACKING)
    expect(customer.locator("ol.timeline")).to_contain_text("确认收货 → 完成")
    shot(customer, "new-11-completed", docs=True)
    steps.messages_have(customer, "业务已办结", number)
    shot(customer, "new-12-messages")

    order = Order.objects.get(number=number)
    assert (order.status, order.key_sn) == (OrderStatus.COMPLETED, STATION_SN)
    inventory = UsbKey.objects.get(sn=STATION_SN)
    assert (inventory.status, inventory.owner_uscc) == (UsbKeyStatus.ISSUED, USCC)
