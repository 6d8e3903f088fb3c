"""The WeChat official-account channel and binding against a local fake of the
official API (tests/notifications/conftest.py)."""

from __future__ import annotations

import datetime
import hashlib
import html
import re
import urllib.parse
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from certdesk.accounts.models import User
from certdesk.notifications.channels.wechat import WechatClient, wechat_value
from certdesk.notifications.models import (
    Channel,
    NotificationEvent,
    NotificationPreference,
    OutboxMessage,
    OutboxStatus,
    WechatAccessToken,
)
from certdesk.notifications.services import notification_preference_update, notification_send
from tests.notifications.conftest import APP_ID, APP_SECRET, OPENID, ORDER_CONTEXT, WechatState

pytestmark = pytest.mark.django_db
Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]


@pytest.fixture(autouse=True)
def wechat_only(notified_user: User) -> None:
    notification_preference_update(user=notified_user, sms_enabled=False, email_enabled=False, wechat_enabled=True)


def _send(user: User, event: NotificationEvent, key: str, **context: str) -> None:
    notification_send(
        user=user, event=event, context={**ORDER_CONTEXT, **context}, dedupe_key=key, link="/orders/N20260101000001/"
    )


def _row(key: str) -> OutboxMessage:
    return OutboxMessage.objects.get(dedupe_key=f"{key}:wechat")


# --- template messages ---------------------------------------------------------------------------


def test_template_message_payload_has_the_official_shape(
    notified_user: User, fake_wechat: WechatState, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _send(notified_user, NotificationEvent.APPROVED_PAY, "k1", amount="300.00")
    [payload] = fake_wechat.template_sends
    assert payload["touser"] == OPENID
    assert payload["template_id"] == "TPL-APPROVED-PAY"
    assert payload["url"] == "http://127.0.0.1:8000/orders/N20260101000001/"
    assert payload["data"] == {
        "keyword1": {"value": "N20260101000001"},
        "keyword2": {"value": "审核通过，请付款"},
        "keyword3": {"value": "300.00元"},
    }
    assert payload["client_msg_id"] == hashlib.sha256(b"k1:wechat").hexdigest()[:32]
    row = _row("k1")
    assert row.status == OutboxStatus.SENT and row.provider_ref == "200001"


def test_configured_field_names_and_long_values_cut_to_twenty_characters(
    notified_user: User, fake_wechat: WechatState, django_capture_on_commit_callbacks: Capture
) -> None:
    reasons = "营业执照照片模糊无法辨认，法定代表人身份证已过期，请重新上传清晰有效的材料"
    with django_capture_on_commit_callbacks(execute=True):
        _send(notified_user, NotificationEvent.REJECTED, "k2", reasons=reasons)
    [payload] = fake_wechat.template_sends  # the fake refuses any value over 20 characters (47003)
    assert payload["template_id"] == "TPL-REJECTED"
    assert list(payload["data"]) == ["character_string1", "phrase2", "thing3"]
    value = payload["data"]["thing3"]["value"]
    assert len(value) == 20 and value == reasons[:19] + "…"
    # The 站内信 keeps the whole text.
    assert reasons in _row("k2").notification.body


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("审核通过", "审核通过"),
        ("一二三四五六七八九十一二三四五六七八九十", "一二三四五六七八九十一二三四五六七八九十"),  # exactly 20
        ("一二三四五六七八九十一二三四五六七八九十一", "一二三四五六七八九十一二三四五六七八九…"),
        ("第一行\n第二行\t 第三行", "第一行 第二行 第三行"),
        ("A" * 18 + "e\u0301" + "xyz", "A" * 18 + "\u00e9…"),  # composed to é first, then cut
        ("A" * 18 + "a\u0332b", "A" * 18 + "…"),  # a + combining low line is not split
        ("A" * 17 + "👨\u200d👩\u200d👧" + "xyz", "A" * 17 + "…"),  # a ZWJ family stays whole or goes
        ("A" * 18 + "🇨🇳🇨🇳", "A" * 18 + "…"),  # a flag is two regional indicators
        ("A" * 17 + "🇨🇳🇨🇳", "A" * 17 + "🇨🇳…"),
        ("A" * 16 + "🇨🇳🇨🇳x", "A" * 16 + "🇨🇳…"),
        ("A" * 16 + "🇨🇳🇨🇳", "A" * 16 + "🇨🇳🇨🇳"),  # exactly 20 code points
    ],
)
def test_wechat_value_fits_twenty_characters_without_breaking_characters(given: str, expected: str) -> None:
    assert wechat_value(given) == expected
    assert len(wechat_value(given)) <= 20


