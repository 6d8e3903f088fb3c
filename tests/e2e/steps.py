"""What a person does in the browser, one step at a time (shared by the e2e tests).

Every step waits for what the person would see next (text, a status label, an
element), never for a fixed time.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.support import Shot, Staff

# ---- signing in ----------------------------------------------------------------------------------


def customer_login(page: Page, mobile: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=mobile]", mobile)
    page.fill("input[name=password]", password)
    page.click("button[value=login]")
    expect(page.locator("header .who")).to_have_text(mobile)


def staff_login(page: Page, staff: Staff) -> None:
    """Password, then the TOTP code (shown on the page in demo mode)."""
    page.goto("/staff/login/")
    page.fill("input[name=mobile]", staff.mobile)
    page.fill("input[name=password]", staff.password)
    page.click("main button:has-text('登录')")
    code = page.locator(".demo-note strong").inner_text()
    assert re.fullmatch(r"\d{6}", code), code
    page.fill("input[name=token]", code)
    page.click("button:has-text('验证')")
    expect(page.locator("main h1")).to_have_text("工作台")


# ---- the customer's wizard -----------------------------------------------------------------------


def fill_fields(page: Page, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f"input[name={name}]", value)


def info_next(page: Page) -> None:
    """录入信息 → 打印申请表."""
    page.click("button[value=next]")
    expect(page.locator("main h1")).to_have_text("打印申请表")


def print_and_agree(page: Page) -> None:
    """打印申请表: the PDF link is there; accept the agreement → 上传资料."""
    expect(page.get_by_role("link", name="打印数字证书申请表（PDF）")).to_be_visible()
    page.check("input[name=agreement]")
    page.click("main button:has-text('下一步')")
    expect(page.locator("main h1")).to_have_text("上传资料")


CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")  # Debian fonts-wqy-microhei


def scan(tmp_path: Path, name: str, title: str = "") -> str:
    """A "scanned" page: a real JPEG made here, a sheet with a title, lines and a red seal."""
    from PIL import Image, ImageDraw, ImageFont

    path = tmp_path / f"{name}.jpg"
    if not path.exists():
        image = Image.new("RGB", (800, 600), "white")
        draw = ImageDraw.Draw(image)
        draw.rectangle((40, 40, 760, 560), outline="black", width=3)
        if title and CJK_FONT.exists():
            draw.text((400, 100), title, fill="black", anchor="mm", font=ImageFont.truetype(str(CJK_FONT), 36))
        for y in range(170, 480, 45):
            draw.line((90, y, 710, y), fill="gray", width=2)
        draw.ellipse((540, 380, 700, 540), outline="red", width=6)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
        path.write_bytes(buffer.getvalue())
    return str(path)


_COUNT_SLOT_POLLS = """kind => {
  window.slotPolls = 0;
  document.addEventListener("htmx:beforeRequest", event => {
    if (event.detail.elt.id === "slot-" + kind) { window.slotPolls += 1; }
  }, true);
}"""


def upload_all(page: Page, tmp_path: Path, *, unhurried_first: bool = False) -> list[str]:
    """上传资料: every slot from the PC (htmx swaps the slot in place). Returns the slot names.

    unhurried_first: for the first slot, the person chooses the file and clicks only after the
    slot's 4-second refresh came by; the chosen file must still be there."""
    names = []
    for index, slot in enumerate(page.locator(".slot").all()):
        kind = (slot.get_attribute("id") or "").removeprefix("slot-")
        title = slot.locator("h3").inner_text().lstrip("*")
        names.append(title)
        unhurried = unhurried_first and index == 0
        if unhurried:
            page.evaluate(_COUNT_SLOT_POLLS, kind)
        slot.locator("input[type=file]").set_input_files(scan(tmp_path, kind, title))
        if unhurried:
            page.wait_for_function("() => window.slotPolls >= 1")
        slot.locator("button[type=submit]").click()
        expect(page.locator(f"#slot-{kind}")).to_have_class(re.compile(r"\bfilled\b"))
        expect(page.locator(f"#slot-{kind} .ok")).to_contain_text("已上传（电脑")
    return names


def submit(page: Page) -> str:
    """上传资料 → 确认提交 → 提交; returns the order number (the order page opens)."""
    page.click("main a:has-text('下一步')")
    expect(page.locator("main h1")).to_have_text("确认提交")
    expect(page.get_by_text("资料已齐全")).to_be_visible()
    page.click("main button:has-text('提交')")
    expect(page.locator(".messages")).to_contain_text("审核一般在1个工作日内完成")
    match = re.search(r"/orders/([A-Z]{2}\d+)/$", page.url)
    assert match, page.url
    expect_status(page, "待审核")
    return match.group(1)


def expect_status(page: Page, label: str) -> None:
    """The status label on the order page the person is looking at."""
    expect(page.locator("main h1 .status")).to_have_text(label)


def open_order(page: Page, number: str, status: str | None = None) -> None:
    """订单查询 → the order (and its status, when given)."""
    page.goto("/orders/")
    row = page.locator("table.list tr", has_text=number)
    if status is not None:
        expect(row.locator(".status")).to_have_text(status)
    row.get_by_role("link", name=number).click()
    expect(page.locator("main h1")).to_contain_text(number)


