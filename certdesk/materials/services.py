"""Material uploads: store a validated image in its slot; phone (QR) upload tokens."""

from __future__ import annotations

from typing import IO

from django.core import signing
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _

from certdesk.accounts.models import User
from certdesk.catalog.models import MaterialKind
from certdesk.catalog.selectors import required_materials_list
from certdesk.core.choices import BusinessType
from certdesk.core.errors import DomainError
from certdesk.materials.models import MaterialUpload, UploadChannel
from certdesk.materials.validation import upload_image_validate
from certdesk.orders.models import Order
from certdesk.orders.services import order_event_add, order_lock_editable

PHONE_TOKEN_SALT = "certdesk.materials.phone-upload"  # noqa: S105 (a signing salt, not a secret)
PHONE_TOKEN_MAX_AGE = 30 * 60


def material_slot_kind(*, order: Order, kind_code: str) -> MaterialKind | None:
    """The material kind if it is one of this order's upload slots."""
    for requirement in required_materials_list(
        certificate_type=order.certificate_type, business_type=BusinessType(order.business_type)
    ):
        if requirement.kind.code == kind_code:
            return requirement.kind
    return None


def material_upload_save(
    *,
    order: Order,
    kind: MaterialKind,
    upload: IO[bytes],
    filename: str,
    actor: User | None,
    channel: UploadChannel = UploadChannel.PC,
) -> MaterialUpload:
    """Validate the image (outside the transaction: decoding takes time) and put it in its slot,
    replacing what was there. Only while the order can still be edited."""
    image = upload_image_validate(data=upload, filename=filename)
    with transaction.atomic():
        locked = order_lock_editable(order)
        previous = MaterialUpload.objects.filter(order=locked, kind=kind).first()
        old_name = previous.file.name if previous else None
        material = previous or MaterialUpload(order=locked, kind=kind)
        material.extension = image.extension
        material.content_type = image.content_type
        material.original_name = filename[-255:]
        material.size = len(image.data)
        material.width = image.width
        material.height = image.height
        material.sha256 = image.sha256
        material.channel = channel
        material.file.save(f"upload.{image.extension}", ContentFile(image.data), save=False)
        material.save()
        order_event_add(
            order=locked,
            kind="material_uploaded",
            actor=actor,
            data={"material": kind.code, "channel": channel, "replaced": previous is not None},
        )
        if old_name:
            storage = material.file.storage
            transaction.on_commit(lambda: storage.delete(old_name))
    return material


def phone_upload_token_make(*, order: Order, kind: MaterialKind) -> str:
    """A signed token for one order and one slot, valid for 30 minutes, for the phone page (no login)."""
    return signing.dumps({"o": order.pk, "k": kind.pk}, salt=PHONE_TOKEN_SALT, compress=True)


def phone_upload_token_read(*, token: str) -> tuple[Order, MaterialKind]:
    try:
        payload = signing.loads(token, salt=PHONE_TOKEN_SALT, max_age=PHONE_TOKEN_MAX_AGE)
    except signing.SignatureExpired:
        raise DomainError(
            _("二维码已过期（有效期30分钟），请在电脑页面刷新后重新扫码。"), code="phone_token_expired"
        ) from None
    except signing.BadSignature:
        raise DomainError(_("二维码无效，请在电脑页面重新扫码。"), code="phone_token_invalid") from None
    order = Order.objects.select_related("certificate_type").filter(pk=payload.get("o")).first()
    kind = MaterialKind.objects.filter(pk=payload.get("k")).first()
    if order is None or kind is None or material_slot_kind(order=order, kind_code=kind.code) is None:
        raise DomainError(_("二维码无效，请在电脑页面重新扫码。"), code="phone_token_invalid")
    return order, kind