def test_access_token_is_cached_across_sends(
    notified_user: User, fake_wechat: WechatState, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _send(notified_user, NotificationEvent.SUBMITTED, "k3")
        _send(notified_user, NotificationEvent.SHIPPED, "k4", courier="EMS", tracking_number="E123")
    assert len(fake_wechat.template_sends) == 2
    assert len(fake_wechat.token_requests) == 1
    assert fake_wechat.token_requests[0] == {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET}
    assert fake_wechat.template_tokens == ["ACCESS_TOKEN_1", "ACCESS_TOKEN_1"]
    stored = WechatAccessToken.objects.get(app_id=APP_ID)
    # Kept until five minutes before WeChat's expires_in (7200 s).
    remaining = stored.expires_at - timezone.now()
    assert datetime.timedelta(minutes=114) < remaining <= datetime.timedelta(minutes=115)


def test_access_token_is_refreshed_once_when_wechat_says_invalid(
    notified_user: User, fake_wechat: WechatState, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _send(notified_user, NotificationEvent.SUBMITTED, "k5")
    fake_wechat.revoke_tokens()  # e.g. someone fetched a token elsewhere; WeChat answers 40001
    with django_capture_on_commit_callbacks(execute=True):
        _send(notified_user, NotificationEvent.SHIPPED, "k6", courier="EMS", tracking_number="E123")
    assert len(fake_wechat.token_requests) == 2
    assert fake_wechat.template_tokens == ["ACCESS_TOKEN_1", "ACCESS_TOKEN_1", "ACCESS_TOKEN_2"]
    assert [p["template_id"] for p in fake_wechat.template_sends] == ["TPL-SUBMITTED", "TPL-SHIPPED"]
    assert WechatAccessToken.objects.get(app_id=APP_ID).token == "ACCESS_TOKEN_2"
    assert _row("k6").status == OutboxStatus.SENT


def test_expired_cached_token_is_fetched_again(fake_wechat: WechatState) -> None:
    client = WechatClient()
    assert client.access_token() == "ACCESS_TOKEN_1"
    assert client.access_token() == "ACCESS_TOKEN_1"
    WechatAccessToken.objects.filter(app_id=APP_ID).update(
        expires_at=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    )
    assert client.access_token() == "ACCESS_TOKEN_2"
    assert len(fake_wechat.token_requests) == 2


def test_unfollowed_user_fails_at_once_without_retries(
    notified_user: User, fake_wechat: WechatState, django_capture_on_commit_callbacks: Capture
) -> None:
    fake_wechat.followers.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _send(notified_user, NotificationEvent.SUBMITTED, "k7")
    row = _row("k7")
    assert row.status == OutboxStatus.FAILED and row.attempts == 1
    assert "43004" in row.last_error


def test_events_without_a_template_do_not_go_to_wechat(notified_user: User, fake_wechat: WechatState) -> None:
    _send(notified_user, NotificationEvent.COMPLETED, "k8")
    assert not OutboxMessage.objects.filter(channel=Channel.WECHAT).exists()


def test_wechat_api_down_is_retried(
    notified_user: User, fake_wechat: WechatState, settings: Settings, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.WECHAT_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True):
        _send(notified_user, NotificationEvent.SUBMITTED, "k9")
    row = _row("k9")
    assert row.status == OutboxStatus.PENDING and "unreachable" in row.last_error


# --- binding by OAuth (snsapi_base) --------------------------------------------------------------


def _oauth_state(client: Client) -> tuple[str, dict[str, str]]:
    page = client.get("/account/notifications/").content.decode()
    match = re.search(r'href="(https://open\.weixin\.qq\.com/connect/oauth2/authorize\?[^"]+)"', page)
    assert match, "the OAuth binding link is on the page"
    url = html.unescape(match.group(1))
    assert url.endswith("#wechat_redirect")
    query = urllib.parse.urlsplit(url).query
    params = dict(urllib.parse.parse_qsl(query))
    assert [key for key, _ in urllib.parse.parse_qsl(query)] == [
        "appid",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
    ]
    return params["state"], params


def test_oauth_binding_stores_the_openid(customer_client: Client, customer: User, fake_wechat: WechatState) -> None:
    state, params = _oauth_state(customer_client)
    assert params["appid"] == APP_ID
    assert params["redirect_uri"] == "http://127.0.0.1:8000/wechat/oauth/callback/"
    assert params["response_type"] == "code" and params["scope"] == "snsapi_base"
    assert re.fullmatch(r"[A-Za-z0-9]{1,128}", state)

    fake_wechat.oauth_codes["CODE-1"] = "oCustomer-openid-42"
    wechat_browser = Client()  # the redirect opens in WeChat's browser, without the portal session
    response = wechat_browser.get("/wechat/oauth/callback/", {"code": "CODE-1", "state": state})
    assert response.status_code == 200
    assert "微信绑定成功" in response.content.decode()
    assert fake_wechat.oauth_requests == [
        {"appid": APP_ID, "secret": APP_SECRET, "code": "CODE-1", "grant_type": "authorization_code"}
    ]
    preference = NotificationPreference.objects.get(user=customer)
    assert preference.wechat_openid == "oCustomer-openid-42"
    assert preference.wechat_bound_at is not None

    # The same link cannot bind another WeChat afterwards.
    fake_wechat.oauth_codes["CODE-2"] = "oSomeone-else"
    response = wechat_browser.get("/wechat/oauth/callback/", {"code": "CODE-2", "state": state})
    assert response.status_code == 400
    assert NotificationPreference.objects.get(user=customer).wechat_openid == "oCustomer-openid-42"
    assert "已绑定微信" in customer_client.get("/account/notifications/").content.decode()


def test_oauth_with_forged_or_expired_state_is_refused_before_any_exchange(
    customer_client: Client, customer: User, fake_wechat: WechatState, settings: Settings
) -> None:
    state, _ = _oauth_state(customer_client)
    user_id, issued, signature = state.split("x")
    forged = f"{int(user_id) + 1}x{issued}x{signature}"
    fake_wechat.oauth_codes["CODE-1"] = "oAttacker"
    for bad in (forged, "", "garbage", f"{user_id}x{issued}x{'0' * 24}"):
        response = Client().get("/wechat/oauth/callback/", {"code": "CODE-1", "state": bad})
        assert response.status_code == 400
    settings.WECHAT_BINDING_MAX_AGE = -120  # every token is now too old
    assert Client().get("/wechat/oauth/callback/", {"code": "CODE-1", "state": state}).status_code == 400
    assert fake_wechat.oauth_requests == []
    assert not NotificationPreference.objects.filter(wechat_openid="oAttacker").exists()


def test_oauth_with_an_invalid_code_binds_nothing(
    customer_client: Client, customer: User, fake_wechat: WechatState
) -> None:
    state, _ = _oauth_state(customer_client)
    response = Client().get("/wechat/oauth/callback/", {"code": "NOT-ISSUED", "state": state})
    assert response.status_code == 400
    assert "微信授权失败" in response.content.decode()
    assert len(fake_wechat.oauth_requests) == 1
    assert not NotificationPreference.objects.exclude(wechat_openid="").filter(user=customer).exists()


# --- binding by parametric QR code and the server callback --------------------------------------


CALLBACK_TOKEN = "server-callback-token"  # as set by the fake_wechat fixture


def _signed(token: str = CALLBACK_TOKEN, timestamp: str = "1767225600", nonce: str = "n0nce") -> str:
    # WeChat's scheme, computed from the sending side: sha1 over the sorted three strings.
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()  # noqa: S324
    return f"signature={signature}&timestamp={timestamp}&nonce={nonce}"


def _event_xml(*, openid: str, event: str, key: str = "") -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_certdesk]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>1767225600</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"<EventKey><![CDATA[{key}]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>"
    )


