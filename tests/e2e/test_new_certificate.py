"""A newcomer, in a real browser: register with the code from the demo inbox,
walk the catalogue, fill in 证书新办, upload, submit; a reviewer approves."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from certdesk.accounts.models import User
from certdesk.accounts.roles import ROLE_REVIEWER, staff_roles_ensure
from certdesk.catalog.services import catalog_load_demo
from certdesk.orders.models import Order, OrderStatus

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
MOBILE = "13712345678"
PASSWORD = "E2e-Newcomer-2026"


def _scan(tmp_path: Path, name: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), "white").save(buffer, format="JPEG")
    path = tmp_path / f"{name}.jpg"
    path.write_bytes(buffer.getvalue())
    return str(path)


def _code_from_inbox(page: object, base: str, mobile: str) -> str:
    page.goto(f"{base}/demo/inbox/?to={mobile}")  # type: ignore[attr-defined]
    text = page.locator(".inbox .msg").first.inner_text()  # type: ignore[attr-defined]
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    return match.group(1)


def test_newcomer_applies_and_reviewer_approves(
    page: object, live_server: object, shot: Callable[[str], None], tmp_path: Path
) -> None:
    catalog_load_demo()
    base = live_server.url  # type: ignore[attr-defined]
    p = page  # the Playwright page; typed loosely to keep the suite free of playwright stubs

    p.goto(base + "/")  # type: ignore[attr-defined]
    for tile in ["证书新办", "证书更新", "证书变更", "证书补办", "在线解锁", "证书注销", "改派"]:
        assert p.get_by_text(tile, exact=True).count() == 1  # type: ignore[attr-defined]
    shot("01-home")

    # 注册: the code comes from the demo inbox.
    p.click("text=注册")  # type: ignore[attr-defined]
    p.fill("input[name=mobile]", MOBILE)  # type: ignore[attr-defined]
    p.click("button[value=send_code]")  # type: ignore[attr-defined]
    assert p.get_by_text("验证码已发送").count() == 1  # type: ignore[attr-defined]
    register_url = p.url  # type: ignore[attr-defined]
    code = _code_from_inbox(p, base, MOBILE)
    shot("02-demo-inbox")
    p.goto(register_url)  # type: ignore[attr-defined]
    p.fill("input[name=mobile]", MOBILE)  # type: ignore[attr-defined]
    p.fill("input[name=code]", code)  # type: ignore[attr-defined]
    p.fill("input[name=password1]", PASSWORD)  # type: ignore[attr-defined]
    p.fill("input[name=password2]", PASSWORD)  # type: ignore[attr-defined]
    p.click("button[value=register]")  # type: ignore[attr-defined]
    assert p.get_by_text("注册成功").count() == 1  # type: ignore[attr-defined]

    # 项目选择 with htmx: each choice fills the next select.
    p.click(".tile-new a")  # type: ignore[attr-defined]
    p.select_option("select[name=region]", label="重庆")  # type: ignore[attr-defined]
    p.select_option("select[name=industry]", label="公共资源交易")  # type: ignore[attr-defined]
    p.select_option("select[name=category]", label="公共资源项目")  # type: ignore[attr-defined]
    p.select_option("select[name=sub_project]", label="重庆市公共资源交易中心")  # type: ignore[attr-defined]
    p.select_option("select[name=certificate_type]", label="机构证书（签名+加密）")  # type: ignore[attr-defined]
    p.select_option("select[name=years]", label="2 年")  # type: ignore[attr-defined]
    assert p.get_by_text("300.00 元/年").count() == 1  # type: ignore[attr-defined]
    p.locator("button:has-text('下一步'):enabled").wait_for()  # type: ignore[attr-defined]
    shot("03-project-select")
    p.click("button:has-text('下一步')")  # type: ignore[attr-defined]

    # 录入信息: a wrong USCC is refused at its field and the rest is kept.
    fields = {
        "cert_org_name": "重庆东方测试有限公司",
        "cert_uscc": "91500000000000000",
        "legal_rep_name": "张三",
        "legal_rep_id_number": "360426199101010071",
        "legal_rep_mobile": "13500000000",
        "invoice_title": "重庆东方测试有限公司",
        "invoice_taxpayer_id": "91110000600037341L",
        "invoice_email": "invoice@example.com",
        "agent_name": "李四",
        "agent_id_number": "11010519491231002X",
        "agent_mobile": "13600000000",
        "agent_email": "agent@example.com",
    }
    for name, value in fields.items():
        p.fill(f"input[name={name}]", value)  # type: ignore[attr-defined]
    p.check("input[name=org_same_as_cert]")  # type: ignore[attr-defined]
    p.check("input[name=invoice_type][value=normal]")  # type: ignore[attr-defined]
    p.check("input[name=delivery_method][value=pickup]")  # type: ignore[attr-defined]
    p.click("button[value=next]")  # type: ignore[attr-defined]
    assert p.get_by_text("统一社会信用代码应为18位").count() >= 1  # type: ignore[attr-defined]
    assert p.input_value("input[name=agent_name]") == "李四"  # type: ignore[attr-defined]
    shot("04-info-error")
    p.fill("input[name=cert_uscc]", "91110000600037341L")  # type: ignore[attr-defined]
    p.click("button[value=next]")  # type: ignore[attr-defined]

    # 打印申请表 and the agreement.
    assert p.get_by_text("打印数字证书申请表（PDF）").count() == 1  # type: ignore[attr-defined]
    p.check("input[name=agreement]")  # type: ignore[attr-defined]
    p.click("button:has-text('下一步')")  # type: ignore[attr-defined]

    # 上传资料: each slot by PC upload (htmx swaps the slot).
    for slot in p.locator(".slot").all():  # type: ignore[attr-defined]
        kind = slot.get_attribute("id").removeprefix("slot-")
        slot.locator("input[type=file]").set_input_files(_scan(tmp_path, kind))
        slot.locator("button[type=submit]").click()
        p.locator(f"#slot-{kind}.filled").wait_for()  # type: ignore[attr-defined]
    shot("05-uploads")
    p.click("a:has-text('下一步')")  # type: ignore[attr-defined]
    p.click("button:has-text('提交')")  # type: ignore[attr-defined]
    assert p.get_by_text("1个工作日").count() >= 1  # type: ignore[attr-defined]
    order = Order.objects.get(owner__mobile=MOBILE)
    assert order.status == OrderStatus.SUBMITTED
    shot("06-submitted")

    # A reviewer signs in with password and TOTP and approves.
    staff_roles_ensure()
    from django.contrib.auth.models import Group

    reviewer = User.objects.create_user(mobile="13900139001", password="Demo-Reviewer-2026", is_staff=True)
    reviewer.groups.add(Group.objects.get(name=ROLE_REVIEWER))
    p.context.clear_cookies()  # type: ignore[attr-defined]
    p.goto(base + "/staff/login/")  # type: ignore[attr-defined]
    p.fill("input[name=mobile]", reviewer.mobile)  # type: ignore[attr-defined]
    p.fill("input[name=password]", "Demo-Reviewer-2026")  # type: ignore[attr-defined]
    p.click("button:has-text('登录')")  # type: ignore[attr-defined]
    demo_code = p.locator(".demo-note strong").inner_text()  # type: ignore[attr-defined]
    p.fill("input[name=token]", demo_code)  # type: ignore[attr-defined]
    p.click("button:has-text('验证')")  # type: ignore[attr-defined]
    p.goto(base + "/staff/review/")  # type: ignore[attr-defined]
    p.click(f"text={order.number}")  # type: ignore[attr-defined]
    shot("07-review")
    p.click("button:has-text('审核通过')")  # type: ignore[attr-defined]
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT
