"""The business types that start from a key the customer already has: 证书更新, 证书变更,
证书注销 and 证书补办, in the browser, with the agent doing the key work on the PC.

The customer's key comes from a 证书新办 made with the services (preconditions.py);
test_new_certificate.py walks that part in the browser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from playwright.sync_api import Page, expect

from certdesk.ra.models import OrderCertificate
from certdesk.tokens.models import UsbKey, UsbKeyStatus
from tests.e2e import steps
from tests.e2e.preconditions import (
    ORG,
    PASSWORD,
    STOCK_USER_PIN,
    USCC,
    IssuedKey,
    blank_key_in_stock,
    customer_create,
    customer_with_key,
)
from tests.e2e.support import (
    Agent,
    Shot,
    Staff,
    ocsp_answer,
    served_crl_reasons,
    signing_certificate_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
MOBILE = "13712340001"
SN = "5500000201"


@dataclass(frozen=True)
class Desk:
    customer: Page  # signed in
    reviewer: Page  # signed in
    issued: IssuedKey
    open_page: Callable[[], Page]
    staff: Callable[[str], Staff]


@pytest.fixture
def desk(open_page: Callable[[], Page], catalog: None, ca: Any, agent: Agent, staff: Callable[[str], Staff]) -> Desk:
    reviewer, issuer = staff("reviewer"), staff("issuer")
    owner = customer_create(MOBILE)
    issued = customer_with_key(owner=owner, reviewer=reviewer.user, issuer=issuer.user, agent=agent, sn=SN)
    customer = open_page()
    steps.customer_login(customer, MOBILE, PASSWORD)
    reviewer_page = open_page()
    steps.staff_login(reviewer_page, reviewer)
    return Desk(customer=customer, reviewer=reviewer_page, issued=issued, open_page=open_page, staff=staff)


def _certificates_of(issued: IssuedKey) -> list[OrderCertificate]:
    certificates = list(OrderCertificate.objects.filter(order=issued.order).order_by("role"))
    assert {c.role for c in certificates} == {"sign", "enc"}
    return certificates


def test_renew_onto_the_same_key(desk: Desk, agent: Agent, shot: Shot, tmp_path: Path) -> None:
    """证书更新: SN + USCC, pay, `certdesk-agent renew`, 完成; the new validity runs on from the old expiry."""
    customer, old = desk.customer, desk.issued.signing
    steps.start_from_key(customer, "renew", key_sn=SN, uscc=USCC, years=1)
    # 录入信息 comes filled in from the earlier order; the certificate's own fields stay as they are.
    expect(customer.locator("input[name=cert_org_name]")).to_have_value(ORG)
    expect(customer.locator("input[name=cert_org_name]")).to_be_disabled()
    expect(customer.locator("input[name=agent_name]")).to_have_value("李四")
    shot(customer, "renew-01-info")
    steps.info_next(customer)
    steps.print_and_agree(customer)
    steps.upload_all(customer, tmp_path)
    number = steps.submit(customer)

    steps.review_approve(desk.reviewer, number)
    steps.pay_in_sandbox(customer, number, "300.00")  # certificate fee × 1 year, no key
    steps.open_order(customer, number, "待下载")
    steps.messages_have(customer, "证书待下载", number)

    steps.open_order(customer, number)
    code = steps.key_pairing_code(customer, "下载证书", "renew")
    shot(customer, "renew-02-pairing")
    out = agent.ok("renew", "--code", code, "--pin", STOCK_USER_PIN)
    assert "订单状态：完成" in out, out
    new = signing_certificate_in(out)
    # The new expiry is one year after the old one (not after today).
    assert (new.not_after - old.not_after).days in (365, 366), (old, new)
    keys = agent.ok("keys")
    row = next(line for line in keys.splitlines() if new.serial.lower() in line.lower())
    assert new.not_after.isoformat() in row, keys
    assert old.serial.lower() not in keys.lower()  # the replaced certificate left the key

    steps.open_order(customer, number, "完成")
    expect(customer.locator("ol.timeline")).to_contain_text("证书已下载")
    shot(customer, "renew-03-completed")
    steps.messages_have(customer, "业务已办结", number)


def test_change_reissues_with_the_new_name_and_revokes_the_old(
    desk: Desk, agent: Agent, shot: Shot, tmp_path: Path, live_server: Any
) -> None:
    """证书变更: free; the new name; downloaded onto the key; the old certificates revoked."""
    customer = desk.customer
    old_certificates = _certificates_of(desk.issued)
    new_name = "重庆东方测试科技有限公司"
    steps.start_from_key(customer, "change", key_sn=SN, uscc=USCC)
    expect(customer.locator("input[name=cert_org_name]")).to_be_enabled()
    customer.fill("input[name=cert_org_name]", new_name)
    customer.check("input[name=org_same_as_cert]")
    shot(customer, "change-01-info")
    steps.info_next(customer)
    steps.print_and_agree(customer)
    steps.upload_all(customer, tmp_path)
    number = steps.submit(customer)

    steps.review_approve(desk.reviewer, number)
    # Free: no 待付款, straight to 待下载.
    steps.demo_inbox_has(customer, MOBILE, f"证书变更订单{number}已审核通过，本业务无需付款")
    steps.open_order(customer, number, "待下载")
    expect(customer.get_by_role("link", name="付款", exact=True)).to_have_count(0)
    code = steps.key_pairing_code(customer, "下载证书", "renew")
    out = agent.ok("renew", "--code", code, "--pin", STOCK_USER_PIN)
    assert f"订单 {number}（证书变更），{new_name}" in out and "订单状态：完成" in out, out
    new = signing_certificate_in(out)
    keys = agent.ok("keys")
    assert new_name in keys and ORG not in keys, keys
    steps.open_order(customer, number, "完成")
    shot(customer, "change-02-completed")

    # The old subject data no longer holds: both old certificates are revoked (superseded) …
    reasons = served_crl_reasons(live_server.url)
    for certificate in old_certificates:
        assert certificate.serial is not None
        assert reasons.get(int(certificate.serial, 16), "absent") == x509.ReasonFlags.superseded
    assert int(new.serial, 16) not in reasons
    # … and the OCSP responder says so; the new certificate is good.
    old_sign = next(c for c in old_certificates if c.role == "sign")
    answer = ocsp_answer(live_server.url, old_sign.certificate_pem)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.superseded
    new_sign = OrderCertificate.objects.get(order__number=number, role="sign")
    assert ocsp_answer(live_server.url, new_sign.certificate_pem).certificate_status == ocsp.OCSPCertStatus.GOOD


def test_revoke_completes_at_once_and_the_crl_lists_it(
    desk: Desk, shot: Shot, tmp_path: Path, live_server: Any
) -> None:
    """证书注销: the key is lost; approved, the order completes at once; the served CRL lists the serials."""
    customer = desk.customer
    old_certificates = _certificates_of(desk.issued)
    steps.start_from_key(customer, "revoke", key_sn=SN, uscc=USCC)
    customer.check("input[name=revoke_reason][value=key_lost]")
    shot(customer, "revoke-01-info")
    steps.info_next(customer)
    steps.print_and_agree(customer)
    assert steps.upload_all(customer, tmp_path) == ["数字证书申请表", "经办人身份证"]
    number = steps.submit(customer)

    steps.review_approve(desk.reviewer, number)
    steps.open_order(customer, number, "完成")
    expect(customer.locator("ol.timeline")).to_contain_text("已注销 2 张证书（keyCompromise）")
    shot(customer, "revoke-02-completed")
    steps.messages_have(customer, "业务已办结", number)

    reasons = served_crl_reasons(live_server.url)
    for certificate in old_certificates:
        assert certificate.serial is not None
        assert reasons.get(int(certificate.serial, 16), "absent") == x509.ReasonFlags.key_compromise
    # The lost key can no longer be used for anything.
    assert UsbKey.objects.get(sn=SN).status == UsbKeyStatus.LOST
    customer.goto("/orders/start/renew/")
    customer.fill("input[name=key_sn]", SN)
    customer.fill("input[name=uscc]", USCC)
    customer.click("main button:has-text('下一步')")
    expect(customer.get_by_role("alert")).to_have_text("该 USB Key 当前状态为“已挂失”，不能办理此业务。")


def test_reissue_revokes_the_lost_key_and_ships_a_new_one(
    desk: Desk, agent: Agent, shot: Shot, tmp_path: Path, live_server: Any
) -> None:
    """证书补办: the lost key's certificates are revoked on approval; only the key fee is paid;
    the station writes a new key, which is shipped and received."""
    customer = desk.customer
    old_certificates = _certificates_of(desk.issued)
    new_sn = "5500000202"
    steps.start_from_key(customer, "reissue", key_sn=SN, uscc=USCC)
    expect(customer.locator("input[name=shipping_address]")).to_have_value("重庆市渝中区测试路1号")
    steps.info_next(customer)
    steps.print_and_agree(customer)
    steps.upload_all(customer, tmp_path)
    number = steps.submit(customer)

    steps.review_approve(desk.reviewer, number)
    # Revoked as soon as the reviewer approved, before anything is paid.
    reasons = served_crl_reasons(live_server.url)
    for certificate in old_certificates:
        assert certificate.serial is not None
        assert reasons.get(int(certificate.serial, 16), "absent") == x509.ReasonFlags.key_compromise
    steps.pay_in_sandbox(customer, number, "100.00")  # the key (medium) fee only

    issuer = desk.open_page()
    steps.staff_login(issuer, desk.staff("issuer"))
    code = steps.station_pairing_code(issuer, number)
    blank_key_in_stock(new_sn)
    out = agent.ok("enroll", "--code", code, "--sn", new_sn, "--pin", STOCK_USER_PIN)
    assert "订单状态：待发货" in out, out
    tracking_no = "SF2000000202"
    steps.ship(issuer, number, tracking_no)
    steps.confirm_receipt(customer, number, tracking_no)
    shot(customer, "reissue-01-completed")

    assert UsbKey.objects.get(sn=SN).status == UsbKeyStatus.LOST
    assert UsbKey.objects.get(sn=new_sn).status == UsbKeyStatus.ISSUED
    # The new key is the one the customer now starts from.
    customer.goto("/orders/start/renew/")
    expect(customer.locator("main ul li", has_text=f"SN {new_sn}")).to_contain_text(number)