def _post_event(client: Client, **kwargs: str) -> str:
    response = client.post(f"/wechat/callback/?{_signed()}", _event_xml(**kwargs), content_type="text/xml")
    assert response.status_code == 200
    return response.content.decode()


def test_qr_code_subscribe_binds_the_account(customer_client: Client, customer: User, fake_wechat: WechatState) -> None:
    page = customer_client.get("/account/notifications/wechat/qrcode/")
    assert page.status_code == 200 and "<svg" in page.content.decode()
    [qrcode] = fake_wechat.qrcodes
    assert qrcode["action_name"] == "QR_STR_SCENE" and qrcode["expire_seconds"] == 600
    scene = qrcode["action_info"]["scene"]["scene_str"]
    assert scene.startswith("bind") and len(scene) <= 64

    reply = _post_event(Client(), openid="oScanner-7", event="subscribe", key=f"qrscene_{scene}")
    assert "<ToUserName><![CDATA[oScanner-7]]></ToUserName>" in reply
    assert "<FromUserName><![CDATA[gh_certdesk]]></FromUserName>" in reply
    assert "绑定成功" in reply
    assert NotificationPreference.objects.get(user=customer).wechat_openid == "oScanner-7"

    # WeChat repeats an event it thinks we missed; a later SCAN of the same code is harmless too.
    assert "绑定成功" in _post_event(Client(), openid="oScanner-7", event="SCAN", key=scene)
    # Someone else scanning the used code is told it expired.
    assert "已失效" in _post_event(Client(), openid="oOther", event="SCAN", key=scene)
    assert NotificationPreference.objects.get(user=customer).wechat_openid == "oScanner-7"


