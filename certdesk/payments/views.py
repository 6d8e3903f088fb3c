"""The customer's payment page (款项支付), its status fragment (polled by htmx),
the gateways' callback endpoint and the sandbox's 模拟支付 page. Views parse
and call services; every order lookup is by number *and* owner (404 otherwise)."""

from __future__ import annotations

from typing import Any

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from certdesk.accounts.models import User
from certdesk.core.errors import DomainError
from certdesk.core.http import client_ip
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.selectors import order_for_owner
from certdesk.payments import conf
from certdesk.payments.errors import GatewayDisabled, GatewayUnavailable
from certdesk.payments.gateways import LABELS
from certdesk.payments.gateways.sandbox import sandbox_notify, sandbox_trade_get, sandbox_trade_pay
from certdesk.payments.models import Payment, PaymentStatus
from certdesk.payments.selectors import order_is_paid, order_purpose, payment_get, payment_latest
from certdesk.payments.services import payment_callback_receive, payment_start


def _owned(request: HttpRequest, number: str) -> Order:
    assert isinstance(request.user, User)
    order = order_for_owner(number=number, user=request.user)
    if order is None:
        raise Http404
    return order


def _state(order: Order, payment: Payment | None) -> str:
    if order_is_paid(order=order):
        return "paid"
    if order.status == OrderStatus.REFUNDED:
        return "refunded"
    if order.status != OrderStatus.AWAITING_PAYMENT:
        return "not_payable"
    if payment is None:
        return "choose"
    if payment.status == PaymentStatus.PENDING:
        if payment.expires_at <= timezone.now():
            return "expired"
        return "pending" if payment.code_url else "preparing"
    if payment.status == PaymentStatus.EXPIRED:
        return "expired"
    return "closed"


def _status_context(request: HttpRequest, order: Order, payment: Payment | None) -> dict[str, Any]:
    state = _state(order, payment)
    context: dict[str, Any] = {
        "order": order,
        "payment": payment,
        "state": state,
        "poll": state in ("pending", "preparing"),
        "gateway_label": LABELS.get(payment.gateway, "") if payment else "",
        "status_url": reverse("payments:status", kwargs={"number": order.number})
        + (f"?payment={payment.merchant_no}" if payment else ""),
    }
    if state == "pending" and payment is not None:
        # The sandbox hands out a path; a phone needs the host the customer is using.
        content = request.build_absolute_uri(payment.code_url) if payment.code_url.startswith("/") else payment.code_url
        context["qr_svg"] = segno.make(content, error="m").svg_inline(scale=5, title="扫码付款")
        context["qr_link"] = content if payment.gateway == "sandbox" else ""
    return context


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def payment_page(request: HttpRequest, number: str) -> HttpResponse:
    order = _owned(request, number)
    if request.method == "POST":
        assert isinstance(request.user, User)
        try:
            started = payment_start(order=order, gateway=request.POST.get("gateway", ""), actor=request.user)
        except DomainError as error:
            messages.error(request, error.message)
            return redirect("payments:pay", number=order.number)
        return redirect(reverse("payments:pay", kwargs={"number": order.number}) + f"?payment={started.merchant_no}")
    merchant_no = request.GET.get("payment", "")
    payment = payment_get(order=order, merchant_no=merchant_no) if merchant_no else payment_latest(order=order)
    context = _status_context(request, order, payment)
    context.update(
        purpose=order_purpose(order=order),
        gateways=[{"code": code, "label": LABELS[code]} for code in conf.enabled_gateways()],
    )
    return render(request, "payments/pay.html", context)


@login_required
@never_cache
@require_GET
def payment_status(request: HttpRequest, number: str) -> HttpResponse:
    order = _owned(request, number)
    merchant_no = request.GET.get("payment", "")
    payment = payment_get(order=order, merchant_no=merchant_no) if merchant_no else payment_latest(order=order)
    return render(request, "payments/_status.html", _status_context(request, order, payment))


@csrf_exempt  # called by the gateway; authenticated by its signature instead
@require_POST
def payment_callback(request: HttpRequest, gateway: str) -> HttpResponse:
    try:
        reply = payment_callback_receive(
            gateway=gateway, body=request.body, headers=dict(request.headers), remote_addr=client_ip(request)
        )
    except GatewayDisabled:
        raise Http404 from None
    except GatewayUnavailable:
        return HttpResponse(status=503)
    return HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)


@never_cache
@require_http_methods(["GET", "POST"])
def sandbox_pay(request: HttpRequest, merchant_no: str) -> HttpResponse:
    """The sandbox's "scan to pay" page: what a wallet app shows after scanning. No portal
    login — the payer need not be the customer."""
    if "sandbox" not in conf.enabled_gateways():
        raise Http404
    trade = sandbox_trade_get(merchant_no=merchant_no)
    if trade is None:
        raise Http404
    if request.method == "POST":
        try:
            sandbox_trade_pay(merchant_no=merchant_no)
        except DomainError as error:
            messages.error(request, error.message)
            return redirect("payments:sandbox_pay", merchant_no=merchant_no)
        reply = sandbox_notify(merchant_no=merchant_no)
        if 200 <= reply.status < 300:
            messages.success(request, "支付成功，已通知商户。")
        else:
            messages.error(request, f"支付成功，但商户未确认收到通知（{reply.status}），稍后将自动补查。")
        return redirect("payments:sandbox_pay", merchant_no=merchant_no)
    return render(
        request,
        "payments/sandbox_pay.html",
        {"trade": trade, "expired": trade.expires_at <= timezone.now(), "merchant": conf.sandbox_merchant_id()},
    )
