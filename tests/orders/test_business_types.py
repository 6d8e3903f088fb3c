"""Each of the six follow-up business types end to end through HTTP and services:
start from the key (or order), enter, upload, submit, review, pay (sandbox) where
it costs something, the key step, and the customer's messages. The agent itself
driving SoftHSM keys through the API is covered in tests/agent/test_flows*.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.catalog.selectors import required_materials_list
from certdesk.core.choices import BusinessType
from certdesk.fulfilment.keywork import (
    agent_certificate_request,
    agent_confirm,
    agent_pairing_create,
    agent_session_open,
    agent_unlock_finish,
    agent_unlock_start,
)
from certdesk.fulfilment.services import remote_assistance_complete, shipment_create
from certdesk.notifications.models import Notification, NotificationEvent
from certdesk.orders.models import Order, OrderStatus
from certdesk.pki.models import IssuedCertificate
from certdesk.pki.selectors import certificate_status_get
from certdesk.ra.models import OrderCertificate
from certdesk.review.services import review_approve
from certdesk.tokens.models import UsbKey, UsbKeyStatus
from certdesk.tokens.services import usb_key_create
from tests.factories import VALID_INFO

pytestmark = pytest.mark.django_db


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "x")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _write_key(order: Order, actor: User, key: UsbKey) -> list[str]:
    """What the agent does at a station or on the customer's PC, with software keys."""
    opened = agent_session_open(code=agent_pairing_create(order=order, actor=actor).code, key_sn=key.sn)
    roles = ["sign", "enc"] if order.certificate_type.dual_certificate else ["sign"]
    serials = [agent_certificate_request(session=opened.session, role=role, csr_pem=_csr()).serial for role in roles]
    agent_confirm(session=opened.session, serials=serials)  # type: ignore[arg-type]
    return serials  # type: ignore[return-value]


@pytest.fixture
def written_key(file_ca: Any, complete_order: Order, customer: User, issuer: User, stock_key: UsbKey) -> UsbKey:
    """A customer who completed 证书新办: their key holds sign + enc certificates."""
    Order.objects.filter(pk=complete_order.pk).update(status=OrderStatus.PAID, amount_fen=70000)
    complete_order.refresh_from_db()
    _write_key(complete_order, issuer, stock_key)
    stock_key.refresh_from_db()
    return stock_key


def _fill_and_submit(client: Client, order: Order, image: bytes, **info: str) -> Order:
    data = {**VALID_INFO, **info}
    response = client.post(reverse("orders:info", args=[order.number]), data)
    assert response.status_code == 302, response.context["form"].errors
    assert client.post(reverse("orders:print", args=[order.number]), {"agreement": "on"}).status_code == 302
    for requirement in required_materials_list(
        certificate_type=order.certificate_type, business_type=BusinessType(order.business_type)
    ):
        file = SimpleUploadedFile("scan.png", image, content_type="image/png")
        client.post(reverse("materials:upload", args=[order.number, requirement.kind.code]), {"file": file})
    client.post(reverse("orders:submit", args=[order.number]))
    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED, order.status
    return order


def _start(client: Client, business: str, **data: str) -> Order:
    response = client.post(reverse("orders:start", args=[business]), data)
    assert response.status_code == 302, response.content.decode()
    number = response["Location"].split("/")[2]
    return Order.objects.get(number=number)


def _pay_in_sandbox(client: Client, order: Order) -> None:
    started = client.post(reverse("payments:pay", args=[order.number]), {"gateway": "sandbox"})
    page = client.get(started["Location"]).content.decode()
    link = re.search(r'href="(http://testserver/payments/sandbox/pay/[^"]+)"', page)
    assert link is not None
    Client().post(link.group(1))
    order.refresh_from_db()


def _events(user: User) -> list[str]:
    return list(Notification.objects.filter(user=user).values_list("event", flat=True))