def test_plain_subscribe_gets_a_welcome_and_unsubscribe_unbinds(notified_user: User, fake_wechat: WechatState) -> None:
    assert "通知设置" in _post_event(Client(), openid="oNew", event="subscribe")
    assert _post_event(Client(), openid=OPENID, event="unsubscribe") == "success"
    assert NotificationPreference.objects.get(user=notified_user).wechat_openid == ""


def test_callback_checks_the_signature(fake_wechat: WechatState) -> None:
    client = Client()
    ok = client.get(f"/wechat/callback/?{_signed()}&echostr=4711")
    assert ok.status_code == 200 and ok.content == b"4711"
    assert client.get(f"/wechat/callback/?{_signed(token='wrong')}&echostr=4711").status_code == 403
    forged = client.post(
        f"/wechat/callback/?{_signed(token='wrong')}",
        _event_xml(openid="o", event="subscribe"),
        content_type="text/xml",
    )
    assert forged.status_code == 403
    doctype = '<!DOCTYPE x [<!ENTITY a "b">]><xml><FromUserName>&a;</FromUserName></xml>'
    assert client.post(f"/wechat/callback/?{_signed()}", doctype, content_type="text/xml").status_code == 400


def test_callback_refuses_everything_when_no_token_is_configured(settings: Settings) -> None:
    settings.WECHAT_TOKEN = ""
    assert Client().get(f"/wechat/callback/?{_signed(token='')}&echostr=1").status_code == 403
