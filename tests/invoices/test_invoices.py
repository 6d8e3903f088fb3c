"""发票: issued once after payment, e-mailed with the PDF, listed for the customer, re-sent by staff."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.core.errors import DomainError
from certdesk.invoices.models import Invoice, InvoiceStatus
from certdesk.invoices.services import invoice_issue, invoice_record, invoice_resend
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.services import order_transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def awaiting(complete_order: Order) -> Order:
    Order.objects.filter(pk=complete_order.pk).update(status=OrderStatus.AWAITING_PAYMENT, amount_fen=70000)
    complete_order.refresh_from_db()
    return complete_order


def _pay(order: Order, capture: Callable) -> Order:
    with capture(execute=True):
        return order_transition(order=order, to_status=OrderStatus.PAID, actor=None, kind="paid")


def test_paid_order_gets_one_invoice_by_email(awaiting: Order, django_capture_on_commit_callbacks: Callable) -> None:
    _pay(awaiting, django_capture_on_commit_callbacks)
    invoice = Invoice.objects.get(order=awaiting)
    assert invoice.status == InvoiceStatus.ISSUED
    assert invoice.number.startswith("DEMO")
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=invoice.pdf.open("rb").read(), capture_output=True, check=True
    ).stdout.decode()
    assert "重庆东方测试有限公司" in text
    assert "700.00" in text
    assert "91110000600037341L" in text
    sent = [m for m in mail.outbox if "invoice@example.com" in m.to]
    assert len(sent) == 1
    assert sent[0].attachments[0][0] == f"发票-{awaiting.number}.pdf"
    # Issuing again does nothing twice.
    assert invoice_issue(invoice=invoice).number == invoice.number
    assert len([m for m in mail.outbox if "invoice@example.com" in m.to]) == 1


def test_free_and_uninvoiced_orders_get_none(complete_order: Order) -> None:
    Order.objects.filter(pk=complete_order.pk).update(business_type="change", amount_fen=0)
    complete_order.refresh_from_db()
    assert invoice_record(order=complete_order) is None


def test_special_invoice_needs_every_buyer_field(awaiting: Order) -> None:
    Order.objects.filter(pk=awaiting.pk).update(invoice_type="special", invoice_bank="")
    awaiting.refresh_from_db()
    invoice = invoice_record(order=awaiting)
    assert invoice is not None
    with pytest.raises(DomainError, match="增值税专用发票"):
        invoice_issue(invoice=invoice)


def test_customer_sees_own_invoices_only(
    customer_client: Client, awaiting: Order, other_customer: User, django_capture_on_commit_callbacks: Callable
) -> None:
    _pay(awaiting, django_capture_on_commit_callbacks)
    page = customer_client.get(reverse("invoices:list")).content.decode()
    assert awaiting.number in page
    pdf = customer_client.get(reverse("invoices:pdf", args=[awaiting.number]))
    assert pdf["Content-Type"] == "application/pdf"
    other = Client()
    other.force_login(other_customer)
    assert other.get(reverse("invoices:pdf", args=[awaiting.number])).status_code == 404
    assert awaiting.number not in other.get(reverse("invoices:list")).content.decode()


def test_staff_resend(
    awaiting: Order,
    issuer: User,
    staff_client_for: Callable[[User], Client],
    customer_client: Client,
    django_capture_on_commit_callbacks: Callable,
) -> None:
    _pay(awaiting, django_capture_on_commit_callbacks)
    assert customer_client.get(reverse("invoices:staff_list")).status_code == 404
    client = staff_client_for(issuer)
    assert awaiting.number in client.get(reverse("invoices:staff_list")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("invoices:staff_resend", args=[awaiting.number]))
    assert Invoice.objects.get(order=awaiting).sent_count == 2
    assert len([m for m in mail.outbox if "invoice@example.com" in m.to]) == 2


def test_provider_outage_leaves_it_for_retry(awaiting: Order, monkeypatch: pytest.MonkeyPatch) -> None:
    from certdesk.invoices.providers.demo import DemoInvoiceProvider

    invoice = invoice_record(order=awaiting)
    assert invoice is not None

    def down(self: object, request: object) -> None:
        raise ConnectionError("provider down")

    monkeypatch.setattr(DemoInvoiceProvider, "issue", down)
    with pytest.raises(ConnectionError):
        invoice_issue(invoice=invoice)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.FAILED
    monkeypatch.undo()
    assert invoice_issue(invoice=invoice).status == InvoiceStatus.ISSUED


def test_resend_before_issue_refused(awaiting: Order, issuer: User) -> None:
    invoice = invoice_record(order=awaiting)
    assert invoice is not None
    with pytest.raises(DomainError):
        invoice_resend(invoice=invoice, actor=issuer)
