"""上传资料: PC upload per slot (htmx, with a progress bar), 手机扫码上传 through a
signed single-slot token, and serving a stored file to its owner only."""

from __future__ import annotations

from dataclasses import dataclass

import segno
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from certdesk.accounts.models import User
from certdesk.catalog.models import MaterialKind, RequiredMaterial
from certdesk.catalog.selectors import required_materials_list
from certdesk.core.choices import BusinessType
from certdesk.core.errors import DomainError
from certdesk.materials.models import MaterialUpload, UploadChannel
from certdesk.materials.services import (
    material_slot_kind,
    material_upload_save,
    phone_upload_token_make,
    phone_upload_token_read,
)
from certdesk.orders.models import Order
from certdesk.orders.selectors import order_for_owner
from certdesk.orders.transitions import EDITABLE


@dataclass
class Slot:
    requirement: RequiredMaterial
    upload: MaterialUpload | None
    error: str = ""

    @property
    def kind(self) -> MaterialKind:
        return self.requirement.kind


def material_slots(*, order: Order) -> list[Slot]:
    uploads = {u.kind_id: u for u in MaterialUpload.objects.filter(order=order)}
    return [
        Slot(requirement, uploads.get(requirement.kind_id))
        for requirement in required_materials_list(
            certificate_type=order.certificate_type, business_type=BusinessType(order.business_type)
        )
    ]


def _owned_slot(request: HttpRequest, number: str, kind_code: str) -> tuple[Order, MaterialKind]:
    assert isinstance(request.user, User)
    order = order_for_owner(number=number, user=request.user)
    kind = material_slot_kind(order=order, kind_code=kind_code) if order else None
    if order is None or kind is None:
        raise Http404
    return order, kind


def _slot_response(request: HttpRequest, order: Order, kind: MaterialKind, error: str = "") -> HttpResponse:
    slot = next(s for s in material_slots(order=order) if s.kind.pk == kind.pk)
    slot.error = error
    return render(request, "materials/_slot.html", {"order": order, "slot": slot, "editable": order.status in EDITABLE})


@login_required
@require_POST
def material_upload(request: HttpRequest, number: str, kind_code: str) -> HttpResponse:
    order, kind = _owned_slot(request, number, kind_code)
    assert isinstance(request.user, User)
    upload = request.FILES.get("file")
    error = ""
    if upload is None:
        error = "请选择要上传的图片文件。"
    else:
        try:
            material_upload_save(order=order, kind=kind, upload=upload, filename=upload.name or "", actor=request.user)
        except DomainError as exc:
            error = exc.message
    if getattr(request, "htmx", False):
        return _slot_response(request, order, kind, error)
    if error:
        from django.contrib import messages

        messages.error(request, f"{kind.name}：{error}")
    return redirect("orders:upload", number=order.number)


@login_required
def material_slot(request: HttpRequest, number: str, kind_code: str) -> HttpResponse:
    """The slot's current state; the PC page polls it to see a phone upload arrive."""
    order, kind = _owned_slot(request, number, kind_code)
    return _slot_response(request, order, kind)


@login_required
def material_file(request: HttpRequest, number: str, kind_code: str) -> FileResponse:
    order, kind = _owned_slot(request, number, kind_code)
    upload = MaterialUpload.objects.filter(order=order, kind=kind).first()
    if upload is None:
        raise Http404
    response = FileResponse(upload.file.open("rb"), content_type=upload.content_type)
    response["Content-Disposition"] = f'inline; filename="{kind.code}.{upload.extension}"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def material_phone_qr(request: HttpRequest, number: str, kind_code: str) -> HttpResponse:
    order, kind = _owned_slot(request, number, kind_code)
    if order.status not in EDITABLE:
        raise Http404
    url = request.build_absolute_uri(
        reverse("materials:phone", kwargs={"token": phone_upload_token_make(order=order, kind=kind)})
    )
    svg = segno.make(url, error="m").svg_inline(scale=4, title="手机扫码上传")
    return render(request, "materials/_phone_qr.html", {"svg": svg, "url": url, "kind": kind})


def material_phone_upload(request: HttpRequest, token: str) -> HttpResponse:
    """The phone's page: no login, the signed token names one order and one slot."""
    try:
        order, kind = phone_upload_token_read(token=token)
    except DomainError as refused:
        return render(request, "materials/phone.html", {"error": refused.message}, status=403)
    done = False
    error = ""
    if order.status not in EDITABLE:
        error = "该订单已提交，不能再上传资料。"
    elif request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = "请拍照或选择一张图片。"
        else:
            try:
                material_upload_save(
                    order=order,
                    kind=kind,
                    upload=upload,
                    filename=upload.name or "",
                    actor=None,
                    channel=UploadChannel.PHONE,
                )
                done = True
            except DomainError as exc:
                error = exc.message
    return render(
        request,
        "materials/phone.html",
        {"order": order, "kind": kind, "done": done, "error": error, "can_upload": order.status in EDITABLE},
    )
