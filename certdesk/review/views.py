"""The operator console: dashboard, review queue, review page and decisions."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from certdesk.accounts.models import User
from certdesk.accounts.staff import staff_required
from certdesk.audit.services import audit_log
from certdesk.core.choices import BusinessType
from certdesk.core.errors import DomainError
from certdesk.core.http import client_ip
from certdesk.materials.models import MaterialUpload
from certdesk.materials.views import material_slots
from certdesk.orders.application_form import application_form_render_pdf
from certdesk.orders.models import Order, OrderStatus
from certdesk.orders.selectors import order_application_form_data, order_events
from certdesk.orders.services import OrderInfo
from certdesk.review.reasons import REJECT_REASONS
from certdesk.review.selectors import (
    order_counts_by_status,
    order_validator_results,
    overdue_count,
    review_queue,
    staff_order_or_404,
)
from certdesk.review.services import (
    CLAIM_TTL,
    RejectReason,
    review_approve,
    review_claim,
    review_reject,
    review_release,
)

REVIEW = "orders.review_order"


def _reviewer(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@staff_required()
def dashboard(request: HttpRequest) -> HttpResponse:
    counts = order_counts_by_status()
    rows = [(status.label, status.value, counts.get(status.value, 0)) for status in OrderStatus]
    return render(request, "review/dashboard.html", {"rows": rows, "overdue": overdue_count()})


# A reviewer works the queue from the top (most urgent first); 20 rows fit one screen.
QUEUE_PAGE_SIZE = 20


@staff_required(REVIEW)
def queue(request: HttpRequest) -> HttpResponse:
    business_type = request.GET.get("type", "")
    if business_type not in BusinessType.values:
        business_type = ""
    page = Paginator(review_queue(business_type=business_type), QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "review/queue.html",
        {
            "page": page,
            "now": timezone.now(),
            "business_type": business_type,
            "types": BusinessType.choices,
            "claim_ttl": CLAIM_TTL,
        },
    )


# Resident ID numbers: shown masked; the reviewer reveals one to compare it with the ID card scan.
PII_FIELDS = ("legal_rep_id_number", "agent_id_number")


@dataclass(frozen=True)
class PiiValue:
    field: str
    value: str
    revealed: bool


def _pii_revealed(request: HttpRequest, order: Order, *, fields: list[str], via: str) -> None:
    """Who saw which full numbers of which order, how and from where: one audit record each time."""
    audit_log(
        action="pii.revealed",
        actor=_reviewer(request).mobile,
        object_type="order",
        object_id=order.number,
        ip=client_ip(request),
        data={"fields": fields, "via": via},
    )


@staff_required(REVIEW)
@require_http_methods(["GET", "POST"])
def review_page(request: HttpRequest, number: str) -> HttpResponse:
    """The review page; POST `reveal=<field>` (显示完整号码) shows that ID number in full, audited."""
    order = staff_order_or_404(number)
    revealed = ""
    if request.method == "POST":
        revealed = request.POST.get("reveal", "")
        if revealed not in PII_FIELDS:
            return HttpResponseBadRequest("unknown field")
        _pii_revealed(request, order, fields=[revealed], via="review_page")
        value = str(getattr(order, revealed) or "")
        if getattr(request, "htmx", False):
            response = render(
                request, "review/_pii.html", {"order": order, "item": PiiValue(revealed, value, revealed=True)}
            )
            response["Cache-Control"] = "private, no-store"
            return response
    pii = {name: PiiValue(name, str(getattr(order, name) or ""), revealed=name == revealed) for name in PII_FIELDS}
    field_targets = [
        (f"field:{name}", str(getattr(Order._meta.get_field(name), "verbose_name", name)))
        for name in OrderInfo.field_names()
        if getattr(order, name)
    ]
    slots = material_slots(order=order)
    material_targets = [(f"material:{slot.kind.code}", slot.kind.name) for slot in slots]
    claim = getattr(order, "review_claim", None)
    response = render(
        request,
        "review/review.html",
        {
            "order": order,
            "slots": slots,
            "events": order_events(order=order).select_related("actor"),
            "checks": order_validator_results(order=order),
            "targets": [("", "整个订单"), *material_targets, *field_targets],
            "reasons": REJECT_REASONS.items(),
            "claim": claim if claim and claim.claimed_at + CLAIM_TTL > timezone.now() else None,
            "decidable": order.status == OrderStatus.SUBMITTED,
            "reason_rows": range(3),
            "pii": pii,
        },
    )
    if revealed:
        response["Cache-Control"] = "private, no-store"
    return response


def _decide(request: HttpRequest, number: str, action: str) -> HttpResponse:
    order = staff_order_or_404(number)
    reviewer = _reviewer(request)
    try:
        if action == "claim":
            review_claim(order=order, reviewer=reviewer)
            messages.success(request, f"已领取订单 {order.number}。")
        elif action == "release":
            review_release(order=order, reviewer=reviewer)
            messages.info(request, f"已释放订单 {order.number}。")
        elif action == "approve":
            order = review_approve(order=order, reviewer=reviewer, note=request.POST.get("note", "")[:500])
            messages.success(request, f"订单 {order.number} 审核通过，状态：{order.get_status_display()}。")
            return redirect("review:queue")
        else:
            reasons = _reasons_from_post(request, order)
            review_reject(order=order, reviewer=reviewer, reasons=reasons)
            messages.success(request, f"订单 {order.number} 已退回，原因已通知客户。")
            return redirect("review:queue")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("review:order", number=order.number)


def _reasons_from_post(request: HttpRequest, order: Order) -> list[RejectReason]:
    labels = {"": ""}
    labels.update(
        {
            f"field:{name}": str(getattr(Order._meta.get_field(name), "verbose_name", name))
            for name in OrderInfo.field_names()
        }
    )
    labels.update({f"material:{slot.kind.code}": slot.kind.name for slot in material_slots(order=order)})
    reasons = []
    for target, code, text in zip(
        request.POST.getlist("target"), request.POST.getlist("code"), request.POST.getlist("text"), strict=False
    ):
        if not code and not text.strip():
            continue
        if target not in labels:
            raise DomainError("退回原因指向的字段或材料不存在。", code="unknown_target")
        reasons.append(RejectReason(target=target, target_label=labels[target], code=code or "other", text=text[:300]))
    return reasons


@staff_required(REVIEW)
@require_POST
def claim(request: HttpRequest, number: str) -> HttpResponse:
    return _decide(request, number, "claim")


@staff_required(REVIEW)
@require_POST
def release(request: HttpRequest, number: str) -> HttpResponse:
    return _decide(request, number, "release")


@staff_required(REVIEW)
@require_POST
def approve(request: HttpRequest, number: str) -> HttpResponse:
    return _decide(request, number, "approve")


@staff_required(REVIEW)
@require_POST
def reject(request: HttpRequest, number: str) -> HttpResponse:
    return _decide(request, number, "reject")


@staff_required("orders.view_order")
def material_file(request: HttpRequest, number: str, kind_code: str) -> FileResponse:
    upload = MaterialUpload.objects.filter(order__number=number, kind__code=kind_code).first()
    if upload is None:
        raise Http404
    response = FileResponse(upload.file.open("rb"), content_type=upload.content_type)
    response["Cache-Control"] = "private, no-store"
    return response


@staff_required("orders.view_order")
def form_pdf(request: HttpRequest, number: str) -> HttpResponse:
    order = staff_order_or_404(number)
    # The customer's own form carries the full ID numbers: opening it is a reveal too.
    _pii_revealed(request, order, fields=list(PII_FIELDS), via="application_form_pdf")
    response = HttpResponse(
        application_form_render_pdf(data=order_application_form_data(order=order)), content_type="application/pdf"
    )
    response["Cache-Control"] = "private, no-store"
    return response
