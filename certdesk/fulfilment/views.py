"""制证与发货 for staff with the issuer role; 确认收货 for the customer."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from certdesk.accounts.models import User
from certdesk.accounts.staff import staff_required
from certdesk.core.errors import DomainError
from certdesk.fulfilment.keywork import agent_pairing_create, key_operation_for
from certdesk.fulfilment.models import KeyOperation
from certdesk.fulfilment.selectors import fulfilment_queue
from certdesk.fulfilment.services import (
    pickup_hand_over,
    pickup_ready,
    remote_assistance_complete,
    shipment_confirm_receipt,
    shipment_create,
)
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.selectors import order_for_owner
from certdesk.review.selectors import staff_order_or_404

ISSUE = "orders.issue_order"


@staff_required(ISSUE)
def queue(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "fulfilment/queue.html",
        {
            "to_write": fulfilment_queue(status=OrderStatus.PAID).filter(business_type__in=["new", "reissue"]),
            "to_ship": fulfilment_queue(status=OrderStatus.TO_SHIP),
            "awaiting_pickup": fulfilment_queue(status=OrderStatus.AWAITING_PICKUP),
            "station_enabled": True,
        },
    )


@staff_required(ISSUE)
@require_POST
def ship(request: HttpRequest, number: str) -> HttpResponse:
    order = staff_order_or_404(number)
    assert isinstance(request.user, User)
    try:
        shipment = shipment_create(
            order=order,
            issuer=request.user,
            courier=request.POST.get("courier", "")[:50],
            tracking_no=request.POST.get("tracking_no", "")[:50],
        )
        messages.success(request, f"订单 {order.number} 已发货：{shipment.courier} {shipment.tracking_no}。")
    except DomainError as error:
        messages.error(request, f"订单 {order.number}：{error.message}")
    return redirect("fulfilment:queue")


@staff_required(ISSUE)
@require_POST
def ready_for_pickup(request: HttpRequest, number: str) -> HttpResponse:
    order = staff_order_or_404(number)
    assert isinstance(request.user, User)
    try:
        pickup_ready(order=order, issuer=request.user)
        messages.success(request, f"订单 {order.number} 已通知客户凭取件码自提。")
    except DomainError as error:
        messages.error(request, f"订单 {order.number}：{error.message}")
    return redirect("fulfilment:queue")


@staff_required(ISSUE)
@require_POST
def hand_over(request: HttpRequest, number: str) -> HttpResponse:
    order = staff_order_or_404(number)
    assert isinstance(request.user, User)
    try:
        pickup_hand_over(order=order, staff=request.user, code=request.POST.get("code", "")[:12])
        messages.success(request, f"订单 {order.number} 已交付，办理完成。")
    except DomainError as error:
        messages.error(request, f"订单 {order.number}：{error.message}")
    return redirect("fulfilment:queue")


@login_required
@require_POST
def confirm_receipt(request: HttpRequest, number: str) -> HttpResponse:
    assert isinstance(request.user, User)
    order = order_for_owner(number=number, user=request.user)
    if order is None:
        raise Http404
    try:
        shipment_confirm_receipt(order=order, customer=request.user)
        messages.success(request, "已确认收货，业务办理完成。")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("orders:detail", number=order.number)


def _pairing_response(request: HttpRequest, order: Order, template: str) -> HttpResponse:
    assert isinstance(request.user, User)
    operation = key_operation_for(order)
    commands = {KeyOperation.WRITE: "enroll", KeyOperation.DOWNLOAD: "renew", KeyOperation.UNLOCK: "unlock"}
    context: dict[str, object] = {
        "order": order,
        "operation": operation,
        "agent_command": commands.get(operation, "") if operation else "",
    }
    if request.method == "POST":
        try:
            context["pairing"] = agent_pairing_create(order=order, actor=request.user)
        except DomainError as error:
            messages.error(request, error.message)
    return render(request, template, context)


@staff_required(ISSUE)
def station(request: HttpRequest, number: str) -> HttpResponse:
    """制证站: a one-time code for the agent on the station PC that writes a blank key."""
    return _pairing_response(request, staff_order_or_404(number), "fulfilment/station.html")


@login_required
def key_pairing(request: HttpRequest, number: str) -> HttpResponse:
    """The customer's 下载证书 / 解锁: a one-time code for the agent next to their key."""
    assert isinstance(request.user, User)
    order = order_for_owner(number=number, user=request.user)
    if order is None or key_operation_for(order) not in (KeyOperation.DOWNLOAD, KeyOperation.UNLOCK):
        raise Http404
    return _pairing_response(request, order, "fulfilment/key_pairing.html")


SUPPORT = "orders.support_order"


@staff_required(SUPPORT)
def support_queue(request: HttpRequest) -> HttpResponse:
    """远程协助 tickets: 11-series keys and online unlocks that failed half-way."""
    return render(
        request, "fulfilment/support.html", {"tickets": fulfilment_queue(status=OrderStatus.REMOTE_ASSISTANCE)}
    )


@staff_required(SUPPORT)
@require_POST
def support_done(request: HttpRequest, number: str) -> HttpResponse:
    order = staff_order_or_404(number)
    assert isinstance(request.user, User)
    try:
        remote_assistance_complete(order=order, staff=request.user, note=request.POST.get("note", ""))
        messages.success(request, f"订单 {order.number} 远程协助已完成。")
    except DomainError as error:
        messages.error(request, f"订单 {order.number}：{error.message}")
    return redirect("fulfilment:support")
