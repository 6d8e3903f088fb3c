"""Fixtures shared by the whole suite."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.catalog.models import CertificateType
from certdesk.catalog.selectors import required_materials_list
from certdesk.core.choices import BusinessType
from certdesk.orders.models import Order
from certdesk.orders.services import order_create
from tests.factories import VALID_INFO


@pytest.fixture
def customer(db: None) -> User:
    return User.objects.create_user(mobile="13800000001", password="Cust0mer-Pass-2026")


@pytest.fixture
def other_customer(db: None) -> User:
    return User.objects.create_user(mobile="13800000002", password="0ther-Cust-Pass-2026")


@pytest.fixture
def customer_client(client: Client, customer: User) -> Client:
    client.force_login(customer)
    return client


@pytest.fixture
def demo_catalog(db: None) -> None:
    from certdesk.catalog.services import catalog_load_demo

    catalog_load_demo()


@pytest.fixture
def image_bytes() -> Callable[..., bytes]:
    """A real image of the given format, made here (no binary fixtures in the repo)."""

    def make(fmt: str = "PNG", size: tuple[int, int] = (64, 48), color: str = "white") -> bytes:
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", size, color).save(buffer, format=fmt)
        return buffer.getvalue()

    return make


@pytest.fixture
def certificate_type(demo_catalog: None) -> CertificateType:
    return CertificateType.objects.get(code="cq-ggzy-org")


@pytest.fixture
def draft_order(customer: User, certificate_type: CertificateType) -> Order:
    return order_create(
        owner=customer, business_type=BusinessType.NEW, certificate_type_id=certificate_type.pk, years=2
    )


@pytest.fixture
def make_orders(certificate_type: CertificateType) -> Callable[..., list[Order]]:
    """`make_orders(owner, count, status=..., prefix=...)`: orders in bulk (for lists and query counts),
    the first the newest, each a minute older than the one before; numbers `<prefix>0001`, `<prefix>0002`, …"""
    import datetime

    from django.utils import timezone

    def make(owner: User, count: int, *, status: str = "draft", prefix: str = "LT") -> list[Order]:
        now = timezone.now()
        orders = Order.objects.bulk_create(
            Order(
                number=f"{prefix}{i:04d}",
                owner=owner,
                business_type=BusinessType.NEW,
                status=status,
                certificate_type=certificate_type,
                org_name=f"测试单位{i}",
                submitted_at=None if status == "draft" else now,
                review_due_at=None if status == "draft" else now + datetime.timedelta(hours=i),
            )
            for i in range(1, count + 1)
        )
        for i, order in enumerate(orders, start=1):  # created_at is auto_now_add: set it afterwards
            order.created_at = now - datetime.timedelta(minutes=i)
        Order.objects.bulk_update(orders, ["created_at"])
        return orders

    return make


@pytest.fixture
def upload_all(image_bytes: Callable[..., bytes]) -> Callable[[Client, Order], None]:
    def upload(client: Client, order: Order) -> None:
        for requirement in required_materials_list(
            certificate_type=order.certificate_type, business_type=BusinessType.NEW
        ):
            file = SimpleUploadedFile(f"{requirement.kind.code}.png", image_bytes("PNG"), content_type="image/png")
            response = client.post(
                reverse("materials:upload", args=[order.number, requirement.kind.code]), {"file": file}
            )
            assert response.status_code == 302

    return upload


@pytest.fixture
def complete_order(customer_client: Client, draft_order: Order, upload_all: Callable[[Client, Order], None]) -> Order:
    """A new-certificate order with everything entered and uploaded, not yet submitted."""
    assert customer_client.post(reverse("orders:info", args=[draft_order.number]), VALID_INFO).status_code == 302
    assert (
        customer_client.post(reverse("orders:print", args=[draft_order.number]), {"agreement": "on"}).status_code == 302
    )
    upload_all(customer_client, draft_order)
    draft_order.refresh_from_db()
    return draft_order


@pytest.fixture
def reviewer(db: None) -> User:
    from django.contrib.auth.models import Group

    from certdesk.accounts.roles import ROLE_REVIEWER, staff_roles_ensure

    staff_roles_ensure()
    user = User.objects.create_user(mobile="13900000011", password="Rev1ewer-Pass-2026", is_staff=True)
    user.groups.add(Group.objects.get(name=ROLE_REVIEWER))
    return user


@pytest.fixture
def second_reviewer(reviewer: User) -> User:
    from django.contrib.auth.models import Group

    from certdesk.accounts.roles import ROLE_REVIEWER

    user = User.objects.create_user(mobile="13900000012", password="Rev1ewer-Pass-2026", is_staff=True)
    user.groups.add(Group.objects.get(name=ROLE_REVIEWER))
    return user


@pytest.fixture
def submitted_order(complete_order: Order, customer: User) -> Order:
    from certdesk.orders.services import order_submit

    return order_submit(order=complete_order, actor=customer)


@pytest.fixture
def staff_client_for() -> Callable[[User], Client]:
    """A client signed in as a staff member who passed the TOTP step, the real way."""
    from certdesk.accounts.otp import demo_current_code, staff_otp_device

    def sign_in(user: User) -> Client:
        client = Client()
        client.force_login(user)
        code = demo_current_code(staff_otp_device(user=user))
        response = client.post(reverse("staff_otp"), {"token": code})
        assert response.status_code == 302, response.content.decode()
        return client

    return sign_in


@pytest.fixture
def make_staff() -> Callable[[str, str], User]:
    from django.contrib.auth.models import Group

    from certdesk.accounts.roles import staff_roles_ensure

    def make(mobile: str, role: str) -> User:
        staff_roles_ensure()
        user = User.objects.create_user(mobile=mobile, password="Staff-Pass-2026-x", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def issuer(db: None, make_staff: Callable[[str, str], User]) -> User:
    from certdesk.accounts.roles import ROLE_ISSUER

    return make_staff("13900000021", ROLE_ISSUER)


@pytest.fixture
def file_ca(db: None, settings: object, tmp_path: Any) -> Any:
    """An initialised CA hierarchy with its keys in encrypted files under tmp_path."""
    from certdesk.pki.services import ca_hierarchy_init, pki_caches_clear

    settings.PKI_KEY_DIR = tmp_path / "pki-keys"  # type: ignore[attr-defined]
    settings.PKI_KEY_PASSPHRASE = "test-passphrase"  # type: ignore[attr-defined]
    settings.PKI_KEY_BACKEND = "file"  # type: ignore[attr-defined]
    pki_caches_clear()
    result = ca_hierarchy_init()
    yield result
    pki_caches_clear()


@pytest.fixture
def stock_key(db: None) -> Any:
    from certdesk.tokens.services import usb_key_create

    return usb_key_create(sn="5500000001", so_pin="SoPin-123456", initial_user_pin="12345678")
