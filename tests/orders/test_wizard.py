"""证书新办 through HTTP, as the customer walks it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from certdesk.audit.models import AuditRecord
from certdesk.catalog.models import CertificateType
from certdesk.orders.models import Order, OrderEvent, OrderStatus
from tests.factories import VALID_INFO

pytestmark = pytest.mark.django_db


def test_whole_wizard_to_submitted(
    customer_client: Client, certificate_type: CertificateType, upload_all: Callable[[Client, Order], None]
) -> None:
    sub = certificate_type.sub_project
    path = {
        "business": "new",
        "region": sub.category.industry.region_id,
        "industry": sub.category.industry_id,
        "category": sub.category_id,
        "sub_project": sub.pk,
        "certificate_type": certificate_type.pk,
        "years": 2,
    }
    # 项目选择 → 下一步
    response = customer_client.post(reverse("orders:create"), path)
    assert response.status_code == 302
    order = Order.objects.get()
    assert response["Location"] == reverse("orders:info", args=[order.number])
    assert order.status == OrderStatus.DRAFT
    assert order.years == 2
    # 录入信息
    page = customer_client.get(response["Location"]).content.decode()
    for section in ["证书信息", "单位信息", "发票信息", "经办人信息", "领取方式"]:
        assert section in page
    response = customer_client.post(reverse("orders:info", args=[order.number]), VALID_INFO)
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.org_name == VALID_INFO["cert_org_name"]  # "same as certificate" copied it
    assert order.org_uscc == "91110000600037341L"
    # 打印申请表: the agreement must be ticked
    print_url = reverse("orders:print", args=[order.number])
    page = customer_client.post(print_url, {}, follow=True).content.decode()
    assert "请先阅读并勾选" in page
    assert customer_client.post(print_url, {"agreement": "on"}).status_code == 302
    # 上传资料
    page = customer_client.get(reverse("orders:upload", args=[order.number])).content.decode()
    for name in ["数字证书申请表", "签章取样表", "营业执照", "法人代表身份证", "经办人身份证"]:
        assert name in page
    assert "手机扫码上传" in page
    upload_all(customer_client, order)
    # 提交
    submit_url = reverse("orders:submit", args=[order.number])
    response = customer_client.post(submit_url, follow=True)
    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED
    assert order.submitted_at is not None
    assert "1个工作日" in response.content.decode()
    kinds = list(OrderEvent.objects.filter(order=order).values_list("kind", flat=True))
    assert kinds[0] == "created"
    assert kinds[-1] == "submitted"
    assert kinds.count("material_uploaded") == 5
    assert AuditRecord.objects.filter(action="order.submitted", object_id=order.number).exists()
    # 订单查询 shows it 待审核
    listing = customer_client.get(reverse("orders:list")).content.decode()
    assert order.number in listing
    assert "待审核" in listing


def test_cannot_submit_incomplete_order(customer_client: Client, draft_order: Order) -> None:
    response = customer_client.post(reverse("orders:submit", args=[draft_order.number]), follow=True)
    page = response.content.decode()
    assert "还不能提交" in page
    assert "请上传数字证书申请表" in page
    draft_order.refresh_from_db()
    assert draft_order.status == OrderStatus.DRAFT


def test_incomplete_cascade_is_sent_back(customer_client: Client, certificate_type: CertificateType) -> None:
    response = customer_client.post(
        reverse("orders:create"), {"business": "new", "certificate_type": certificate_type.pk}
    )
    assert response.status_code == 302
    assert reverse("catalog:select") in response["Location"]
    assert not Order.objects.exists()


def test_years_not_offered_is_refused(customer_client: Client, certificate_type: CertificateType) -> None:
    response = customer_client.post(
        reverse("orders:create"), {"business": "new", "certificate_type": certificate_type.pk, "years": 9}, follow=True
    )
    assert "有效期" in response.content.decode()
    assert not Order.objects.exists()


def test_draft_kept_and_continued_later(customer_client: Client, draft_order: Order) -> None:
    partial = {
        "cert_org_name": "草稿公司",
        "cert_uscc": "91500000000000000",
        "agent_name": "王五",
        "action": "save_draft",
    }
    response = customer_client.post(reverse("orders:info", args=[draft_order.number]), partial)
    assert response.status_code == 200
    page = response.content.decode()
    assert "统一社会信用代码应为18位" in page  # the invalid one is reported …
    draft_order.refresh_from_db()
    assert draft_order.cert_org_name == "草稿公司"  # … the valid ones are kept
    assert draft_order.agent_name == "王五"
    assert draft_order.cert_uscc == ""
    listing = customer_client.get(reverse("orders:list")).content.decode()
    assert "继续办理" in listing
    page = customer_client.get(reverse("orders:info", args=[draft_order.number])).content.decode()
    assert 'value="草稿公司"' in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cert_uscc", "91500000000000000", "统一社会信用代码应为18位"),
        ("cert_uscc", "91110000600037341A", "校验位不正确"),
        ("legal_rep_id_number", "91500000000000000", "身份证号码应为18位"),
        ("legal_rep_id_number", "360426199102300071", "出生日期"),
        ("agent_id_number", "360426199101010072", "校验位不正确"),
        ("legal_rep_mobile", "12345678901", "手机号码"),
        ("agent_mobile", "1350000000", "手机号码"),
        ("recipient_phone", "abc", "手机号码"),
        ("invoice_taxpayer_id", "123", "统一社会信用代码应为18位"),
    ],
)
def test_invalid_identifier_refused_at_its_field(
    customer_client: Client, draft_order: Order, field: str, value: str, message: str
) -> None:
    response = customer_client.post(reverse("orders:info", args=[draft_order.number]), {**VALID_INFO, field: value})
    assert response.status_code == 200
    form = response.context["form"]
    assert message in " ".join(form.errors[field])
    assert list(form.errors) == [field]  # only that field
    page = response.content.decode()
    assert 'value="李四"' in page  # everything else is kept


def test_special_invoice_requires_all_buyer_fields(customer_client: Client, draft_order: Order) -> None:
    response = customer_client.post(
        reverse("orders:info", args=[draft_order.number]), {**VALID_INFO, "invoice_type": "special"}
    )
    errors = response.context["form"].errors
    assert set(errors) == {"invoice_address", "invoice_phone", "invoice_bank", "invoice_account"}
    assert "请填写开户银行" in errors["invoice_bank"][0]


def test_pickup_needs_no_address(customer_client: Client, draft_order: Order) -> None:
    data = {
        **VALID_INFO,
        "delivery_method": "pickup",
        "shipping_address": "",
        "recipient_name": "",
        "recipient_phone": "",
    }
    assert customer_client.post(reverse("orders:info", args=[draft_order.number]), data).status_code == 302


def test_mail_needs_address(customer_client: Client, draft_order: Order) -> None:
    response = customer_client.post(
        reverse("orders:info", args=[draft_order.number]), {**VALID_INFO, "shipping_address": ""}
    )
    assert "shipping_address" in response.context["form"].errors


def test_id_numbers_are_sealed_at_rest(complete_order: Order) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT legal_rep_id_number, agent_id_number FROM orders_order WHERE id = %s", [complete_order.pk]
        )
        stored = cursor.fetchone()
    assert all(value.startswith("sealed:") for value in stored)
    assert "360426199101010071" not in "".join(stored)
    assert complete_order.legal_rep_id_number == "360426199101010071"


def test_submitted_order_is_read_only(customer_client: Client, complete_order: Order) -> None:
    customer_client.post(reverse("orders:submit", args=[complete_order.number]))
    response = customer_client.post(reverse("orders:info", args=[complete_order.number]), VALID_INFO)
    assert response.status_code == 302
    assert response["Location"] == reverse("orders:detail", args=[complete_order.number])


def test_application_form_pdf_carries_the_entered_data(customer_client: Client, complete_order: Order) -> None:
    import subprocess

    response = customer_client.get(reverse("orders:form_pdf", args=[complete_order.number]))
    assert response["Content-Type"] == "application/pdf"
    pdf = b"".join(response.streaming_content) if response.streaming else response.content
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    for expected in [
        "重庆东方测试有限公司",
        "91110000600037341L",
        "张三",
        "360426199101010071",
        "李四",
        "11010519491231002X",
        complete_order.number,
        "重庆市公共资源交易中心",
    ]:
        assert expected in text, expected
