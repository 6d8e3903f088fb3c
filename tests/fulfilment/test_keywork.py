"""Key work through agent sessions, at the service level (the HTTP API and the
agent itself are tested in tests/api and tests/agent)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.utils import timezone

from certdesk.accounts.models import User
from certdesk.core.errors import DomainError, PermissionDenied
from certdesk.fulfilment.keywork import (
    agent_certificate_request,
    agent_confirm,
    agent_pairing_create,
    agent_session_open,
    agent_unlock_finish,
    agent_unlock_start,
)
from certdesk.fulfilment.models import AgentPairing
from certdesk.orders.models import Order, OrderStatus
from certdesk.pki.models import IssuedCertificate
from certdesk.ra.models import OrderCertificate
from certdesk.tokens.models import UsbKey, UsbKeyStatus
from certdesk.tokens.services import usb_key_create, usb_key_mark_issued

pytestmark = pytest.mark.django_db


def _csr(key: ec.EllipticCurvePrivateKey | None = None) -> tuple[str, ec.EllipticCurvePrivateKey]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "重庆东方测试有限公司")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


@pytest.fixture
def paid_order(complete_order: Order) -> Order:
    Order.objects.filter(pk=complete_order.pk).update(status=OrderStatus.PAID, amount_fen=70000)
    complete_order.refresh_from_db()
    return complete_order


def test_station_writes_a_dual_certificate_key(
    file_ca: Any, paid_order: Order, issuer: User, stock_key: UsbKey
) -> None:
    pairing = agent_pairing_create(order=paid_order, actor=issuer)
    opened = agent_session_open(code=pairing.code.lower(), key_sn=stock_key.sn)
    sign_csr, _ = _csr()
    enc_csr, _ = _csr()
    sign = agent_certificate_request(session=opened.session, role="sign", csr_pem=sign_csr)
    enc = agent_certificate_request(session=opened.session, role="enc", csr_pem=enc_csr)
    certificate = x509.load_pem_x509_certificate(sign.certificate_pem.encode())
    assert certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "重庆东方测试有限公司"
    assert enc.serial != sign.serial
    order = agent_confirm(session=opened.session, serials=[sign.serial, enc.serial])  # type: ignore[list-item]
    assert order.status == OrderStatus.TO_SHIP
    assert order.key_sn == stock_key.sn
    stock_key.refresh_from_db()
    assert stock_key.status == UsbKeyStatus.ISSUED
    assert stock_key.owner_uscc == "91110000600037341L"
    assert {c.role for c in stock_key.certificates.all()} == {"sign", "enc"}
    # Confirming again (a retry) changes nothing.
    assert agent_confirm(session=opened.session, serials=[sign.serial, enc.serial]).status == OrderStatus.TO_SHIP  # type: ignore[list-item]


def test_same_key_twice_gives_the_same_certificate(
    file_ca: Any, paid_order: Order, issuer: User, stock_key: UsbKey
) -> None:
    opened = agent_session_open(code=agent_pairing_create(order=paid_order, actor=issuer).code, key_sn=stock_key.sn)
    csr, _ = _csr()
    first = agent_certificate_request(session=opened.session, role="sign", csr_pem=csr)
    again = agent_certificate_request(session=opened.session, role="sign", csr_pem=csr)
    assert first.serial == again.serial
    assert IssuedCertificate.objects.filter(reference=paid_order.number, profile="org-sign").count() == 1


def test_crash_after_ca_signed_is_recovered_without_a_second_certificate(
    file_ca: Any, paid_order: Order, issuer: User, stock_key: UsbKey
) -> None:
    from certdesk.pki.services import certificate_issue
    from certdesk.ra.services import _spki_sha256, ra_issuance_request

    opened = agent_session_open(code=agent_pairing_create(order=paid_order, actor=issuer).code, key_sn=stock_key.sn)
    csr, _ = _csr()
    # The state a crash leaves: the RA recorded its request, the CA signed, the RA never heard back.
    OrderCertificate.objects.create(
        order=paid_order, role="sign", spki_sha256=_spki_sha256(csr), key_sn=stock_key.sn, uscc=paid_order.cert_uscc
    )
    signed = certificate_issue(request=ra_issuance_request(order=paid_order, role="sign", csr_pem=csr))
    record = agent_certificate_request(session=opened.session, role="sign", csr_pem=csr)
    assert record.serial == signed.serial
    assert IssuedCertificate.objects.filter(reference=paid_order.number, profile="org-sign").count() == 1


def test_a_new_key_pair_supersedes_an_unwritten_certificate(
    file_ca: Any, paid_order: Order, issuer: User, stock_key: UsbKey, django_capture_on_commit_callbacks: Any
) -> None:
    opened = agent_session_open(code=agent_pairing_create(order=paid_order, actor=issuer).code, key_sn=stock_key.sn)
    first = agent_certificate_request(session=opened.session, role="sign", csr_pem=_csr()[0])
    with django_capture_on_commit_callbacks(execute=True):
        second = agent_certificate_request(session=opened.session, role="sign", csr_pem=_csr()[0])
    first.refresh_from_db()
    assert first.status == OrderCertificate.Status.SUPERSEDED
    assert IssuedCertificate.objects.get(serial=first.serial).revoked_at is not None
    assert second.status == OrderCertificate.Status.ISSUED


def test_confirm_needs_every_role(file_ca: Any, paid_order: Order, issuer: User, stock_key: UsbKey) -> None:
    opened = agent_session_open(code=agent_pairing_create(order=paid_order, actor=issuer).code, key_sn=stock_key.sn)
    sign = agent_certificate_request(session=opened.session, role="sign", csr_pem=_csr()[0])
    with pytest.raises(DomainError, match="加密证书"):
        agent_confirm(session=opened.session, serials=[sign.serial])  # type: ignore[list-item]


def test_pairing_rules(paid_order: Order, issuer: User, customer: User, stock_key: UsbKey) -> None:
    with pytest.raises(PermissionDenied):
        agent_pairing_create(order=paid_order, actor=customer)  # writing new keys is for issuers
    code = agent_pairing_create(order=paid_order, actor=issuer).code
    agent_session_open(code=code, key_sn=stock_key.sn)
    with pytest.raises(DomainError, match="配对码无效"):
        agent_session_open(code=code, key_sn=stock_key.sn)  # once only
    expired = agent_pairing_create(order=paid_order, actor=issuer).code
    AgentPairing.objects.filter(used_at__isnull=True).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    with pytest.raises(DomainError, match="已过期"):
        agent_session_open(code=expired, key_sn=stock_key.sn)


def test_station_refuses_a_key_that_is_not_blank_stock(paid_order: Order, issuer: User, stock_key: UsbKey) -> None:
    other = usb_key_create(sn="5500000099", so_pin="SoPin-654321")
    usb_key_mark_issued(key=other, owner_uscc="91110000600037341L")
    with pytest.raises(DomainError, match="不是空白库存"):
        agent_session_open(code=agent_pairing_create(order=paid_order, actor=issuer).code, key_sn=other.sn)
    with pytest.raises(DomainError, match="不在本系统"):
        agent_session_open(code=agent_pairing_create(order=paid_order, actor=issuer).code, key_sn="5599999999")


def test_renewal_runs_on_from_the_old_expiry(
    file_ca: Any, paid_order: Order, issuer: User, customer: User, stock_key: UsbKey
) -> None:
    # First the key is written for the original order …
    opened = agent_session_open(code=agent_pairing_create(order=paid_order, actor=issuer).code, key_sn=stock_key.sn)
    old = agent_certificate_request(session=opened.session, role="sign", csr_pem=_csr()[0])
    enc = agent_certificate_request(session=opened.session, role="enc", csr_pem=_csr()[0])
    agent_confirm(session=opened.session, serials=[old.serial, enc.serial])  # type: ignore[list-item]
    # … then a paid renewal for 3 years downloads onto the same key.
    renewal = Order.objects.get(pk=paid_order.pk)
    renewal.pk = None
    renewal.number = "GX2611270000001"
    renewal.business_type = "renew"
    renewal.status = OrderStatus.READY_TO_DOWNLOAD
    renewal.years = 3
    renewal.key_sn = stock_key.sn
    renewal.previous_serial = old.serial or ""
    renewal.save()
    other = usb_key_create(sn="5500000099", so_pin="SoPin-654321")
    with pytest.raises(DomainError, match="不是本订单的 Key"):
        agent_session_open(code=agent_pairing_create(order=renewal, actor=customer).code, key_sn=other.sn)
    opened = agent_session_open(code=agent_pairing_create(order=renewal, actor=customer).code, key_sn=stock_key.sn)
    new_sign = agent_certificate_request(session=opened.session, role="sign", csr_pem=_csr()[0])
    new_enc = agent_certificate_request(session=opened.session, role="enc", csr_pem=_csr()[0])
    assert new_sign.not_after is not None and old.not_after is not None
    assert new_sign.not_after.year == old.not_after.year + 3
    assert abs((new_sign.not_after - old.not_after.replace(year=old.not_after.year + 3)).total_seconds()) < 5
    done = agent_confirm(session=opened.session, serials=[new_sign.serial, new_enc.serial])  # type: ignore[list-item]
    assert done.status == OrderStatus.COMPLETED
    assert old.serial not in {c.serial_hex for c in UsbKey.objects.get(sn=stock_key.sn).certificates.all()}


def test_unlock_releases_the_admin_pin_once(customer: User, complete_order: Order) -> None:
    key = usb_key_create(sn="5500000042", so_pin="SoPin-111111")
    usb_key_mark_issued(key=key, owner_uscc="91110000600037341L")
    Order.objects.filter(pk=complete_order.pk).update(
        business_type="unlock", status=OrderStatus.READY_TO_UNLOCK, key_sn=key.sn
    )
    complete_order.refresh_from_db()
    opened = agent_session_open(code=agent_pairing_create(order=complete_order, actor=customer).code, key_sn=key.sn)
    pins = agent_unlock_start(session=opened.session)
    assert pins.so_pin == "SoPin-111111"
    assert pins.new_so_pin != pins.so_pin
    with pytest.raises(DomainError, match="不能再次发放"):
        agent_unlock_start(session=opened.session)  # the released PIN is never handed out again
    assert agent_unlock_finish(session=opened.session, ok=True).status == OrderStatus.COMPLETED


def test_remote_assistance_key_never_gets_a_pin(customer: User, complete_order: Order) -> None:
    key = usb_key_create(sn="1100000001", so_pin="SoPin-222222")
    Order.objects.filter(pk=complete_order.pk).update(
        business_type="unlock", status=OrderStatus.READY_TO_UNLOCK, key_sn=key.sn
    )
    complete_order.refresh_from_db()
    with pytest.raises(DomainError, match="不支持在线解锁"):
        agent_pairing_create(order=complete_order, actor=customer)


def test_station_page_gives_issuers_a_code(
    paid_order: Order, issuer: User, reviewer: User, staff_client_for: Any, customer_client: Any
) -> None:
    from django.urls import reverse

    url = reverse("fulfilment:station", args=[paid_order.number])
    assert customer_client.get(url).status_code == 404
    assert staff_client_for(reviewer).get(url).status_code == 404
    page = staff_client_for(issuer).post(url).content.decode()
    assert "certdesk-agent enroll --code" in page
    assert AgentPairing.objects.filter(order=paid_order).count() == 1


def test_customer_gets_a_code_only_for_their_own_download(
    complete_order: Order, customer: User, client: Any, other_customer: User
) -> None:
    from django.urls import reverse

    Order.objects.filter(pk=complete_order.pk).update(
        business_type="renew", status=OrderStatus.READY_TO_DOWNLOAD, key_sn="5500000001"
    )
    url = reverse("fulfilment:key_pairing", args=[complete_order.number])
    client.force_login(other_customer)
    assert client.get(url).status_code == 404
    client.force_login(customer)
    assert "下载证书" in client.get(reverse("orders:detail", args=[complete_order.number])).content.decode()
    assert "certdesk-agent renew --code" in client.post(url).content.decode()
