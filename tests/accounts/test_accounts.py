from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from certdesk.accounts.models import LoginFailure, SmsCode, SmsPurpose, User
from certdesk.accounts.services import sms_code_send
from certdesk.audit.models import AuditRecord
from certdesk.core.errors import RateLimited

pytestmark = pytest.mark.django_db
REGISTER = reverse("accounts:register")
MOBILE = "13912345678"
PASSWORD = "Str0ng-Passw0rd-Ok"


def _age_codes(mobile: str, *, seconds: int) -> None:
    for sms in SmsCode.objects.filter(mobile=mobile):
        SmsCode.objects.filter(pk=sms.pk).update(created_at=sms.created_at - datetime.timedelta(seconds=seconds))


def _register(client: Client, send_code: Callable[..., tuple[str, str]], mobile: str = MOBILE) -> str:
    _, code = send_code(REGISTER, mobile)
    assert code
    response = client.post(
        REGISTER, {"mobile": mobile, "code": code, "password1": PASSWORD, "password2": PASSWORD, "action": "register"}
    )
    assert response.status_code == 302, response.content.decode()
    return code


def test_register_with_code_from_inbox_logs_in_and_audits(client: Client, send_code: Callable) -> None:
    _register(client, send_code)
    user = User.objects.get(mobile=MOBILE)
    assert user.check_password(PASSWORD)
    assert client.get(reverse("portal:home")).context["user"] == user
    assert AuditRecord.objects.filter(action="account.register", actor=MOBILE).exists()


def test_code_is_single_use(client: Client, send_code: Callable) -> None:
    code = _register(client, send_code)
    client.logout()
    User.objects.filter(mobile=MOBILE).delete()
    response = client.post(
        REGISTER, {"mobile": MOBILE, "code": code, "password1": PASSWORD, "password2": PASSWORD, "action": "register"}
    )
    assert "请先获取短信验证码" in response.content.decode()


def test_production_hashes_passwords_with_argon2() -> None:
    from config import settings as production

    assert production.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    hasher = Argon2PasswordHasher()
    encoded = hasher.encode(PASSWORD, hasher.salt())
    assert encoded.startswith("argon2$argon2id$")
    assert hasher.verify(PASSWORD, encoded)


