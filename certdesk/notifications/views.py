"""通知设置, 消息中心 (站内信), WeChat binding and callbacks, the demo inbox.

Views parse input and call services/selectors. Every message lookup is by id
*and* the logged-in user, so another account's message is a 404.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from certdesk.accounts.models import User
from certdesk.core.errors import DomainError
from certdesk.notifications.channels.wechat import wechat_signature_valid
from certdesk.notifications.forms import PreferenceForm
from certdesk.notifications.selectors import (
    demo_inbox_list,
    notification_for_user,
    notification_list_for_user,
    notification_preference_get,
    notification_unread_count,
    wechat_binding_oauth_url,
)
from certdesk.notifications.services import (
    notification_mark_all_read,
    notification_mark_read,
    notification_preference_update,
    wechat_bind,
    wechat_bind_by_oauth,
    wechat_binding_qrcode,
    wechat_event_receive,
    wechat_unbind,
)

MESSAGES_PER_PAGE = 20
WECHAT_XML_MAX_BYTES = 64 * 1024


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _wechat_configured() -> bool:
    return bool(settings.WECHAT_APP_ID and settings.WECHAT_APP_SECRET)


def _qr_svg(content: str) -> str:
    return segno.make(content, error="m").svg_inline(scale=4)


def demo_inbox(request: HttpRequest) -> HttpResponse:
    if not settings.DEMO_MODE:
        raise Http404
    recipient = request.GET.get("to", "").strip()[:254]
    return render(
        request,
        "notifications/demo_inbox.html",
        {"inbox": demo_inbox_list(recipient=recipient), "recipient": recipient},
    )


# --- 通知设置 ------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    preference = notification_preference_get(user=user)
    form = PreferenceForm(
        request.POST or None,
        initial={
            "sms_enabled": preference.sms_enabled,
            "email_enabled": preference.email_enabled,
            "wechat_enabled": preference.wechat_enabled,
        },
    )
    if request.method == "POST" and form.is_valid():
        notification_preference_update(user=user, **form.cleaned_data)
        messages.success(request, "通知设置已保存。")
        return redirect("notifications:preferences")
    oauth_url = ""
    if _wechat_configured() and not preference.wechat_openid:
        oauth_url = wechat_binding_oauth_url(preference=preference)
    return render(
        request,
        "notifications/preferences.html",
        {
            "form": form,
            "preference": preference,
            "oauth_url": oauth_url,
            "oauth_qr": _qr_svg(oauth_url) if oauth_url else "",
            "wechat_configured": _wechat_configured(),
            "max_age_minutes": settings.WECHAT_BINDING_MAX_AGE // 60,
        },
    )


@login_required
@require_GET
def wechat_qrcode(request: HttpRequest) -> HttpResponse:
    """The parametric QR code: scanning it follows the account and binds in one step."""
    if not _wechat_configured():
        raise Http404
    try:
        content = wechat_binding_qrcode(user=_user(request))
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("notifications:preferences")
    return render(
        request,
        "notifications/wechat_qrcode.html",
        {"qr": _qr_svg(content), "max_age_minutes": settings.WECHAT_BINDING_MAX_AGE // 60},
    )


@login_required
@require_POST
def wechat_unbind_view(request: HttpRequest) -> HttpResponse:
    wechat_unbind(user=_user(request))
    messages.success(request, "已解除微信绑定，今后不再通过微信公众号推送通知。")
    return redirect("notifications:preferences")


@login_required
@require_POST
def wechat_demo_bind(request: HttpRequest) -> HttpResponse:
    """模拟绑定 (demo mode only): a made-up openid, so the demo inbox shows the WeChat messages."""
    if not settings.DEMO_MODE:
        raise Http404
    user = _user(request)
    wechat_bind(user=user, openid=f"demo-openid-{user.mobile}", via="demo")
    messages.success(request, "已模拟绑定微信。微信公众号消息将显示在演示收件箱中。")
    return redirect("notifications:preferences")


@require_GET
def wechat_oauth_callback(request: HttpRequest) -> HttpResponse:
    """WeChat's browser lands here after snsapi_base authorisation; no portal session is needed."""
    code = request.GET.get("code", "")[:128]
    state = request.GET.get("state", "")[:128]
    if not code:
        return render(
            request, "notifications/wechat_bound.html", {"error": "未获得微信授权，请重新扫码绑定。"}, status=400
        )
    try:
        wechat_bind_by_oauth(code=code, state=state)
    except DomainError as error:
        return render(request, "notifications/wechat_bound.html", {"error": error.message}, status=400)
    return render(request, "notifications/wechat_bound.html", {"error": ""})


# --- WeChat server callback ----------------------------------------------------------------------


def _parse_wechat_xml(body: bytes) -> dict[str, str] | None:
    head = body[:WECHAT_XML_MAX_BYTES].upper()
    if len(body) > WECHAT_XML_MAX_BYTES or b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        return None  # WeChat never sends a DTD; refusing them rules out entity tricks
    try:
        root = ET.fromstring(body)  # noqa: S314 (no DTD can reach here)
    except ET.ParseError:
        return None
    return {child.tag: (child.text or "") for child in root}


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@csrf_exempt  # WeChat's servers post here; the signature below is the check
@require_http_methods(["GET", "POST"])
def wechat_callback(request: HttpRequest) -> HttpResponse:
    if not wechat_signature_valid(
        signature=request.GET.get("signature", ""),
        timestamp=request.GET.get("timestamp", ""),
        nonce=request.GET.get("nonce", ""),
    ):
        return HttpResponseForbidden("invalid signature")
    if request.method == "GET":  # the URL check when the server address is configured
        return HttpResponse(request.GET.get("echostr", ""), content_type="text/plain")
    message = _parse_wechat_xml(request.body)
    if message is None:
        return HttpResponse(status=400)
    reply = ""
    openid = message.get("FromUserName", "")
    if message.get("MsgType") == "event" and openid:
        reply = wechat_event_receive(
            openid=openid, event=message.get("Event", ""), event_key=message.get("EventKey", "")
        )
    if not reply:
        return HttpResponse("success", content_type="text/plain")
    xml = (
        f"<xml><ToUserName>{_cdata(openid)}</ToUserName>"
        f"<FromUserName>{_cdata(message.get('ToUserName', ''))}</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType>{_cdata('text')}</MsgType>"
        f"<Content>{_cdata(reply)}</Content></xml>"
    )
    return HttpResponse(xml, content_type="application/xml; charset=utf-8")


# --- 消息中心 ------------------------------------------------------------------------------------


@login_required
@require_GET
def message_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    page = Paginator(notification_list_for_user(user=user), MESSAGES_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request, "notifications/message_list.html", {"page": page, "unread": notification_unread_count(user=user)}
    )


@login_required
@require_GET
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    notification = notification_for_user(user=_user(request), notification_id=pk)
    if notification is None:
        raise Http404
    notification_mark_read(notification=notification)
    return render(request, "notifications/message_detail.html", {"message": notification})


@login_required
@require_POST
def message_read_all(request: HttpRequest) -> HttpResponse:
    notification_mark_all_read(user=_user(request))
    return redirect("notifications:message_list")