def test_renew(
    customer_client: Client, written_key: UsbKey, customer: User, reviewer: User, image_bytes: Callable[..., bytes]
) -> None:
    old = OrderCertificate.objects.get(key_sn=written_key.sn, role="sign", status="installed")
    order = _start(customer_client, "renew", key_sn=written_key.sn, uscc="91110000600037341L", years="3")
    page = customer_client.get(reverse("orders:info", args=[order.number])).content.decode()
    assert "来自现有证书" in page  # the certificate's data is shown, not re-typed
    order = _fill_and_submit(customer_client, order, image_bytes("PNG"), cert_org_name="别的公司")
    assert order.cert_org_name == "重庆东方测试有限公司"  # read-only in a renewal
    order = review_approve(order=order, reviewer=reviewer)
    assert order.amount_fen == 30000 * 3  # certificate fee × years, no key fee
    _pay_in_sandbox(customer_client, order)
    assert order.status == OrderStatus.READY_TO_DOWNLOAD
    serials = _write_key(order, customer, written_key)
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    new = OrderCertificate.objects.get(serial=serials[0])
    assert new.not_after is not None and old.not_after is not None
    assert new.not_after.year == old.not_after.year + 3
    # The encryption certificate runs on from its own old expiry too, and the old ones leave the key.
    new_enc = OrderCertificate.objects.get(serial=serials[1])
    assert new_enc.not_after is not None and new_enc.not_after.year == old.not_after.year + 3
    assert set(written_key.certificates.values_list("serial_hex", flat=True)) == {s.lower() for s in serials}
    assert OrderCertificate.objects.filter(key_sn=written_key.sn, status="superseded").count() == 2
    assert NotificationEvent.READY_TO_DOWNLOAD in _events(customer)
    assert NotificationEvent.COMPLETED in _events(customer)


def test_renewal_refuses_another_key(
    customer_client: Client, written_key: UsbKey, customer: User, reviewer: User, image_bytes: Callable[..., bytes]
) -> None:
    order = _start(customer_client, "renew", key_sn=written_key.sn, uscc="91110000600037341L", years="1")
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.READY_TO_DOWNLOAD)
    order.refresh_from_db()
    other = usb_key_create(sn="5500000777", so_pin="SoPin-777777")
    from certdesk.core.errors import DomainError

    with pytest.raises(DomainError, match="不是本订单的 Key"):
        agent_session_open(code=agent_pairing_create(order=order, actor=customer).code, key_sn=other.sn)


def test_start_refuses_a_key_of_another_organisation(customer_client: Client, written_key: UsbKey) -> None:
    response = customer_client.post(
        reverse("orders:start", args=["renew"]), {"key_sn": written_key.sn, "uscc": "91500000MA5U0000X0", "years": "1"}
    )
    assert response.status_code == 200
    assert "没有找到序列号" in response.content.decode() or "校验位" in response.content.decode()
    assert 'value="' + written_key.sn + '"' in response.content.decode()  # input kept


def test_change_is_free_and_revokes_the_old_certificate(
    customer_client: Client, written_key: UsbKey, customer: User, reviewer: User, image_bytes: Callable[..., bytes]
) -> None:
    old = OrderCertificate.objects.get(key_sn=written_key.sn, role="sign", status="installed")
    order = _start(customer_client, "change", key_sn=written_key.sn, uscc="91110000600037341L")
    order = _fill_and_submit(customer_client, order, image_bytes("PNG"), cert_org_name="重庆东方新名称有限公司")
    order = review_approve(order=order, reviewer=reviewer)
    assert order.amount_fen == 0
    assert order.status == OrderStatus.READY_TO_DOWNLOAD
    serials = _write_key(order, customer, written_key)
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    new = x509.load_pem_x509_certificate(OrderCertificate.objects.get(serial=serials[0]).certificate_pem.encode())
    assert new.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "重庆东方新名称有限公司"
    status = certificate_status_get(serial=old.serial)  # type: ignore[arg-type]
    assert status.status == "revoked"
    assert status.revocation_reason is not None and status.revocation_reason.rfc_name == "superseded"