@pytest.mark.parametrize("mobile", ["1391234567", "23912345678", "abcdefghijk", ""])
def test_malformed_mobile_is_refused_and_input_kept(client: Client, mobile: str) -> None:
    response = client.post(
        REGISTER,
        {"mobile": mobile, "code": "123456", "password1": PASSWORD, "password2": PASSWORD, "action": "register"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "手机号码" in page
    assert response.context["form"].errors["mobile"]
    assert 'value="123456"' in page  # the rest of the form is kept


def test_wrong_code_says_tries_left_then_burns(client: Client, send_code: Callable) -> None:
    _, code = send_code(REGISTER, MOBILE)
    wrong = "000000" if code != "000000" else "111111"
    data = {"mobile": MOBILE, "code": wrong, "password1": PASSWORD, "password2": PASSWORD, "action": "register"}
    page = client.post(REGISTER, data).content.decode()
    assert "验证码不正确，还可尝试 4 次" in page
    for _ in range(4):
        page = client.post(REGISTER, data).content.decode()
    assert "错误次数过多已失效" in page
    # Even the right code no longer works.
    page = client.post(REGISTER, {**data, "code": code}).content.decode()
    assert "错误次数过多已失效" in page
    assert not User.objects.filter(mobile=MOBILE).exists()


def test_expired_code_is_refused(client: Client, send_code: Callable) -> None:
    _, code = send_code(REGISTER, MOBILE)
    SmsCode.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    page = client.post(
        REGISTER, {"mobile": MOBILE, "code": code, "password1": PASSWORD, "password2": PASSWORD, "action": "register"}
    ).content.decode()
    assert "验证码已过期" in page


def test_resend_cooldown(send_code: Callable) -> None:
    send_code(REGISTER, MOBILE)
    page, code = send_code(REGISTER, MOBILE)
    assert code == ""
    assert "发送过于频繁" in page
    assert SmsCode.objects.count() == 1


def test_sixth_code_in_an_hour_is_refused(send_code: Callable) -> None:
    for _ in range(5):
        _, code = send_code(REGISTER, MOBILE)
        assert code
        _age_codes(MOBILE, seconds=61)
    page, code = send_code(REGISTER, MOBILE)
    assert code == ""
    assert "1小时内最多获取 5 次" in page


def test_eleventh_code_in_a_day_is_refused() -> None:
    now = timezone.now()
    for hours in range(10):
        SmsCode.objects.create(
            mobile=MOBILE,
            purpose=SmsPurpose.REGISTER,
            code_hmac="x",
            created_at=now - datetime.timedelta(hours=2 + hours),
            expires_at=now,
        )
    with pytest.raises(RateLimited) as exc:
        sms_code_send(mobile=MOBILE, purpose=SmsPurpose.REGISTER, ip="10.0.0.1")
    assert exc.value.code == "sms_daily_limit"


def test_per_ip_cap(settings: object) -> None:
    settings.SMS_CODE_MAX_PER_IP_PER_HOUR = 3  # type: ignore[attr-defined]
    for n in range(3):
        sms_code_send(mobile=f"1391234560{n}", purpose=SmsPurpose.REGISTER, ip="203.0.113.9")
    with pytest.raises(RateLimited) as exc:
        sms_code_send(mobile="13912345609", purpose=SmsPurpose.REGISTER, ip="203.0.113.9")
    assert exc.value.code == "sms_ip_limit"


def test_weak_password_is_refused_with_reason(client: Client, send_code: Callable) -> None:
    _, code = send_code(REGISTER, MOBILE)
    response = client.post(
        REGISTER,
        {"mobile": MOBILE, "code": code, "password1": "12345678", "password2": "12345678", "action": "register"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["password1"]
    assert not User.objects.filter(mobile=MOBILE).exists()
    # The code was not spent on a form that could not succeed.
    assert SmsCode.objects.get().used_at is None


def test_mismatched_passwords(client: Client) -> None:
    response = client.post(
        REGISTER,
        {"mobile": MOBILE, "code": "123456", "password1": PASSWORD, "password2": PASSWORD + "x", "action": "register"},
    )
    assert "两次输入的密码不一致" in response.content.decode()


def test_register_send_code_for_taken_number(client: Client, send_code: Callable, customer: User) -> None:
    page, code = send_code(REGISTER, customer.mobile)
    assert code == ""
    assert "已注册" in page


def test_twenty_wrong_passwords_lock_with_time_and_never_500(client: Client, customer: User) -> None:
    url = reverse("accounts:login")
    pages = []
    for _ in range(20):
        response = client.post(url, {"mobile": customer.mobile, "password": "wrong-password"})
        assert response.status_code == 200
        pages.append(response.content.decode())
    assert "再错 4 次" in pages[0]
    assert "临时锁定，请于" in pages[4]
    assert "临时锁定，请于" in pages[19]
    # The right password is refused while locked …
    locked = client.post(url, {"mobile": customer.mobile, "password": "Cust0mer-Pass-2026"})
    assert locked.status_code == 200
    assert "临时锁定" in locked.content.decode()
    assert AuditRecord.objects.filter(action="account.login_failed").count() >= 5
    # … and accepted once the lockout has passed.
    for failure in LoginFailure.objects.all():
        LoginFailure.objects.filter(pk=failure.pk).update(
            created_at=failure.created_at - datetime.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS + 1)
        )
    assert client.post(url, {"mobile": customer.mobile, "password": "Cust0mer-Pass-2026"}).status_code == 302


def test_unknown_number_gets_same_message_as_wrong_password(client: Client) -> None:
    response = client.post(reverse("accounts:login"), {"mobile": "13700000000", "password": "whatever-1"})
    assert "手机号码或密码不正确" in response.content.decode()


def test_login_with_sms_code(client: Client, send_code: Callable, customer: User) -> None:
    url = reverse("accounts:login_sms")
    _, code = send_code(url, customer.mobile)
    response = client.post(url, {"mobile": customer.mobile, "code": code, "action": "login"})
    assert response.status_code == 302
    assert AuditRecord.objects.filter(action="account.login", data__method="sms").exists()


def test_password_reset_by_sms(client: Client, send_code: Callable, customer: User) -> None:
    url = reverse("accounts:password_reset")
    _, code = send_code(url, customer.mobile)
    new = "Brand-New-Pass-2026"
    response = client.post(url, {"mobile": customer.mobile, "code": code, "password1": new, "password2": new})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.check_password(new)
    assert AuditRecord.objects.filter(action="account.password_reset", actor=customer.mobile).exists()


def test_reset_for_unknown_number(send_code: Callable) -> None:
    page, code = send_code(reverse("accounts:password_reset"), "13700000000")
    assert code == ""
    assert "尚未注册" in page


def test_logout_requires_post(customer_client: Client) -> None:
    assert customer_client.get(reverse("accounts:logout")).status_code == 405
    assert customer_client.post(reverse("accounts:logout")).status_code == 302


def test_next_redirect_is_kept_on_site(client: Client, customer: User) -> None:
    response = client.post(
        reverse("accounts:login") + "?next=https://evil.example/",
        {"mobile": customer.mobile, "password": "Cust0mer-Pass-2026", "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
