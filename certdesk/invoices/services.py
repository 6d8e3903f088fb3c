"""Invoices (发票): issued once per paid order through the configured provider,
then e-mailed to the address the customer gave."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from certdesk.accounts.models import User
from certdesk.audit.services import audit_log
from certdesk.core.errors import DomainError
from certdesk.invoices.models import Invoice, InvoiceStatus
from certdesk.invoices.providers.base import InvoiceProvider, InvoiceRequest
from certdesk.notifications.models import NotificationEvent
from certdesk.notifications.services import notification_send
from certdesk.orders.models import InvoiceType, Order
from certdesk.orders.notify import order_notification_context
from certdesk.orders.selectors import INVOICE_TYPES

_SPECIAL_FIELDS = ("buyer_taxpayer_id", "buyer_address", "buyer_phone", "buyer_bank", "buyer_account")


@cache
def invoice_provider() -> InvoiceProvider:
    provider: InvoiceProvider = import_string(settings.INVOICE_PROVIDER)()
    return provider


def invoice_record(*, order: Order) -> Invoice | None:
    """The order's invoice row, made once (a unique row per order), or None if it gets none."""
    if order.business_type not in INVOICE_TYPES or order.amount_fen <= 0 or not order.invoice_type:
        return None
    try:
        with transaction.atomic():
            invoice, _created = Invoice.objects.get_or_create(
                order=order,
                defaults={
                    "invoice_type": order.invoice_type,
                    "buyer_name": order.invoice_title or order.org_name,
                    "buyer_taxpayer_id": order.invoice_taxpayer_id,
                    "buyer_address": order.invoice_address,
                    "buyer_phone": order.invoice_phone,
                    "buyer_bank": order.invoice_bank,
                    "buyer_account": order.invoice_account,
                    "email": order.invoice_email or order.agent_email,
                    "amount_fen": order.amount_fen,
                    "provider": invoice_provider().name,
                },
            )
    except IntegrityError:  # a concurrent first call made it
        invoice = Invoice.objects.get(order=order)
    return invoice


def invoice_issue(*, invoice: Invoice) -> Invoice:
    """Ask the provider (outside any lock: it may be slow), store the PDF, e-mail it. Safe to repeat."""
    if invoice.status == InvoiceStatus.ISSUED:
        return invoice
    if invoice.invoice_type == InvoiceType.SPECIAL and not all(getattr(invoice, f) for f in _SPECIAL_FIELDS):
        raise DomainError(_("增值税专用发票需要完整的购买方信息。"), code="special_invoice_incomplete")
    order = invoice.order
    request = InvoiceRequest(
        reference=order.number,
        invoice_type=invoice.invoice_type,
        buyer_name=invoice.buyer_name,
        buyer_taxpayer_id=invoice.buyer_taxpayer_id,
        buyer_address=invoice.buyer_address,
        buyer_phone=invoice.buyer_phone,
        buyer_bank=invoice.buyer_bank,
        buyer_account=invoice.buyer_account,
        item_name=f"数字证书服务（{order.get_business_type_display()} {order.certificate_type.name}）",
        amount_fen=invoice.amount_fen,
    )
    try:
        issued = invoice_provider().issue(request)
    except Exception as exc:  # a provider outage must not lose the invoice: it stays pending for a retry
        Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.FAILED, last_error=str(exc)[:1000])
        raise
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status == InvoiceStatus.ISSUED:
            return locked
        locked.number = issued.number
        locked.issued_at = issued.issued_at
        locked.status = InvoiceStatus.ISSUED
        locked.last_error = ""
        locked.pdf.save(f"{order.number}.pdf", ContentFile(issued.pdf), save=False)
        locked.save()
        audit_log(action="invoice.issued", object_type="order", object_id=order.number, data={"number": issued.number})
        _send(locked, actor=None)
    return locked


def _send(invoice: Invoice, *, actor: User | None) -> None:
    order = invoice.order
    invoice.sent_count += 1
    invoice.save(update_fields=["sent_count"])
    with invoice.pdf.open("rb") as handle:
        pdf = handle.read()
    context = order_notification_context(order)
    context["email"] = invoice.email
    notification_send(
        user=order.owner,
        event=NotificationEvent.INVOICE_ISSUED,
        context=context,
        dedupe_key=f"invoice:{order.number}:{invoice.sent_count}",
        link=reverse("invoices:list"),
        attachments=[(f"发票-{order.number}.pdf", pdf, "application/pdf")],
    )
    if actor is not None:
        audit_log(action="invoice.resent", actor=actor.mobile, object_type="order", object_id=order.number)


@transaction.atomic
def invoice_resend(*, invoice: Invoice, actor: User) -> Invoice:
    locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if locked.status != InvoiceStatus.ISSUED:
        raise DomainError(_("发票尚未开具，不能重发。"), code="invoice_not_issued")
    _send(locked, actor=actor)
    return locked