def test_reissue_revokes_lost_key_on_approval_and_ships_a_new_one(
    customer_client: Client,
    written_key: UsbKey,
    customer: User,
    reviewer: User,
    issuer: User,
    image_bytes: Callable[..., bytes],
) -> None:
    lost = list(
        OrderCertificate.objects.filter(key_sn=written_key.sn, status="installed").values_list("serial", flat=True)
    )
    order = _start(customer_client, "reissue", key_sn=written_key.sn, uscc="91110000600037341L")
    order = _fill_and_submit(customer_client, order, image_bytes("PNG"))
    order = review_approve(order=order, reviewer=reviewer)
    assert order.amount_fen == 10000  # the key fee only
    for serial in lost:
        assert IssuedCertificate.objects.get(serial=serial).revocation_reason == 1  # keyCompromise
    written_key.refresh_from_db()
    assert written_key.status == UsbKeyStatus.LOST
    _pay_in_sandbox(customer_client, order)
    assert order.status == OrderStatus.PAID
    fresh = usb_key_create(sn="5500000002", so_pin="SoPin-222222")
    _write_key(order, issuer, fresh)
    order.refresh_from_db()
    assert order.status == OrderStatus.TO_SHIP
    shipment_create(order=order, issuer=issuer, courier="顺丰速运", tracking_no="SF100")
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert NotificationEvent.SHIPPED in _events(customer)


def test_unlock_online_for_a_55_key(
    customer_client: Client, written_key: UsbKey, customer: User, reviewer: User, image_bytes: Callable[..., bytes]
) -> None:
    order = _start(customer_client, "unlock", key_sn=written_key.sn, uscc="91110000600037341L")
    materials = [
        r.kind.code
        for r in required_materials_list(certificate_type=order.certificate_type, business_type=BusinessType.UNLOCK)
    ]
    assert materials == ["application_form", "agent_id"]
    order = _fill_and_submit(customer_client, order, image_bytes("PNG"))
    order = review_approve(order=order, reviewer=reviewer)
    assert order.status == OrderStatus.READY_TO_UNLOCK
    opened = agent_session_open(code=agent_pairing_create(order=order, actor=customer).code, key_sn=written_key.sn)
    pins = agent_unlock_start(session=opened.session)
    assert pins.so_pin == "SoPin-123456"
    assert agent_unlock_finish(session=opened.session, ok=True).status == OrderStatus.COMPLETED
    assert NotificationEvent.READY_TO_UNLOCK in _events(customer)


def test_unlock_for_an_11_key_goes_to_support_with_qq(
    customer_client: Client,
    file_ca: Any,
    complete_order: Order,
    customer: User,
    reviewer: User,
    issuer: User,
    make_staff: Callable[[str, str], User],
    image_bytes: Callable[..., bytes],
) -> None:
    from certdesk.accounts.roles import ROLE_SUPPORT

    Order.objects.filter(pk=complete_order.pk).update(status=OrderStatus.PAID)
    complete_order.refresh_from_db()
    key11 = usb_key_create(sn="1100000005", so_pin="SoPin-333333")
    _write_key(complete_order, issuer, key11)
    order = _start(customer_client, "unlock", key_sn=key11.sn, uscc="91110000600037341L")
    response = customer_client.post(reverse("orders:info", args=[order.number]), {**VALID_INFO})
    assert "agent_qq" in response.context["form"].errors  # support adds the customer on QQ
    order = _fill_and_submit(customer_client, order, image_bytes("PNG"), agent_qq="123456789")
    order = review_approve(order=order, reviewer=reviewer)
    assert order.status == OrderStatus.REMOTE_ASSISTANCE
    from certdesk.core.errors import DomainError

    with pytest.raises(DomainError):
        agent_pairing_create(order=order, actor=customer)  # no PIN is ever released for an 11 key
    support = make_staff("13900000031", ROLE_SUPPORT)
    assert remote_assistance_complete(order=order, staff=support, note="已远程解锁").status == OrderStatus.COMPLETED


@pytest.mark.parametrize(
    ("reason", "rfc"), [("key_lost", "keyCompromise"), ("no_longer_needed", "cessationOfOperation")]
)
def test_revoke(
    customer_client: Client,
    written_key: UsbKey,
    customer: User,
    reviewer: User,
    image_bytes: Callable[..., bytes],
    reason: str,
    rfc: str,
) -> None:
    serials = list(
        OrderCertificate.objects.filter(key_sn=written_key.sn, status="installed").values_list("serial", flat=True)
    )
    order = _start(customer_client, "revoke", key_sn=written_key.sn, uscc="91110000600037341L")
    order = _fill_and_submit(customer_client, order, image_bytes("PNG"), revoke_reason=reason)
    order = review_approve(order=order, reviewer=reviewer)
    assert order.status == OrderStatus.COMPLETED
    for serial in serials:
        status = certificate_status_get(serial=serial)
        assert status.status == "revoked"
        assert status.revocation_reason is not None and status.revocation_reason.flag.value == rfc