def start_from_key(page: Page, business: str, *, key_sn: str, uscc: str, years: int | None = None) -> None:
    """证书更新/变更/补办/在线解锁/证书注销 from the home page tile: the key's SN and the USCC."""
    page.goto("/")
    page.click(f".tile-{business} a")
    expect(page.locator("main .crumbs")).to_contain_text("信息校验")
    page.fill("input[name=key_sn]", key_sn)
    page.fill("input[name=uscc]", uscc)
    if years is not None:
        page.select_option("select[name=years]", value=str(years))
    page.click("main button:has-text('下一步')")
    expect(page.locator("main h1")).to_have_text("录入信息")


# ---- staff ---------------------------------------------------------------------------------------


def review_approve(page: Page, number: str, *, shot: Shot | None = None, shot_name: str = "") -> None:
    """审核队列 → the order → 审核通过."""
    page.goto("/staff/review/")
    page.get_by_role("link", name=number).click()
    expect(page.locator("main h1")).to_contain_text(f"审核 {number}")
    expect(page.locator("main h1 .status")).to_have_text("待审核")
    if shot is not None:
        shot(page, shot_name, docs=True)
    page.click("button:has-text('审核通过')")
    expect(page.locator(".messages")).to_contain_text(f"订单 {number} 审核通过")
    expect(page.get_by_role("link", name=number)).to_have_count(0)  # gone from the queue


def station_pairing_code(page: Page, number: str, *, shot: Shot | None = None, shot_name: str = "") -> str:
    """制证与发货 → 写入USB Key → 获取配对码."""
    page.goto("/staff/fulfilment/")
    page.locator("tr", has_text=number).get_by_role("link", name="写入USB Key").click()
    expect(page.locator("main h1")).to_have_text("制证：写入 USB Key")
    page.click("button:has-text('获取配对码')")
    code = page.locator(".pairing-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code), code
    expect(page.locator("pre.cmd")).to_have_text(f"certdesk-agent enroll --code {code}")
    if shot is not None:
        shot(page, shot_name, docs=True)
    return code


def ship(page: Page, number: str, tracking_no: str) -> None:
    """制证与发货 → 待发货 → the tracking number → 发货."""
    page.goto("/staff/fulfilment/")
    row = page.locator("tr", has_text=number).filter(has=page.locator("input[name=tracking_no]"))
    row.locator("input[name=tracking_no]").fill(tracking_no)
    row.get_by_role("button", name="发货").click()
    expect(page.locator(".messages")).to_contain_text(f"订单 {number} 已发货：顺丰速运 {tracking_no}")


# ---- paying, receiving, messages -----------------------------------------------------------------


def pay_in_sandbox(page: Page, number: str, amount: str, *, shot: Shot | None = None, shot_name: str = "") -> None:
    """订单 → 付款 → 模拟支付: open the "scan" link in a second page, 确认支付 there; the pay
    page turns to 支付成功 by itself (htmx polling)."""
    open_order(page, number, "待付款")
    page.get_by_role("link", name="付款", exact=True).click()
    expect(page.locator("main h1")).to_have_text("款项支付")
    expect(page.locator(".amount")).to_have_text(f"¥{amount}")
    page.get_by_role("button", name="模拟支付（演示）").click()
    expect(page.locator("#pay-status")).to_have_attribute("data-status", "pending")
    expect(page.locator("#pay-status svg")).to_be_visible()  # the QR code
    if shot is not None:
        shot(page, shot_name, docs=True)
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="在本机打开模拟支付页").click()
    wallet = opened.value
    expect(wallet.locator("main h1")).to_contain_text("模拟支付")
    expect(wallet.locator("main")).to_contain_text(f"¥{amount}")
    wallet.get_by_role("button", name="确认支付").click()
    expect(wallet.locator(".messages")).to_contain_text("支付成功，已通知商户。")
    wallet.close()
    status = page.locator("#pay-status")
    expect(status).to_have_attribute("data-status", "paid")
    expect(status.locator("h2")).to_have_text("支付成功")
    expect(status).to_contain_text(f"订单 {number} 已付款 ¥{amount} 元")


def confirm_receipt(page: Page, number: str, tracking_no: str) -> None:
    """The customer sees 已发货 with the tracking number and clicks 确认收货 → 完成."""
    open_order(page, number, "已发货")
    expect_status(page, "已发货")
    expect(page.locator("main .ok")).to_contain_text(f"快递单号 {tracking_no}")
    page.get_by_role("button", name="确认收货").click()
    expect(page.locator(".messages")).to_contain_text("已确认收货，业务办理完成。")
    expect_status(page, "完成")


def demo_inbox_has(page: Page, mobile: str, text: str) -> None:
    page.goto(f"/demo/inbox/?to={mobile}")
    expect(page.locator(".inbox .msg", has_text=text).first).to_be_visible()


def messages_have(page: Page, title: str, number: str) -> None:
    """消息中心 (站内信): a message with this title about this order."""
    page.goto("/account/messages/")
    expect(page.locator(".inbox .msg", has_text=title).filter(has_text=number).first).to_be_visible()


def key_pairing_code(page: Page, button: str, command: str) -> str:
    """On the order page: 下载证书 / 解锁 → 获取配对码, for the agent on the PC with the key."""
    page.get_by_role("link", name=button, exact=True).click()
    page.click("button:has-text('获取配对码')")
    code = page.locator(".pairing-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code), code
    expect(page.locator("pre.cmd")).to_have_text(f"certdesk-agent {command} --code {code}")
    return code
