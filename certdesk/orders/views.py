"""The customer's order wizard (项目选择 → 录入信息 → 打印申请表 → 上传资料 → 提交)
and 订单查询. Views parse input and call services; every lookup is by the
order number *and* the logged-in owner, so another account gets 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from certdesk.accounts.models import User
from certdesk.catalog.selectors import required_materials_list
from certdesk.core.choices import BusinessType
from certdesk.core.errors import DomainError
from certdesk.materials.models import MaterialUpload
from certdesk.orders.application_form import application_form_render_pdf
from certdesk.orders.follow_up import REDISPATCHABLE, order_create_for_key, order_create_redispatch
from certdesk.orders.forms import OrderInfoForm
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.selectors import (
    order_application_form_data,
    order_events,
    order_for_owner,
    order_keys_for_owner,
    order_list_for_owner,
    order_missing_items,
)
from certdesk.orders.services import (
    order_agreement_accept,
    order_cancel,
    order_create,
    order_info_save,
    order_submit,
)
from certdesk.orders.transitions import CANCELLABLE, EDITABLE
from certdesk.payments.services import payment_cancel_paid_order


def _owned(request: HttpRequest, number: str) -> Order:
    assert isinstance(request.user, User)
    order = order_for_owner(number=number, user=request.user)
    if order is None:
        raise Http404
    return order


def _editable_or_detail(request: HttpRequest, order: Order) -> HttpResponse | None:
    if order.status not in EDITABLE:
        messages.info(request, f"订单{order.number}已提交，当前状态：{order.get_status_display()}。")
        return redirect("orders:detail", number=order.number)
    return None


def _int(value: str | None) -> int | None:
    try:
        return int(value or "")
    except ValueError:
        return None


@login_required
@require_POST
def order_start(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    business = request.POST.get("business", "")
    certificate_type_id = _int(request.POST.get("certificate_type"))
    years = _int(request.POST.get("years"))
    if business not in BusinessType.values or certificate_type_id is None or years is None:
        messages.error(request, "请完整选择所属区域、行业、项目大类、子项目、证书类别和有效期。")
        return redirect(reverse("catalog:select") + "?" + request.POST.urlencode())
    try:
        order = order_create(
            owner=request.user,
            business_type=BusinessType(business),
            certificate_type_id=certificate_type_id,
            years=years,
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(reverse("catalog:select") + f"?business={business}")
    return redirect("orders:info", number=order.number)


@login_required
def order_info(request: HttpRequest, number: str) -> HttpResponse:
    assert isinstance(request.user, User)
    order = _owned(request, number)
    if (response := _editable_or_detail(request, order)) is not None:
        return response
    draft = request.POST.get("action") == "save_draft"
    form = OrderInfoForm(request.POST or None, instance=order, draft=draft)
    if request.method == "POST":
        valid = form.is_valid()
        if draft:
            order_info_save(order=order, actor=request.user, info=form.to_info(), only=form.valid_field_names())
            if valid:
                messages.success(request, "草稿已保存，可随时在“订单查询”中继续办理。")
            else:
                messages.warning(request, "草稿已保存；标红的内容有误，未保存，请修改。")
        elif valid:
            order_info_save(order=order, actor=request.user, info=form.to_info())
            return redirect("orders:print", number=order.number)
    return render(request, "orders/info.html", {"order": order, "form": form, "step": 2})


@login_required
def order_print(request: HttpRequest, number: str) -> HttpResponse:
    assert isinstance(request.user, User)
    order = _owned(request, number)
    if (response := _editable_or_detail(request, order)) is not None:
        return response
    if request.method == "POST":
        if request.POST.get("agreement") != "on":
            messages.error(request, "请先阅读并勾选“已阅读并遵守《数字证书服务协议》”。")
        else:
            order_agreement_accept(order=order, actor=request.user)
            return redirect("orders:upload", number=order.number)
    materials = required_materials_list(
        certificate_type=order.certificate_type, business_type=BusinessType(order.business_type)
    )
    return render(request, "orders/print.html", {"order": order, "materials": materials, "step": 3})


@login_required
def order_form_pdf(request: HttpRequest, number: str) -> HttpResponse:
    order = _owned(request, number)
    pdf = application_form_render_pdf(data=order_application_form_data(order=order))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="application-{order.number}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def order_upload(request: HttpRequest, number: str) -> HttpResponse:
    from certdesk.materials.views import material_slots

    order = _owned(request, number)
    if (response := _editable_or_detail(request, order)) is not None:
        return response
    return render(request, "orders/upload.html", {"order": order, "slots": material_slots(order=order), "step": 4})


@login_required
def order_submit_view(request: HttpRequest, number: str) -> HttpResponse:
    assert isinstance(request.user, User)
    order = _owned(request, number)
    if (response := _editable_or_detail(request, order)) is not None:
        return response
    if request.method == "POST":
        try:
            order = order_submit(order=order, actor=request.user)
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, f"订单{order.number}已提交，审核一般在1个工作日内完成。审核结果将通过短信、邮件或微信通知您。"
            )
            return redirect("orders:detail", number=order.number)
    return render(
        request,
        "orders/submit.html",
        {"order": order, "missing": order_missing_items(order=order), "step": 5},
    )


# Orders per page of 订单查询, newest first.
ORDERS_PER_PAGE = 20


@login_required
def order_list(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    # get_page: a page number that is not one shows page 1, one past the end the last page.
    page = Paginator(order_list_for_owner(user=request.user), ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "orders/list.html", {"page": page})


@login_required
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    order = _owned(request, number)
    uploads = MaterialUpload.objects.filter(order=order).select_related("kind")
    return render(
        request,
        "orders/detail.html",
        {
            "order": order,
            "events": order_events(order=order),
            "uploads": uploads,
            "certificates": order.certificates.exclude(serial=None).order_by("role"),
            "editable": order.status in EDITABLE,
            "cancellable": order.status in CANCELLABLE,
            "refundable": order.status == OrderStatus.PAID,
            "OrderStatus": OrderStatus,
        },
    )


@login_required
@require_POST
def order_cancel_view(request: HttpRequest, number: str) -> HttpResponse:
    assert isinstance(request.user, User)
    order = _owned(request, number)
    reason = request.POST.get("reason", "")[:200]
    try:
        if order.status == OrderStatus.PAID:
            # Paid but nothing produced yet: cancelling means a full refund.
            payment_cancel_paid_order(order=order, actor=request.user, reason=reason)
            messages.success(request, f"订单{order.number}已取消，款项将原路退回。")
        else:
            order_cancel(order=order, actor=request.user, reason=reason)
            messages.success(request, f"订单{order.number}已取消。")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("orders:detail", number=order.number)


@login_required
def order_start_follow_up(request: HttpRequest, business: str) -> HttpResponse:
    """证书更新/变更/补办/在线解锁/证书注销 start from the key; 改派 from an order."""
    assert isinstance(request.user, User)
    if business not in BusinessType.values or business == BusinessType.NEW:
        raise Http404
    business_type = BusinessType(business)
    error = ""
    if request.method == "POST":
        try:
            if business_type == BusinessType.REDISPATCH:
                order = order_create_redispatch(owner=request.user, original_number=request.POST.get("original", ""))
            else:
                order = order_create_for_key(
                    owner=request.user,
                    business_type=business_type,
                    key_sn=request.POST.get("key_sn", "")[:32],
                    uscc=request.POST.get("uscc", "")[:40],
                    years=_int(request.POST.get("years")) if business_type == BusinessType.RENEW else None,
                )
        except DomainError as refused:
            error = refused.message
        else:
            return redirect("orders:info", number=order.number)
    context = {
        "business_type": business_type,
        "error": error,
        # The expiry reminder links here with the key's SN and USCC filled in.
        "values": request.POST or request.GET,
        "my_keys": order_keys_for_owner(user=request.user),
        "redispatchable": order_list_for_owner(user=request.user).filter(
            status__in=REDISPATCHABLE, business_type__in=["new", "reissue", "redispatch"]
        ),
        "years_choices": range(1, 6),
    }
    return render(request, "orders/start_follow_up.html", context)