def test_redispatch_pickup_to_mail(
    customer_client: Client,
    complete_order: Order,
    customer: User,
    reviewer: User,
    issuer: User,
    image_bytes: Callable[..., bytes],
) -> None:
    Order.objects.filter(pk=complete_order.pk).update(status=OrderStatus.SHIPPED)
    order = _start(customer_client, "redispatch", original=complete_order.number)
    assert order.related_order == complete_order
    materials = [
        r.kind.code
        for r in required_materials_list(certificate_type=order.certificate_type, business_type=BusinessType.REDISPATCH)
    ]
    assert materials == ["situation_statement", "agent_id"]
    order = _fill_and_submit(customer_client, order, image_bytes("PNG"), shipping_address="重庆市江北区新地址2号")
    order = review_approve(order=order, reviewer=reviewer)
    assert order.status == OrderStatus.TO_SHIP
    complete_order.refresh_from_db()
    assert complete_order.status == OrderStatus.COMPLETED  # the parcel now travels under the 改派 order
    shipment_create(order=order, issuer=issuer, courier="EMS", tracking_no="EMS200")
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert order.shipments.get().address == "重庆市江北区新地址2号"


def test_redispatch_only_for_orders_on_their_way(customer_client: Client, complete_order: Order) -> None:
    response = customer_client.post(reverse("orders:start", args=["redispatch"]), {"original": complete_order.number})
    assert "只有待发货、已发货或待自提的订单可以改派" in response.content.decode()


def test_one_open_order_per_key(customer_client: Client, written_key: UsbKey) -> None:
    _start(customer_client, "renew", key_sn=written_key.sn, uscc="91110000600037341L", years="1")
    response = customer_client.post(
        reverse("orders:start", args=["unlock"]), {"key_sn": written_key.sn, "uscc": "91110000600037341L"}
    )
    assert "已有办理中的" in response.content.decode()


def test_another_account_gets_only_the_certificate_data(
    client: Client, written_key: UsbKey, other_customer: User
) -> None:
    client.force_login(other_customer)
    order = _start(client, "renew", key_sn=written_key.sn, uscc="91110000600037341L", years="1")
    assert order.cert_org_name == "重庆东方测试有限公司"
    assert order.legal_rep_id_number == ""  # personal data stays with the account that entered it
    assert order.agent_mobile == ""


def test_expiry_reminder_links_to_a_prefilled_renewal(
    customer_client: Client, written_key: UsbKey, customer: User
) -> None:
    import datetime

    from certdesk.notifications.services import certificate_expiry_remind

    sign = OrderCertificate.objects.get(key_sn=written_key.sn, role="sign", status="installed")
    assert sign.not_after is not None
    assert certificate_expiry_remind(now=sign.not_after - datetime.timedelta(days=6, hours=12)) == 1
    message = Notification.objects.get(user=customer, event=NotificationEvent.EXPIRING)
    assert "7" in message.body or "6" in message.body
    page = customer_client.get(message.link).content.decode()
    assert f'value="{written_key.sn}"' in page
    assert 'value="91110000600037341L"' in page
    # Once per threshold: the same day again stores nothing new.
    certificate_expiry_remind(now=sign.not_after - datetime.timedelta(days=6, hours=11))
    assert Notification.objects.filter(user=customer, event=NotificationEvent.EXPIRING).count() == 1


def test_order_page_shows_the_certificates_and_their_expiry(customer_client: Client, written_key: UsbKey) -> None:
    record = OrderCertificate.objects.get(key_sn=written_key.sn, role="sign", status="installed")
    page = customer_client.get(reverse("orders:detail", args=[record.order.number])).content.decode()
    assert record.serial in page  # type: ignore[operator]
    assert record.not_after is not None
    from django.utils import timezone

    assert timezone.localtime(record.not_after).strftime("%Y-%m-%d") in page
    assert "签名证书" in page and "加密证书" in page
