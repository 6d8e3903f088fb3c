"""Order reads: ownership-checked lookups, lists and what is still missing."""

from __future__ import annotations

from django.db.models import QuerySet

from certdesk.accounts.models import User
from certdesk.catalog.selectors import required_materials_list
from certdesk.core.choices import BusinessType
from certdesk.orders.application_form import ApplicationFormData
from certdesk.orders.models import DeliveryMethod, InvoiceType, Order, OrderEvent

_UNIT = ["org_name", "org_uscc", "legal_rep_name", "legal_rep_id_number", "legal_rep_mobile"]
_AGENT = ["agent_name", "agent_id_number", "agent_mobile", "agent_email"]
_INVOICE = {
    InvoiceType.NORMAL: ["invoice_title", "invoice_taxpayer_id", "invoice_email"],
    InvoiceType.SPECIAL: [
        "invoice_title",
        "invoice_taxpayer_id",
        "invoice_address",
        "invoice_phone",
        "invoice_bank",
        "invoice_account",
        "invoice_email",
    ],
}
_MAIL = ["recipient_name", "recipient_phone", "shipping_address"]


# Which parts of 录入信息 a business type has: an invoice where something is sold,
# a delivery where a key travels.
INVOICE_TYPES = frozenset({BusinessType.NEW, BusinessType.REISSUE, BusinessType.RENEW})
DELIVERY_TYPES = frozenset({BusinessType.NEW, BusinessType.REISSUE, BusinessType.REDISPATCH})


def info_field_shown(*, business_type: str, name: str) -> bool:
    if name.startswith("invoice_"):
        return business_type in INVOICE_TYPES
    if name in ("delivery_method", *_MAIL):
        return business_type in DELIVERY_TYPES
    if name == "revoke_reason":
        return business_type == BusinessType.REVOKE
    if name == "agent_qq":
        return business_type == BusinessType.UNLOCK
    return True


def required_info_fields(*, business_type: str, invoice_type: str, delivery_method: str, key_sn: str = "") -> list[str]:
    """The one definition of which 录入信息 fields are required (marked * on the form)."""
    required = ["cert_org_name", "cert_uscc", *_UNIT, *_AGENT]
    if business_type in INVOICE_TYPES:
        required.append("invoice_type")
        required += _INVOICE.get(InvoiceType(invoice_type), []) if invoice_type in InvoiceType.values else []
    if business_type in DELIVERY_TYPES:
        required.append("delivery_method")
        if delivery_method == DeliveryMethod.MAIL:
            required += _MAIL
    if business_type == BusinessType.REVOKE:
        required.append("revoke_reason")
    if business_type == BusinessType.UNLOCK and key_sn.startswith("11"):
        required.append("agent_qq")  # remote assistance: support staff add the customer on QQ (manual ch. 六)
    return required


def order_for_owner(*, number: str, user: User) -> Order | None:
    """The order if `user` owns it; None otherwise (views answer 404 either way).

    With its certificate type, which the customer's pages show; the catalogue above it
    (sub-project … region) only the application form prints, and loads when it is read."""
    return Order.objects.select_related("certificate_type").filter(number=number, owner=user).first()


# The columns a list of the customer's orders shows (订单查询, and the orders 改派 offers);
# the others, the sealed ID numbers among them, are neither read nor decrypted for a list.
_LIST_FIELDS = ("number", "business_type", "status", "org_name", "created_at", "delivery_method", "shipping_address")


def order_list_for_owner(*, user: User) -> QuerySet[Order]:
    """The customer's orders, newest first."""
    return Order.objects.filter(owner=user).only(*_LIST_FIELDS).order_by("-created_at", "-id")


def order_events(*, order: Order) -> QuerySet[OrderEvent]:
    """The order's history, oldest first (staff pages, which show who did each step, join the actor)."""
    return order.events.order_by("created_at", "id")


def order_missing_items(*, order: Order) -> list[str]:
    """What stands between this order and 提交, in words the customer understands."""
    from certdesk.materials.models import MaterialUpload

    missing: list[str] = []
    empty = [
        str(getattr(Order._meta.get_field(name), "verbose_name", name))
        for name in required_info_fields(
            business_type=order.business_type,
            invoice_type=order.invoice_type,
            delivery_method=order.delivery_method,
            key_sn=order.key_sn,
        )
        if not getattr(order, name)
    ]
    if empty:
        missing.append("请在“录入信息”中填写" + "、".join(empty))
    if order.agreement_accepted_at is None:
        missing.append("请阅读并勾选同意《数字证书服务协议》")
    uploaded = set(MaterialUpload.objects.filter(order=order).values_list("kind_id", flat=True))
    absent = [
        requirement.kind.name
        for requirement in required_materials_list(
            certificate_type=order.certificate_type, business_type=BusinessType(order.business_type)
        )
        if requirement.is_required and requirement.kind_id not in uploaded
    ]
    if absent:
        missing.append("请上传" + "、".join(absent))
    return missing


def order_application_form_data(*, order: Order) -> ApplicationFormData:
    """What the 数字证书申请表 prints, from what the customer entered."""
    sub_project = order.certificate_type.sub_project
    category = sub_project.category
    if order.invoice_type:
        invoice = f"{order.get_invoice_type_display()}：{order.invoice_title} {order.invoice_taxpayer_id}"
        if order.invoice_type == InvoiceType.SPECIAL:
            invoice += f"\n{order.invoice_address} {order.invoice_phone}\n{order.invoice_bank} {order.invoice_account}"
        invoice += f"\n接收邮箱：{order.invoice_email}"
    else:
        invoice = ""
    if order.delivery_method == DeliveryMethod.MAIL:
        address = f"{order.shipping_address}（{order.recipient_name} {order.recipient_phone}）"
    elif order.delivery_method == DeliveryMethod.PICKUP:
        address = "自提"
    else:
        address = ""
    return ApplicationFormData(
        order_number=order.number,
        business_type=order.business_type,
        certificate_type_name=order.certificate_type.name,
        years=order.years,
        org_name=order.org_name,
        legal_rep_name=order.legal_rep_name,
        legal_rep_mobile=order.legal_rep_mobile,
        office_phone=order.office_phone,
        website=order.website,
        agent_name=order.agent_name,
        agent_mobile=order.agent_mobile,
        agent_email=order.agent_email,
        agent_wechat=order.agent_wechat,
        shipping_address=address,
        org_uscc=order.org_uscc,
        legal_rep_id_number=order.legal_rep_id_number,
        agent_id_number=order.agent_id_number,
        social_security_no=order.social_security_no,
        taxpayer_id=order.invoice_taxpayer_id or order.org_uscc,
        invoice_info=invoice,
        project_region=category.industry.region.name,
        project_category=category.industry.name,
        project_name=sub_project.name,
    )


def order_keys_for_owner(*, user: User) -> list[Order]:
    """The customer's keys: the newest order for each key SN written for them."""
    seen: dict[str, Order] = {}
    for order in Order.objects.filter(owner=user).exclude(key_sn="").order_by("-created_at")[:200]:
        seen.setdefault(order.key_sn, order)
    return list(seen.values())
