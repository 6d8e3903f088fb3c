"""通知设置 and 消息中心: login required, a user sees only their own messages."""

from __future__ import annotations

import datetime
import re

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.audit.models import AuditRecord
from certdesk.notifications.models import (
    Channel,
    Notification,
    NotificationEvent,
    NotificationPreference,
    OutboxMessage,
)
from certdesk.notifications.services import notification_send
from tests.notifications.conftest import ORDER_CONTEXT

pytestmark = pytest.mark.django_db


def _notify(user: User, event: NotificationEvent, key: str, **context: str) -> Notification:
    notification_send(
        user=user, event=event, context={**ORDER_CONTEXT, **context}, dedupe_key=key, link="/orders/N20260101000001/"
    )
    return Notification.objects.get(dedupe_key=key)


@pytest.mark.parametrize(
    "path", ["/account/messages/", "/account/messages/1/", "/account/notifications/", "/account/messages/read-all/"]
)
def test_pages_need_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_message_centre_lists_own_messages_newest_first_with_unread_marks(
    customer_client: Client, customer: User, other_customer: User
) -> None:
    older = _notify(customer, NotificationEvent.SUBMITTED, "a")
    newer = _notify(customer, NotificationEvent.REJECTED, "b", reasons="照片不清晰")
    Notification.objects.filter(pk=older.pk).update(created_at=timezone.now() - datetime.timedelta(hours=1))
    _notify(other_customer, NotificationEvent.SHIPPED, "c", courier="EMS", tracking_number="SECRET-TRACKING")

    page = customer_client.get("/account/messages/").content.decode()
    assert page.index("审核不通过") < page.index("订单已提交")
    assert "SECRET-TRACKING" not in page and "证书已发货" not in page
    assert "您有 2 条未读消息" in page
    assert page.count("未读</span>") == 2
    assert f'href="/account/messages/{newer.pk}/"' in page


def test_opening_a_message_marks_it_read(customer_client: Client, customer: User) -> None:
    message = _notify(customer, NotificationEvent.REJECTED, "a", reasons="缺少公章")
    page = customer_client.get(f"/account/messages/{message.pk}/").content.decode()
    assert "缺少公章" in page
    assert 'href="/orders/N20260101000001/"' in page
    message.refresh_from_db()
    assert message.read_at is not None
    first_read = message.read_at
    customer_client.get(f"/account/messages/{message.pk}/")
    message.refresh_from_db()
    assert message.read_at == first_read  # reading again keeps the first time
    assert "没有未读消息" in customer_client.get("/account/messages/").content.decode()


def test_another_users_message_is_404_and_stays_unread(customer_client: Client, other_customer: User) -> None:
    theirs = _notify(other_customer, NotificationEvent.SUBMITTED, "x")
    assert customer_client.get(f"/account/messages/{theirs.pk}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_all_read_touches_only_own_messages(customer_client: Client, customer: User, other_customer: User) -> None:
    _notify(customer, NotificationEvent.SUBMITTED, "a")
    _notify(customer, NotificationEvent.COMPLETED, "b")
    theirs = _notify(other_customer, NotificationEvent.SUBMITTED, "c")
    assert customer_client.get("/account/messages/read-all/").status_code == 405
    assert customer_client.post("/account/messages/read-all/").status_code == 302
    assert not Notification.objects.filter(user=customer, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_message_centre_paginates(customer_client: Client, customer: User) -> None:
    for n in range(25):
        _notify(customer, NotificationEvent.SUBMITTED, f"k{n}", order_number=f"N{n:04d}")
    first = customer_client.get("/account/messages/").content.decode()
    second = customer_client.get("/account/messages/", {"page": 2}).content.decode()
    assert first.count('class="msg"') == 20 and second.count('class="msg"') == 5
    assert "第 2 / 2 页" in second


def test_choosing_channels_is_saved_audited_and_respected(customer_client: Client, customer: User) -> None:
    customer.email = "me@example.com"
    customer.save()
    page = customer_client.get("/account/notifications/").content.decode()
    assert re.search(r'name="sms_enabled"[^>]*checked', page)  # on by default

    response = customer_client.post("/account/notifications/", {"email_enabled": "on"})
    assert response.status_code == 302
    preference = NotificationPreference.objects.get(user=customer)
    assert (preference.sms_enabled, preference.email_enabled, preference.wechat_enabled) == (False, True, False)
    assert AuditRecord.objects.filter(action="notification.preference_updated", object_id=str(customer.pk)).exists()

    _notify(customer, NotificationEvent.SUBMITTED, "a")
    assert list(OutboxMessage.objects.values_list("channel", flat=True)) == [Channel.EMAIL]
    assert Notification.objects.filter(user=customer).count() == 1


def test_demo_bind_and_unbind(customer_client: Client, customer: User) -> None:
    page = customer_client.get("/account/notifications/").content.decode()
    assert "模拟绑定" in page
    assert customer_client.post("/account/notifications/wechat/demo-bind/").status_code == 302
    preference = NotificationPreference.objects.get(user=customer)
    assert preference.wechat_openid == f"demo-openid-{customer.mobile}"
    assert "已绑定微信" in customer_client.get("/account/notifications/").content.decode()

    _notify(customer, NotificationEvent.SUBMITTED, "a")
    assert OutboxMessage.objects.filter(channel=Channel.WECHAT, recipient=preference.wechat_openid).exists()

    assert customer_client.post("/account/notifications/wechat/unbind/").status_code == 302
    assert NotificationPreference.objects.get(user=customer).wechat_openid == ""
    actions = set(AuditRecord.objects.values_list("action", flat=True))
    assert {"notification.wechat_bound", "notification.wechat_unbound"} <= actions


def test_demo_bind_only_in_demo_mode(customer_client: Client, customer: User, settings: Settings) -> None:
    settings.DEMO_MODE = False
    assert customer_client.post("/account/notifications/wechat/demo-bind/").status_code == 404
    assert "模拟绑定" not in customer_client.get("/account/notifications/").content.decode()
    assert not NotificationPreference.objects.filter(user=customer).exclude(wechat_openid="").exists()


def test_wechat_qr_page_is_404_when_wechat_is_not_configured(customer_client: Client, settings: Settings) -> None:
    settings.WECHAT_APP_ID = ""
    assert customer_client.get("/account/notifications/wechat/qrcode/").status_code == 404


def test_pages_have_no_inline_scripts(customer_client: Client, customer: User) -> None:
    message = _notify(customer, NotificationEvent.SUBMITTED, "a")
    for path in ("/account/notifications/", "/account/messages/", f"/account/messages/{message.pk}/"):
        page = customer_client.get(path).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), path
        assert not re.search(r"\son[a-z]+=", page), path
