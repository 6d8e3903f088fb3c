"""Preconditions made with the services, for flows that do not start at 证书新办:
a customer whose 新办 order went the whole way (submitted, approved, paid in the
sandbox, the key written at the station by the agent, shipped, received), so the
follow-up business types start from a real key with a real certificate.

The browser walks exactly these steps in test_new_certificate.py; here they run
without it to keep the suite quick.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from certdesk.accounts.models import User
from certdesk.catalog.models import CertificateType
from certdesk.catalog.selectors import required_materials_list
from certdesk.core.choices import BusinessType
from certdesk.fulfilment.keywork import agent_pairing_create
from certdesk.fulfilment.services import shipment_confirm_receipt, shipment_create
from certdesk.materials.services import material_upload_save
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.services import OrderInfo, order_agreement_accept, order_create, order_info_save, order_submit
from certdesk.payments.gateways.sandbox import sandbox_notify, sandbox_trade_pay
from certdesk.payments.services import payment_start
from certdesk.review.services import review_approve
from tests.agent.softhsm import EmulatedKey, make_key
from tests.e2e.support import Agent, Issued, signing_certificate_in

PASSWORD = "E2e-Customer-2026"
USCC = "91110000600037341L"
ORG = "重庆东方测试有限公司"
STOCK_USER_PIN = "12345678"

INFO = OrderInfo(
    cert_org_name=ORG,
    cert_uscc=USCC,
    org_name=ORG,
    org_uscc=USCC,
    legal_rep_name="张三",
    legal_rep_id_number="360426199101010071",
    legal_rep_mobile="13500000000",
    invoice_type="normal",
    invoice_title=ORG,
    invoice_taxpayer_id=USCC,
    invoice_email="invoice@example.com",
    agent_name="李四",
    agent_id_number="11010519491231002X",
    agent_mobile="13600000000",
    agent_email="agent@example.com",
    delivery_method="mail",
    recipient_name="李四",
    recipient_phone="13600000000",
    shipping_address="重庆市渝中区测试路1号",
)


def customer_create(mobile: str) -> User:
    return User.objects.create_user(mobile=mobile, password=PASSWORD)


def blank_key_in_stock(sn: str) -> EmulatedKey:
    """A blank emulated key plugged into this PC, and its record in the key inventory (在库)."""
    from certdesk.tokens.services import usb_key_create

    emulated = make_key(sn, user_pin=STOCK_USER_PIN)
    usb_key_create(sn=sn, so_pin=emulated.so_pin, initial_user_pin=STOCK_USER_PIN)
    return emulated


def _jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), "white").save(buffer, format="JPEG")
    return buffer.getvalue()


def _submitted_new_order(owner: User) -> Order:
    certificate_type = CertificateType.objects.get(code="cq-ggzy-org")
    order = order_create(owner=owner, business_type=BusinessType.NEW, certificate_type_id=certificate_type.pk, years=1)
    order = order_info_save(order=order, actor=owner, info=INFO)
    order = order_agreement_accept(order=order, actor=owner)
    image = _jpeg()
    for requirement in required_materials_list(certificate_type=certificate_type, business_type=BusinessType.NEW):
        material_upload_save(
            order=order, kind=requirement.kind, upload=io.BytesIO(image), filename="scan.jpg", actor=owner
        )
    return order_submit(order=order, actor=owner)


def _pay_in_sandbox(order: Order, owner: User) -> None:
    payment = payment_start(order=order, gateway="sandbox", actor=owner)
    sandbox_trade_pay(merchant_no=payment.merchant_no)
    reply = sandbox_notify(merchant_no=payment.merchant_no)
    assert 200 <= reply.status < 300, reply


@dataclass(frozen=True)
class IssuedKey:
    order: Order
    key: EmulatedKey
    tracking_no: str
    signing: Issued  # the signing certificate, as the agent reported it at the station


def customer_with_key(
    *, owner: User, reviewer: Any, issuer: Any, agent: Agent, sn: str, received: bool = True
) -> IssuedKey:
    """A 证书新办 order of `owner` taken to 完成 (or to 已发货 with received=False), its key
    (SN `sn`, user PIN 12345678) written at the station by the agent and still plugged in."""
    order = _submitted_new_order(owner)
    order = review_approve(order=order, reviewer=reviewer)
    _pay_in_sandbox(order, owner)
    key = blank_key_in_stock(sn)
    code = agent_pairing_create(order=order, actor=issuer).code
    out = agent.ok("enroll", "--code", code, "--sn", sn, "--pin", STOCK_USER_PIN)
    order.refresh_from_db()
    assert order.status == OrderStatus.TO_SHIP, order.status
    tracking_no = f"SF{sn}"
    shipment_create(order=order, issuer=issuer, courier="顺丰速运", tracking_no=tracking_no)
    if received:
        shipment_confirm_receipt(order=order, customer=owner)
    order.refresh_from_db()
    return IssuedKey(order=order, key=key, tracking_no=tracking_no, signing=signing_certificate_in(out))
