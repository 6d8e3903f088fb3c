"""Account writes: one-time SMS codes, registration, login, password reset."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from certdesk.accounts.models import LoginFailure, MobileThrottle, SmsCode, SmsPurpose, User
from certdesk.audit.services import audit_log
from certdesk.core.errors import DomainError, RateLimited
from certdesk.notifications.services import sms_send


def _code_hmac(*, mobile: str, purpose: str, code: str) -> str:
    message = f"{mobile}:{purpose}:{code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _wait_text(seconds: int) -> str:
    if seconds < 60:
        return _("%(s)d 秒") % {"s": seconds}
    minutes = (seconds + 59) // 60
    if minutes < 60:
        return _("%(m)d 分钟") % {"m": minutes}
    return _("%(h)d 小时 %(m)d 分钟") % {"h": minutes // 60, "m": minutes % 60}


def _retry_at_text(when: datetime.datetime) -> str:
    return timezone.localtime(when).strftime("%H:%M")


def _sms_rate_check(*, mobile: str, ip: str, now: datetime.datetime) -> None:
    sent = SmsCode.objects.filter(mobile=mobile)
    last = sent.order_by("-created_at").values_list("created_at", flat=True).first()
    cooldown = datetime.timedelta(seconds=settings.SMS_CODE_RESEND_SECONDS)
    if last is not None and now - last < cooldown:
        wait = int((last + cooldown - now).total_seconds()) + 1
        raise RateLimited(
            _("验证码发送过于频繁，请 %(w)s 后再试。") % {"w": _wait_text(wait)},
            retry_after_seconds=wait,
            code="sms_cooldown",
        )
    hour_ago = now - datetime.timedelta(hours=1)
    in_hour = list(sent.filter(created_at__gt=hour_ago).order_by("created_at").values_list("created_at", flat=True))
    if len(in_hour) >= settings.SMS_CODE_MAX_PER_HOUR:
        free_at = in_hour[-settings.SMS_CODE_MAX_PER_HOUR] + datetime.timedelta(hours=1)
        raise RateLimited(
            _("该号码1小时内最多获取 %(n)d 次验证码，请于 %(t)s 后再试。")
            % {"n": settings.SMS_CODE_MAX_PER_HOUR, "t": _retry_at_text(free_at)},
            retry_after_seconds=int((free_at - now).total_seconds()) + 1,
            code="sms_hourly_limit",
        )
    day_ago = now - datetime.timedelta(days=1)
    in_day = list(sent.filter(created_at__gt=day_ago).order_by("created_at").values_list("created_at", flat=True))
    if len(in_day) >= settings.SMS_CODE_MAX_PER_DAY:
        free_at = in_day[-settings.SMS_CODE_MAX_PER_DAY] + datetime.timedelta(days=1)
        raise RateLimited(
            _("该号码24小时内最多获取 %(n)d 次验证码，请于 %(t)s 后再试。")
            % {"n": settings.SMS_CODE_MAX_PER_DAY, "t": timezone.localtime(free_at).strftime("%m-%d %H:%M")},
            retry_after_seconds=int((free_at - now).total_seconds()) + 1,
            code="sms_daily_limit",
        )
    if ip and SmsCode.objects.filter(ip=ip, created_at__gt=hour_ago).count() >= settings.SMS_CODE_MAX_PER_IP_PER_HOUR:
        raise RateLimited(
            _("当前网络获取验证码次数过多，请1小时后再试。"), retry_after_seconds=3600, code="sms_ip_limit"
        )


@transaction.atomic
def sms_code_send(*, mobile: str, purpose: SmsPurpose, ip: str = "") -> SmsCode:
    """Send a 6-digit code valid for 5 minutes, within the per-number and per-IP caps."""
    exists = User.objects.filter(mobile=mobile).exists()
    if purpose == SmsPurpose.REGISTER and exists:
        raise DomainError(_("该手机号码已注册，请直接登录；忘记密码可通过“找回密码”重置。"), code="mobile_taken")
    if purpose in (SmsPurpose.LOGIN, SmsPurpose.RESET) and not exists:
        raise DomainError(_("该手机号码尚未注册，请先注册。"), code="mobile_unknown")
    MobileThrottle.objects.get_or_create(mobile=mobile)
    MobileThrottle.objects.select_for_update().get(mobile=mobile)
    now = timezone.now()
    _sms_rate_check(mobile=mobile, ip=ip, now=now)
    code = f"{secrets.randbelow(10**6):06d}"
    sms = SmsCode.objects.create(
        mobile=mobile,
        purpose=purpose,
        code_hmac=_code_hmac(mobile=mobile, purpose=purpose, code=code),
        ip=ip,
        created_at=now,
        expires_at=now + datetime.timedelta(seconds=settings.SMS_CODE_TTL_SECONDS),
    )
    minutes = settings.SMS_CODE_TTL_SECONDS // 60
    text = _("您的%(p)s验证码为 %(c)s，%(m)d 分钟内有效。请勿泄露给他人。") % {
        "p": SmsPurpose(purpose).label,
        "c": code,
        "m": minutes,
    }
    sms_send(mobile=mobile, text=text, template="verification_code", params={"code": code})
    return sms


def sms_code_verify(*, mobile: str, purpose: SmsPurpose, code: str) -> None:
    """Consume the newest unused code for this number and purpose, or raise.

    Call it outside any other transaction: a wrong guess is committed against the
    code before the error is raised, and after SMS_CODE_MAX_ATTEMPTS wrong guesses
    the code is burnt and a new one is needed.
    """
    with transaction.atomic():
        error = _sms_code_consume(mobile=mobile, purpose=purpose, code=(code or "").strip())
    if error is not None:
        raise error


def _sms_code_consume(*, mobile: str, purpose: SmsPurpose, code: str) -> DomainError | None:
    now = timezone.now()
    sms = (
        SmsCode.objects.select_for_update()
        .filter(mobile=mobile, purpose=purpose, used_at__isnull=True)
        .order_by("-created_at")
        .first()
    )
    if sms is None:
        return DomainError(_("请先获取短信验证码。"), code="code_missing")
    if sms.expires_at <= now:
        return DomainError(_("验证码已过期（有效期5分钟），请重新获取。"), code="code_expired")
    if sms.failed_attempts >= settings.SMS_CODE_MAX_ATTEMPTS:
        return DomainError(_("验证码错误次数过多已失效，请重新获取。"), code="code_exhausted")
    if not hmac.compare_digest(_code_hmac(mobile=mobile, purpose=purpose, code=code), sms.code_hmac):
        SmsCode.objects.filter(pk=sms.pk).update(failed_attempts=sms.failed_attempts + 1)
        left = settings.SMS_CODE_MAX_ATTEMPTS - sms.failed_attempts - 1
        if left <= 0:
            return DomainError(_("验证码错误次数过多已失效，请重新获取。"), code="code_exhausted")
        return DomainError(_("验证码不正确，还可尝试 %(n)d 次。") % {"n": left}, code="code_wrong")
    if SmsCode.objects.filter(pk=sms.pk, used_at__isnull=True).update(used_at=now) != 1:
        return DomainError(_("验证码已使用，请重新获取。"), code="code_used")
    return None


def _password_check(password: str, user: User | None = None) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), code="weak_password") from None


def user_register(*, mobile: str, code: str, password: str, ip: str = "") -> User:
    _password_check(password, User(mobile=mobile))
    sms_code_verify(mobile=mobile, purpose=SmsPurpose.REGISTER, code=code)
    with transaction.atomic():
        try:
            with transaction.atomic():
                user = User.objects.create_user(mobile=mobile, password=password)
        except IntegrityError:
            raise DomainError(_("该手机号码已注册，请直接登录。"), code="mobile_taken") from None
        audit_log(action="account.register", actor=mobile, object_type="user", object_id=user.pk, ip=ip)
    return user


def login_lockout_until(*, mobile: str, now: datetime.datetime | None = None) -> datetime.datetime | None:
    """When the number may try again, if it has used up its failures."""
    now = now or timezone.now()
    window = datetime.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    recent = list(
        LoginFailure.objects.filter(mobile=mobile, created_at__gt=now - window)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[: settings.LOGIN_MAX_FAILURES]
    )
    if len(recent) < settings.LOGIN_MAX_FAILURES:
        return None
    return recent[0] + window


def _raise_if_locked(*, mobile: str, ip: str) -> None:
    until = login_lockout_until(mobile=mobile)
    if until is not None:
        raise RateLimited(
            _("密码错误次数过多，账户已临时锁定，请于 %(t)s 后再试，或使用短信验证码登录后修改密码。")
            % {"t": _retry_at_text(until)},
            retry_after_seconds=int((until - timezone.now()).total_seconds()) + 1,
            code="login_locked",
        )
    if ip:
        hour_ago = timezone.now() - datetime.timedelta(hours=1)
        if LoginFailure.objects.filter(ip=ip, created_at__gt=hour_ago).count() >= settings.LOGIN_MAX_FAILURES_PER_IP:
            raise RateLimited(
                _("当前网络登录失败次数过多，请1小时后再试。"), retry_after_seconds=3600, code="login_ip_locked"
            )


def user_authenticate_password(*, mobile: str, password: str, ip: str = "", staff_only: bool = False) -> User:
    """Check the password, counting failures towards the lockout. With `staff_only`,
    a customer account fails exactly like a wrong password (the staff entry point)."""
    _raise_if_locked(mobile=mobile, ip=ip)
    user = User.objects.filter(mobile=mobile, is_active=True).first()
    if user is None or not user.check_password(password) or (staff_only and not user.is_staff):
        with transaction.atomic():
            LoginFailure.objects.create(mobile=mobile, ip=ip)
            audit_log(action="account.login_failed", actor=mobile, object_type="user", ip=ip)
        until = login_lockout_until(mobile=mobile)
        if until is not None:
            _raise_if_locked(mobile=mobile, ip=ip)
        left = (
            settings.LOGIN_MAX_FAILURES
            - LoginFailure.objects.filter(
                mobile=mobile,
                created_at__gt=timezone.now() - datetime.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS),
            ).count()
        )
        raise DomainError(
            _("手机号码或密码不正确，再错 %(n)d 次账户将临时锁定。") % {"n": left}, code="bad_credentials"
        )
    with transaction.atomic():
        LoginFailure.objects.filter(mobile=mobile).delete()
        audit_log(
            action="account.login",
            actor=mobile,
            object_type="user",
            object_id=user.pk,
            ip=ip,
            data={"method": "password", "staff": staff_only},
        )
    return user


def user_authenticate_sms(*, mobile: str, code: str, ip: str = "") -> User:
    user = User.objects.filter(mobile=mobile, is_active=True).first()
    if user is None:
        raise DomainError(_("该手机号码尚未注册，请先注册。"), code="mobile_unknown")
    sms_code_verify(mobile=mobile, purpose=SmsPurpose.LOGIN, code=code)
    with transaction.atomic():
        LoginFailure.objects.filter(mobile=mobile).delete()
        audit_log(
            action="account.login", actor=mobile, object_type="user", object_id=user.pk, ip=ip, data={"method": "sms"}
        )
    return user


def user_password_reset(*, mobile: str, code: str, new_password: str, ip: str = "") -> User:
    user = User.objects.filter(mobile=mobile).first()
    if user is None:
        raise DomainError(_("该手机号码尚未注册，请先注册。"), code="mobile_unknown")
    _password_check(new_password, user)
    sms_code_verify(mobile=mobile, purpose=SmsPurpose.RESET, code=code)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        LoginFailure.objects.filter(mobile=mobile).delete()
        audit_log(action="account.password_reset", actor=mobile, object_type="user", object_id=user.pk, ip=ip)
    return user
