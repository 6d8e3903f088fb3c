"""The demo provider: numbers invoices itself and renders the e-invoice PDF
(WeasyPrint, the same CJK setup as the application form). Marked 演示 so it
cannot be mistaken for a tax invoice."""

from __future__ import annotations

import hashlib

from django.template.loader import render_to_string
from django.utils import timezone
from weasyprint import HTML

from certdesk.core.money import fen_to_yuan_text
from certdesk.invoices.providers.base import InvoiceProvider, InvoiceRequest, IssuedInvoice
from certdesk.orders.application_form import LocalOnlyURLFetcher


class DemoInvoiceProvider(InvoiceProvider):
    name = "demo"

    def issue(self, request: InvoiceRequest) -> IssuedInvoice:
        issued_at = timezone.localtime()
        # Deterministic per order, so issuing again yields the same number (as a real platform would).
        number = "DEMO" + str(int(hashlib.sha256(request.reference.encode()).hexdigest(), 16))[:12]
        html = render_to_string(
            "invoices/e_invoice.html",
            {
                "request": request,
                "number": number,
                "issued_at": issued_at,
                "amount": fen_to_yuan_text(request.amount_fen),
                "type_label": "增值税专用发票" if request.invoice_type == "special" else "普通电子发票",
            },
        )
        pdf = HTML(string=html, url_fetcher=LocalOnlyURLFetcher()).write_pdf()
        assert pdf is not None
        return IssuedInvoice(number=number, issued_at=issued_at, pdf=pdf)
