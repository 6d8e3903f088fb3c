"""上传资料 through HTTP: PC upload per slot, refusals, phone (QR) tokens, file serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.catalog.models import MaterialKind
from certdesk.core.choices import BusinessType
from certdesk.materials.models import MaterialUpload
from certdesk.materials.services import PHONE_TOKEN_SALT, phone_upload_token_make
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.services import order_create

pytestmark = pytest.mark.django_db


def _upload(client: Client, order: Order, kind: str, name: str, data: bytes, htmx: bool = True) -> str:
    file = SimpleUploadedFile(name, data, content_type="image/png")
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.post(reverse("materials:upload", args=[order.number, kind]), {"file": file}, **headers)
    assert response.status_code == 200 if htmx else 302
    return response.content.decode()


@pytest.mark.parametrize(
    ("fmt", "name"), [("JPEG", "a.jpg"), ("JPEG", "a.jpeg"), ("BMP", "a.bmp"), ("GIF", "a.gif"), ("PNG", "a.png")]
)
def test_each_format_is_accepted(
    customer_client: Client, draft_order: Order, image_bytes: Callable[..., bytes], fmt: str, name: str
) -> None:
    fragment = _upload(customer_client, draft_order, "business_licence", name, image_bytes(fmt))
    assert "已上传" in fragment
    upload = MaterialUpload.objects.get(order=draft_order)
    assert upload.extension in {"jpg", "bmp", "gif", "png"}
    # Stored under a random name (a substring check failed whenever the random name ended in "a").
    stored = Path(upload.file.name)
    assert stored.stem != Path(name).stem and len(stored.stem) >= 32
    served = customer_client.get(reverse("materials:file", args=[draft_order.number, "business_licence"]))
    assert served["Content-Type"] == upload.content_type
    assert served["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 1024 * 1024 + 10), "超过"),
        ("setup.jpg", b"MZ\x90\x00" + b"\0" * 200, "不是图片"),
        ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "仅支持"),
        ("x.html", b"<html><body>hi</body></html>", "仅支持"),
    ],
)
def test_bad_files_refused_and_other_slots_kept(
    customer_client: Client,
    draft_order: Order,
    image_bytes: Callable[..., bytes],
    name: str,
    payload: bytes,
    message: str,
) -> None:
    _upload(customer_client, draft_order, "agent_id", "ok.png", image_bytes("PNG"))
    fragment = _upload(customer_client, draft_order, "business_licence", name, payload)
    assert message in fragment
    assert 'role="alert"' in fragment
    assert list(MaterialUpload.objects.filter(order=draft_order).values_list("kind__code", flat=True)) == ["agent_id"]


def test_truncated_image_refused(
    customer_client: Client, draft_order: Order, image_bytes: Callable[..., bytes]
) -> None:
    data = image_bytes("PNG", size=(300, 300), color="red")
    fragment = _upload(customer_client, draft_order, "business_licence", "cut.png", data[: len(data) // 2])
    assert "不完整" in fragment or "损坏" in fragment
    assert not MaterialUpload.objects.exists()


def test_replace_keeps_one_file_per_slot(
    customer_client: Client, draft_order: Order, image_bytes: Callable[..., bytes]
) -> None:
    _upload(customer_client, draft_order, "business_licence", "a.png", image_bytes("PNG", color="red"))
    _upload(customer_client, draft_order, "business_licence", "b.png", image_bytes("PNG", color="blue"))
    assert MaterialUpload.objects.filter(order=draft_order).count() == 1


def test_no_js_upload_error_is_a_message(customer_client: Client, draft_order: Order) -> None:
    file = SimpleUploadedFile("x.html", b"<html></html>", content_type="text/html")
    response = customer_client.post(
        reverse("materials:upload", args=[draft_order.number, "business_licence"]), {"file": file}, follow=True
    )
    assert "营业执照" in response.content.decode()
    assert "仅支持" in response.content.decode()


def test_upload_after_submit_refused(
    customer_client: Client, complete_order: Order, image_bytes: Callable[..., bytes]
) -> None:
    customer_client.post(reverse("orders:submit", args=[complete_order.number]))
    complete_order.refresh_from_db()
    assert complete_order.status == OrderStatus.SUBMITTED
    fragment = _upload(customer_client, complete_order, "business_licence", "a.png", image_bytes("PNG", color="red"))
    assert "不能再修改" in fragment


# 手机扫码上传


def _kind(code: str) -> MaterialKind:
    return MaterialKind.objects.get(code=code)


def test_phone_upload_with_token_no_login(
    client: Client, draft_order: Order, image_bytes: Callable[..., bytes]
) -> None:
    token = phone_upload_token_make(order=draft_order, kind=_kind("agent_id"))
    url = reverse("materials:phone", args=[token])
    assert "经办人身份证" in client.get(url).content.decode()
    file = SimpleUploadedFile("IMG_0001.JPG", image_bytes("JPEG"), content_type="image/jpeg")
    assert "上传成功" in client.post(url, {"file": file}).content.decode()
    upload = MaterialUpload.objects.get(order=draft_order)
    assert upload.kind.code == "agent_id"
    assert upload.channel == "phone"


def test_qr_on_pc_page_carries_a_phone_link(customer_client: Client, draft_order: Order) -> None:
    fragment = customer_client.get(
        reverse("materials:phone_qr", args=[draft_order.number, "agent_id"])
    ).content.decode()
    assert "<svg" in fragment
    assert "30分钟" in fragment


def test_expired_token_refused(client: Client, draft_order: Order, monkeypatch: pytest.MonkeyPatch) -> None:
    token = phone_upload_token_make(order=draft_order, kind=_kind("agent_id"))
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 31 * 60)
    response = client.get(reverse("materials:phone", args=[token]))
    assert response.status_code == 403
    assert "已过期" in response.content.decode()


def test_token_cannot_be_moved_to_another_slot_or_order(
    client: Client, draft_order: Order, customer: User, image_bytes: Callable[..., bytes]
) -> None:
    token = phone_upload_token_make(order=draft_order, kind=_kind("agent_id"))
    other = order_create(
        owner=customer, business_type=BusinessType.NEW, certificate_type_id=draft_order.certificate_type_id, years=1
    )
    # Edit the signed payload to point at another slot, or another order: the signature no longer fits.
    value = signing.loads(token, salt=PHONE_TOKEN_SALT)
    for forged in ({**value, "k": _kind("business_licence").pk}, {**value, "o": other.pk}):
        body = signing.dumps(forged, salt=PHONE_TOKEN_SALT + "-attacker")
        response = client.get(reverse("materials:phone", args=[body]))
        assert response.status_code == 403
    # A slot the order does not have is refused even with a genuine signature.
    wrong_slot = phone_upload_token_make(order=draft_order, kind=_kind("situation_statement"))
    assert client.get(reverse("materials:phone", args=[wrong_slot])).status_code == 403
    file = SimpleUploadedFile("a.png", image_bytes("PNG"), content_type="image/png")
    assert client.post(reverse("materials:phone", args=[wrong_slot]), {"file": file}).status_code == 403
    assert not MaterialUpload.objects.exists()


def test_phone_page_after_submit_offers_no_upload(
    client: Client, customer_client: Client, complete_order: Order, image_bytes: Callable[..., bytes]
) -> None:
    token = phone_upload_token_make(order=complete_order, kind=_kind("agent_id"))
    customer_client.post(reverse("orders:submit", args=[complete_order.number]))
    client.logout()
    page = client.get(reverse("materials:phone", args=[token])).content.decode()
    assert "已提交" in page
    file = SimpleUploadedFile("a.png", image_bytes("PNG", color="red"), content_type="image/png")
    client.post(reverse("materials:phone", args=[token]), {"file": file})
    assert MaterialUpload.objects.get(order=complete_order, kind__code="agent_id").channel == "pc"
