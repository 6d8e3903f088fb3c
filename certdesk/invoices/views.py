from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from certdesk.accounts.models import User
from certdesk.accounts.staff import staff_required
from certdesk.core.errors import DomainError
from certdesk.invoices.models import Invoice, InvoiceStatus
from certdesk.invoices.services import invoice_resend


@login_required
def invoice_list(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    invoices = Invoice.objects.filter(order__owner=request.user).select_related("order")
    return render(request, "invoices/list.html", {"invoices": invoices})


@login_required
def invoice_pdf(request: HttpRequest, number: str) -> FileResponse:
    assert isinstance(request.user, User)
    invoice = Invoice.objects.filter(
        order__number=number, order__owner=request.user, status=InvoiceStatus.ISSUED
    ).first()
    if invoice is None:
        raise Http404
    response = FileResponse(invoice.pdf.open("rb"), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="invoice-{number}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@staff_required("orders.view_order")
def staff_invoice_list(request: HttpRequest) -> HttpResponse:
    invoices = Invoice.objects.select_related("order").order_by("-created_at")
    query = request.GET.get("q", "").strip()[:40]
    if query:
        invoices = invoices.filter(order__number__icontains=query) | invoices.filter(buyer_name__icontains=query)
    page = Paginator(invoices, 50).get_page(request.GET.get("page"))
    return render(request, "invoices/staff_list.html", {"page": page, "q": query})


@staff_required("orders.view_order")
@require_POST
def staff_invoice_resend(request: HttpRequest, number: str) -> HttpResponse:
    assert isinstance(request.user, User)
    invoice = Invoice.objects.filter(order__number=number).select_related("order").first()
    if invoice is None:
        raise Http404
    try:
        invoice_resend(invoice=invoice, actor=request.user)
        messages.success(request, f"发票已重新发送到 {invoice.email}。")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("invoices:staff_list")
