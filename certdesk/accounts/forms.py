from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from certdesk.core.validators import check_mobile

# Which field a service error belongs to, so the message appears beside it.
ERROR_FIELDS = {
    "code_missing": "code",
    "code_expired": "code",
    "code_exhausted": "code",
    "code_wrong": "code",
    "code_used": "code",
    "weak_password": "password1",
    "mobile_taken": "mobile",
    "mobile_unknown": "mobile",
    "sms_cooldown": "mobile",
    "sms_hourly_limit": "mobile",
    "sms_daily_limit": "mobile",
    "sms_ip_limit": None,
    "bad_credentials": None,
    "login_locked": None,
}


class MobileField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("手机号码"))
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault("error_messages", {"required": _("请填写手机号码。")})
        super().__init__(**kwargs)
        self.widget.attrs.update({"inputmode": "numeric", "autocomplete": "tel", "placeholder": _("11位手机号码")})

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        return check_mobile(value)


class CodeField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("短信验证码"))
        kwargs.setdefault("max_length", 6)
        kwargs.setdefault("min_length", 6)
        kwargs.setdefault(
            "error_messages",
            {
                "required": _("请填写短信验证码。"),
                "min_length": _("验证码为6位数字。"),
                "max_length": _("验证码为6位数字。"),
            },
        )
        super().__init__(**kwargs)
        self.widget.attrs.update(
            {"inputmode": "numeric", "autocomplete": "one-time-code", "placeholder": _("6位验证码")}
        )


class SendCodeForm(forms.Form):
    mobile = MobileField()


class _NewPasswordMixin(forms.Form):
    password1 = forms.CharField(
        label=_("设置密码"),
        widget=forms.PasswordInput(render_value=True),
        strip=False,
        error_messages={"required": _("请设置密码。")},
        help_text=_("至少8位，不能全为数字，不能过于常见。"),
    )
    password2 = forms.CharField(
        label=_("确认密码"),
        widget=forms.PasswordInput(render_value=True),
        strip=False,
        error_messages={"required": _("请再次输入密码。")},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", ValidationError("两次输入的密码不一致。"))
        return data


class RegisterForm(_NewPasswordMixin):
    mobile = MobileField()
    code = CodeField()
    field_order = ["mobile", "code", "password1", "password2"]


class PasswordResetForm(_NewPasswordMixin):
    mobile = MobileField()
    code = CodeField()
    field_order = ["mobile", "code", "password1", "password2"]


class PasswordLoginForm(forms.Form):
    mobile = MobileField()
    password = forms.CharField(
        label=_("密码"), widget=forms.PasswordInput, strip=False, error_messages={"required": _("请填写密码。")}
    )


class SmsLoginForm(forms.Form):
    mobile = MobileField()
    code = CodeField()
