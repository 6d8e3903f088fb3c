"""录入信息. Every field is optional at the field level so a partial draft can be
kept; `clean()` applies the required set from `required_info_fields` when the
customer moves on, and format validators run on whatever is filled in."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from certdesk.core.choices import BusinessType
from certdesk.core.validators import check_mobile, check_resident_id, check_uscc
from certdesk.orders.models import DeliveryMethod, InvoiceType, Order, RevokeReason
from certdesk.orders.selectors import info_field_shown, required_info_fields
from certdesk.orders.services import OrderInfo

_VALIDATORS = {
    "cert_uscc": check_uscc,
    "org_uscc": check_uscc,
    "invoice_taxpayer_id": check_uscc,
    "legal_rep_id_number": check_resident_id,
    "agent_id_number": check_resident_id,
    "legal_rep_mobile": check_mobile,
    "agent_mobile": check_mobile,
    "recipient_phone": check_mobile,
}

SECTIONS = [
    ("证书信息", ["cert_org_name", "cert_uscc"]),
    (
        "单位信息",
        [
            "org_same_as_cert",
            "org_name",
            "org_uscc",
            "legal_rep_name",
            "legal_rep_id_number",
            "legal_rep_mobile",
            "office_phone",
            "website",
            "social_security_no",
        ],
    ),
    (
        "发票信息",
        [
            "invoice_type",
            "invoice_title",
            "invoice_taxpayer_id",
            "invoice_address",
            "invoice_phone",
            "invoice_bank",
            "invoice_account",
            "invoice_email",
        ],
    ),
    ("经办人信息", ["agent_name", "agent_id_number", "agent_mobile", "agent_email", "agent_wechat", "agent_qq"]),
    ("领取方式", ["delivery_method", "recipient_name", "recipient_phone", "shipping_address"]),
    ("注销原因", ["revoke_reason"]),
]
HELP = {
    "org_same_as_cert": "单位名称、统一社会信用代码与证书信息相同",
    "legal_rep_mobile": "须为法人本人实名认证的手机号",
    "invoice_email": "电子发票将发送到此邮箱，请自行下载并打印",
    "agent_email": "此邮箱用于接收CA办理发票，请确保邮箱信息准确无误",
    "invoice_taxpayer_id": "一般为统一社会信用代码",
    "agent_qq": "USB Key 序列号以11开头时，客服将通过QQ远程协助解锁",
}
# Fields that come from the certificate on the key and stay as they are,
# except in 证书变更 where changing them is the point.
_FROM_CERTIFICATE = ("cert_org_name", "cert_uscc")


class OrderInfoForm(forms.ModelForm):
    org_same_as_cert = forms.BooleanField(label="同证书信息", required=False)

    class Meta:
        model = Order
        fields = [name for name in OrderInfo.field_names()]

    def __init__(self, *args: Any, draft: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.draft = draft
        for name, field in self.fields.items():
            field.required = False
            if name in HELP:
                field.help_text = HELP[name]
        for field in self.fields.values():
            if isinstance(field.widget, forms.Textarea):
                field.widget = forms.TextInput()
        self.fields["invoice_type"] = forms.ChoiceField(
            label="发票类型", choices=InvoiceType.choices, required=False, widget=forms.RadioSelect
        )
        self.fields["delivery_method"] = forms.ChoiceField(
            label="领取方式", choices=DeliveryMethod.choices, required=False, widget=forms.RadioSelect
        )
        self.fields["revoke_reason"] = forms.ChoiceField(
            label="注销原因", choices=RevokeReason.choices, required=False, widget=forms.RadioSelect
        )
        if self.instance.key_sn and self.instance.business_type != BusinessType.CHANGE:
            for name in _FROM_CERTIFICATE:
                self.fields[name].disabled = True
                self.fields[name].help_text = "来自现有证书；如单位信息已变化，请先办理证书变更"
        self.required_now = set(self._required_for(self.data if self.is_bound else self.initial))
        for name in self.required_now:
            if name in self.fields:
                self.fields[name].widget.attrs["aria-required"] = "true"

    def _required_for(self, values: Any) -> list[str]:
        get = values.get if hasattr(values, "get") else (lambda _k, _d=None: _d)
        business_type = self.instance.business_type if self.instance else ""
        return required_info_fields(
            business_type=business_type,
            invoice_type=get("invoice_type", "") or getattr(self.instance, "invoice_type", ""),
            delivery_method=get("delivery_method", "") or getattr(self.instance, "delivery_method", ""),
            key_sn=getattr(self.instance, "key_sn", ""),
        )

    def sections(self) -> list[tuple[str, list[forms.BoundField]]]:
        visible = [
            (title, [self[name] for name in names if name in self.fields and self._shown(name)])
            for title, names in SECTIONS
        ]
        return [(title, fields) for title, fields in visible if fields]

    def _shown(self, name: str) -> bool:
        return info_field_shown(business_type=self.instance.business_type, name=name)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name, check in _VALIDATORS.items():
            value = (data.get(name) or "").strip()
            if value and name not in self.errors:
                try:
                    data[name] = check(value)
                except ValidationError as error:
                    self.add_error(name, error)
        for name in ("cert_org_name", "org_name", "legal_rep_name", "agent_name", "invoice_title", "recipient_name"):
            if data.get(name):
                data[name] = data[name].strip()
        copied: set[str] = set()
        if data.get("org_same_as_cert"):
            # The certificate's fields carry the error, if any; don't report it twice.
            data["org_name"] = data.get("cert_org_name", "")
            data["org_uscc"] = data.get("cert_uscc", "") if "cert_uscc" not in self.errors else ""
            copied = {"org_name", "org_uscc"}
        if not self.draft:
            for name in self._required_for(data):
                if name in copied or name in self.errors or not self._shown(name):
                    continue
                if not data.get(name):
                    self.add_error(name, ValidationError(f"请填写{self.fields[name].label}。", code="required"))
        return data

    def to_info(self) -> OrderInfo:
        data = self.cleaned_data
        return OrderInfo(**{name: (data.get(name) or "") for name in OrderInfo.field_names()})

    def valid_field_names(self) -> list[str]:
        """Fields that passed validation: what a partial draft may keep."""
        return [name for name in OrderInfo.field_names() if name in self.cleaned_data and name not in self.errors]
