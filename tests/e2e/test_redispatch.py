"""改派 in the browser: an order in 已发货 is re-shipped to a new address; the original
order completes, the 改派 order is shipped and received."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import steps
from tests.e2e.preconditions import PASSWORD, customer_create, customer_with_key
from tests.e2e.support import Agent, Shot, Staff

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
MOBILE = "13712340021"
SN = "5500000501"


def test_a_shipped_order_is_redispatched_to_a_new_address(
    open_page: Callable[[], Page],
    catalog: None,
    ca: Any,
    agent: Agent,
    staff: Callable[[str], Staff],
    shot: Shot,
    tmp_path: Path,
) -> None:
    reviewer, issuer = staff("reviewer"), staff("issuer")
    owner = customer_create(MOBILE)
    original = customer_with_key(
        owner=owner, reviewer=reviewer.user, issuer=issuer.user, agent=agent, sn=SN, received=False
    ).order
    new_address = "重庆市江北区新地址路88号"

    customer = open_page()
    steps.customer_login(customer, MOBILE, PASSWORD)
    steps.open_order(customer, original.number, "已发货")
    customer.goto("/")
    customer.click(".tile-redispatch a")
    choice = customer.locator("label.check", has_text=original.number)
    expect(choice).to_contain_text("已发货")
    choice.locator("input[name=original]").check()
    customer.click("main button:has-text('下一步')")
    expect(customer.locator("main h1")).to_have_text("录入信息")
    expect(customer.locator("input[name=shipping_address]")).to_have_value("重庆市渝中区测试路1号")
    customer.fill("input[name=shipping_address]", new_address)
    shot(customer, "redispatch-01-info")
    steps.info_next(customer)
    steps.print_and_agree(customer)
    assert steps.upload_all(customer, tmp_path) == ["情况说明", "经办人身份证"]
    number = steps.submit(customer)

    reviewer_page = open_page()
    steps.staff_login(reviewer_page, reviewer)
    steps.review_approve(reviewer_page, number)

    # The key now travels under the 改派 order: the original completes, the new one waits to ship.
    steps.open_order(customer, original.number, "完成")
    expect(customer.locator("ol.timeline")).to_contain_text(f"已改派 → 完成 — 由改派订单 {number} 重新发货")
    steps.open_order(customer, number, "待发货")

    issuer_page = open_page()
    steps.staff_login(issuer_page, issuer)
    issuer_page.goto("/staff/fulfilment/")
    expect(issuer_page.locator("tr", has_text=number)).to_contain_text(new_address)
    tracking_no = "SF3000000501"
    steps.ship(issuer_page, number, tracking_no)
    steps.demo_inbox_has(customer, MOBILE, f"改派订单{number}的证书已由顺丰速运寄出，运单号{tracking_no}")
    steps.confirm_receipt(customer, number, tracking_no)
    expect(customer.locator("main dl.facts")).to_contain_text(new_address)
    shot(customer, "redispatch-02-completed")
