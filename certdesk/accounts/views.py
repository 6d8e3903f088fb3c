"""注册及登录. Views parse forms and call services; a service error is shown
beside the field it concerns and everything the user typed stays in the form."""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import urlencode

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from certdesk.accounts.forms import (
    ERROR_FIELDS,
    PasswordLoginForm,
    PasswordResetForm,
    RegisterForm,
    SendCodeForm,
    SmsLoginForm,
)
from certdesk.accounts.models import SmsPurpose, User
from certdesk.accounts.otp import demo_current_code, staff_otp_device, staff_otp_required, staff_otp_verify
from certdesk.accounts.services import (
    sms_code_send,
    user_authenticate_password,
    user_authenticate_sms,
    user_password_reset,
    user_register,
)
from certdesk.core.errors import DomainError
from certdesk.core.http import client_ip


def _show_error(form: forms.Form, error: DomainError) -> None:
    field = ERROR_FIELDS.get(error.code)
    form.add_error(field if field in form.fields else None, error.message)


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "portal:home"


def _code_requested(request: HttpRequest, form: forms.Form, purpose: SmsPurpose) -> bool:
    """Handle the 获取验证码 button of a form; True when that was the request."""
    if request.POST.get("action") != "send_code":
        return False
    send_form = SendCodeForm(request.POST)
    if not send_form.is_valid():
        form.add_error("mobile", send_form.errors["mobile"])
        return True
    try:
        sms_code_send(mobile=send_form.cleaned_data["mobile"], purpose=purpose, ip=client_ip(request))
    except DomainError as error:
        _show_error(form, error)
    else:
        messages.success(request, _("验证码已发送，5分钟内有效。"))
    return True


def _code_form_view(
    request: HttpRequest,
    *,
    form_class: type[forms.Form],
    purpose: SmsPurpose,
    template: str,
    on_valid: Callable[[forms.Form], HttpResponse],
    extra: dict[str, str] | None = None,
) -> HttpResponse:
    form = form_class(request.POST or None)
    if request.method == "POST" and not _code_requested(request, form, purpose) and form.is_valid():
        try:
            return on_valid(form)
        except DomainError as error:
            _show_error(form, error)
    return render(request, template, {"form": form, "next": request.GET.get("next", ""), **(extra or {})})


def register(request: HttpRequest) -> HttpResponse:
    def on_valid(form: forms.Form) -> HttpResponse:
        data = form.cleaned_data
        user = user_register(
            mobile=data["mobile"], code=data["code"], password=data["password1"], ip=client_ip(request)
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("注册成功，欢迎使用证书自助办理平台。"))
        return redirect(_safe_next(request))

    return _code_form_view(
        request,
        form_class=RegisterForm,
        purpose=SmsPurpose.REGISTER,
        template="accounts/register.html",
        on_valid=on_valid,
    )


def login_password(request: HttpRequest) -> HttpResponse:
    form = PasswordLoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_authenticate_password(
                mobile=form.cleaned_data["mobile"], password=form.cleaned_data["password"], ip=client_ip(request)
            )
        except DomainError as error:
            _show_error(form, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(_safe_next(request))
    return render(
        request, "accounts/login.html", {"form": form, "mode": "password", "next": request.GET.get("next", "")}
    )


def login_sms(request: HttpRequest) -> HttpResponse:
    def on_valid(form: forms.Form) -> HttpResponse:
        user = user_authenticate_sms(
            mobile=form.cleaned_data["mobile"], code=form.cleaned_data["code"], ip=client_ip(request)
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(_safe_next(request))

    return _code_form_view(
        request,
        form_class=SmsLoginForm,
        purpose=SmsPurpose.LOGIN,
        template="accounts/login.html",
        on_valid=on_valid,
        extra={"mode": "sms"},
    )


def password_reset(request: HttpRequest) -> HttpResponse:
    def on_valid(form: forms.Form) -> HttpResponse:
        data = form.cleaned_data
        user_password_reset(
            mobile=data["mobile"], code=data["code"], new_password=data["password1"], ip=client_ip(request)
        )
        messages.success(request, _("密码已重置，请使用新密码登录。"))
        return redirect("accounts:login")

    return _code_form_view(
        request,
        form_class=PasswordResetForm,
        purpose=SmsPurpose.RESET,
        template="accounts/password_reset.html",
        on_valid=on_valid,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("portal:home")


def staff_login(request: HttpRequest) -> HttpResponse:
    """Staff sign in here, with the same lockout as customers; customers are refused."""
    form = PasswordLoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_authenticate_password(
                mobile=form.cleaned_data["mobile"],
                password=form.cleaned_data["password"],
                ip=client_ip(request),
                staff_only=True,
            )
        except DomainError as error:
            _show_error(form, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            target = request.POST.get("next") or ""
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = reverse("review:dashboard")
            if staff_otp_required(user):
                return redirect(f"{reverse('staff_otp')}?{urlencode({'next': target})}")
            return redirect(target)
    return render(request, "accounts/staff_login.html", {"form": form, "next": request.GET.get("next", "")})


@login_required
def staff_otp(request: HttpRequest) -> HttpResponse:
    """Second step of the staff login: enrol a TOTP authenticator, or enter its code."""
    user = request.user
    assert isinstance(user, User)
    if not user.is_staff:
        raise Http404
    device = staff_otp_device(user=user)
    error = ""
    if request.method == "POST":
        if staff_otp_verify(request=request, user=user, token=request.POST.get("token", "")):
            target = request.POST.get("next") or ""
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = reverse("review:dashboard")
            return redirect(target)
        error = _("动态码不正确或已过期，请输入身份验证器上当前显示的6位数字。")
    context = {
        "device": device,
        "enrolling": not device.confirmed,
        "error": error,
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "demo_code": demo_current_code(device) if settings.DEMO_MODE else "",
    }
    if not device.confirmed:
        context["qr_svg"] = segno.make(device.config_url, error="m").svg_inline(scale=4, title="TOTP")
        context["secret"] = base64.b32encode(device.bin_key).decode()
    return render(request, "accounts/staff_otp.html", context)
