"""The staff second factor: TOTP devices (django-otp), enrolment and verification."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django_otp import login as otp_login
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from certdesk.accounts.models import User
from certdesk.audit.services import audit_log
from certdesk.core.http import client_ip


def staff_otp_required(user: User) -> bool:
    return bool(settings.STAFF_OTP_REQUIRED and user.is_staff)


def staff_otp_device(*, user: User) -> TOTPDevice:
    """The user's confirmed device, or the unconfirmed one being enrolled (made on first use)."""
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if confirmed is not None:
        return confirmed
    device, _created = TOTPDevice.objects.get_or_create(user=user, confirmed=False, defaults={"name": "staff"})
    return device


def staff_otp_verify(*, request: HttpRequest, user: User, token: str) -> bool:
    device = staff_otp_device(user=user)
    token = (token or "").strip()
    if not token.isdigit() or not device.verify_token(token):
        audit_log(
            action="account.otp_failed", actor=user.mobile, object_type="user", object_id=user.pk, ip=client_ip(request)
        )
        return False
    with transaction.atomic():
        enrolled = not device.confirmed
        if enrolled:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
        otp_login(request, device)
        audit_log(
            action="account.otp_verified",
            actor=user.mobile,
            object_type="user",
            object_id=user.pk,
            ip=client_ip(request),
            data={"enrolled": enrolled},
        )
    return True


def demo_current_code(device: TOTPDevice) -> str:
    """Demo mode only: the code an authenticator app would show, so a newcomer can sign in."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"
