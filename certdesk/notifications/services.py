"""Notifications: the outbox, its delivery, preferences and WeChat binding.

How a notification reaches the customer
---------------------------------------
`notification_send` runs in the caller's transaction (the state change it
reports). It stores the 站内信 and one `OutboxMessage` per enabled channel,
both under unique dedupe keys, and asks for delivery only after commit: a
rolled-back state change tells nobody, a repeated call stores nothing new.

Delivery (`outbox_deliver`) first *claims* the row with a conditional update
(pending → sending, only for the dispatch number the task was queued with),
so two workers never send the same row; then calls the provider outside any
transaction; then marks the row sent, or pending again with exponential
back-off (failed after NOTIFY_MAX_ATTEMPTS, or at once for errors no retry can
fix). The claim carries a lease. `outbox_retry` (periodic, every 30 s)
dispatches rows that are due and returns rows whose lease ran out (a worker
killed or hung mid-delivery) to pending.

The remaining window: a worker that dies after the provider accepted a
message but before its "sent" update commits leaves a claimed row; when the
lease runs out it is sent again. Likewise a timeout *after* the provider
accepted looks like a failure and is retried: we prefer a rare duplicate to a
lost review result. The window is the provider call's return plus one UPDATE;
it is narrowed further where the provider helps: e-mails carry a Message-ID
derived from the dedupe key, WeChat gets `client_msg_id` (WeChat drops a
repeat within about ten minutes), Aliyun SMS gets `OutId` (receipts only, no
deduplication). A worker that merely outlived its lease still marks the row
sent if no one has claimed it again, so a slow send is not repeated.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Sequence
from functools import partial
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from certdesk.accounts.models import User
from certdesk.audit.services import audit_log
from certdesk.core.errors import DomainError
from certdesk.notifications.binding import binding_token_make, binding_token_user_id, binding_token_valid
from certdesk.notifications.channels.base import Attachment, ChannelBackend, DeliveryError, Outgoing, channel_backend
from certdesk.notifications.channels.wechat import WechatClient
from certdesk.notifications.models import (
    Channel,
    Notification,
    NotificationAttachment,
    NotificationEvent,
    NotificationPreference,
    OutboxMessage,
    OutboxStatus,
)
from certdesk.notifications.selectors import notification_preference_get
from certdesk.notifications.tasks import outbox_deliver_task, sms_deliver
from certdesk.notifications.texts import event_render

logger = logging.getLogger(__name__)

QR_SCENE_PREFIX = "bind"
LEASE_LOST = "投递中断：处理该消息的进程在发送完成前退出或超时，已重新排队。"


def sms_send(*, mobile: str, text: str, template: str, params: dict[str, str]) -> None:
    """Hand an SMS to the worker once the caller's transaction commits."""
    transaction.on_commit(partial(sms_deliver.enqueue, mobile=mobile, text=text, template=template, params=params))


# --- sending -------------------------------------------------------------------------------------


def _recipients(
    *, user: User, event: NotificationEvent, context: dict[str, str], preference: NotificationPreference
) -> dict[Channel, str]:
    recipients: dict[Channel, str] = {}
    if preference.sms_enabled and user.mobile:
        recipients[Channel.SMS] = user.mobile
    # The order's own address (经办人邮箱, 发票邮箱) wins over the account's.
    email = context.get("email") or user.email
    if preference.email_enabled and email:
        recipients[Channel.EMAIL] = email
    if preference.wechat_enabled and preference.wechat_openid and channel_backend(Channel.WECHAT).handles(event):
        recipients[Channel.WECHAT] = preference.wechat_openid
    return recipients


@transaction.atomic
def notification_send(
    *,
    user: User,
    event: NotificationEvent,
    context: dict[str, str],
    dedupe_key: str,
    link: str = "",
    attachments: Sequence[Attachment | tuple[str, bytes, str]] = (),
) -> None:
    """Tell `user` about `event`: a 站内信 always, plus SMS, e-mail and WeChat as the user chose.

    Call it inside the transaction of the state change it reports. `dedupe_key`
    names this occurrence of the event (e.g. "order:<number>:approved_pay") and
    must be unique across the site: calling again with the same key stores
    nothing twice. `context` fills the event's text (see texts.TEXTS); an
    "email" entry overrides the account's address. `link` is a site path such
    as the order page. `attachments` (name, bytes, mimetype) go with the e-mail.
    """
    event = NotificationEvent(event)
    if not dedupe_key or len(dedupe_key) > 200:
        raise ValueError("dedupe_key must be 1 to 200 characters")
    if link and not link.startswith(("/", "https://", "http://")):
        raise ValueError("link must be a site path or an http(s) address")
    context = {str(key): str(value) for key, value in context.items()}
    title, body = event_render(event=event, context=context)  # refuses a missing value before storing anything

    try:
        with transaction.atomic():  # savepoint: a repeat (or a concurrent twin) hits the unique key
            notification = Notification.objects.create(
                user=user, event=event, title=title, body=body, link=link, context=context, dedupe_key=dedupe_key
            )
    except IntegrityError:
        notification = Notification.objects.get(dedupe_key=dedupe_key)
        if notification.user_id != user.pk:
            raise ValueError(f"dedupe_key {dedupe_key!r} already used for another user") from None
    else:
        for name, content, mimetype in attachments:
            NotificationAttachment.objects.create(
                notification=notification, name=name, content=content, mimetype=mimetype
            )

    now = timezone.now()
    preference = notification_preference_get(user=user)
    for channel, recipient in _recipients(user=user, event=event, context=context, preference=preference).items():
        try:
            with transaction.atomic():
                row = OutboxMessage.objects.create(
                    notification=notification,
                    channel=channel,
                    recipient=recipient,
                    dedupe_key=f"{dedupe_key}:{channel.value}",
                    # The task queued below normally claims it at once; if that task is lost,
                    # the sweep dispatches the row after this grace period.
                    next_attempt_at=now + datetime.timedelta(seconds=settings.NOTIFY_LEASE_SECONDS),
                )
        except IntegrityError:
            continue  # already stored for this channel
        # robust: a queue hiccup must not turn the committed state change into an error page.
        transaction.on_commit(
            partial(outbox_deliver_task.enqueue, outbox_id=row.pk, dispatch_no=row.dispatch_no), robust=True
        )


# --- delivery ------------------------------------------------------------------------------------


def outbox_backoff(attempts: int) -> datetime.timedelta:
    """Wait after the `attempts`-th failure: 1, 2, 4, 8 … minutes, capped."""
    seconds = settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return datetime.timedelta(seconds=min(seconds, settings.NOTIFY_RETRY_MAX_SECONDS))


def outbox_claim(*, outbox_id: int, dispatch_no: int, now: datetime.datetime) -> str | None:
    """Take the row for delivery; returns the claim token, or None if it is not ours to send."""
    token = uuid.uuid4().hex
    claimed = OutboxMessage.objects.filter(pk=outbox_id, status=OutboxStatus.PENDING, dispatch_no=dispatch_no).update(
        status=OutboxStatus.SENDING,
        dispatch_no=F("dispatch_no") + 1,
        claim_token=token,
        claimed_at=now,
        lease_until=now + datetime.timedelta(seconds=settings.NOTIFY_LEASE_SECONDS),
        attempts=F("attempts") + 1,
    )
    return token if claimed else None


def outbox_mark_sent(*, outbox_id: int, token: str, provider_ref: str, now: datetime.datetime) -> bool:
    # Matched by claim token, not status: if our lease ran out and the sweep put the row
    # back to pending, nobody has sent it again yet, and it *was* sent, so say so.
    updated = (
        OutboxMessage.objects.filter(pk=outbox_id, claim_token=token)
        .exclude(status=OutboxStatus.SENT)
        .update(status=OutboxStatus.SENT, sent_at=now, provider_ref=provider_ref[:100], lease_until=None)
    )
    if not updated:
        logger.warning("outbox %s was sent after another worker claimed it again: it may arrive twice", outbox_id)
    return bool(updated)


def outbox_mark_failed(
    *, outbox_id: int, token: str, attempts: int, error: str, permanent: bool, now: datetime.datetime
) -> OutboxStatus:
    give_up = permanent or attempts >= settings.NOTIFY_MAX_ATTEMPTS
    status = OutboxStatus.FAILED if give_up else OutboxStatus.PENDING
    OutboxMessage.objects.filter(pk=outbox_id, claim_token=token, status=OutboxStatus.SENDING).update(
        status=status,
        last_error=error[:2000],
        lease_until=None,
        next_attempt_at=now if give_up else now + outbox_backoff(attempts),
    )
    return status


def _absolute(path: str) -> str:
    if not path or path.startswith(("http://", "https://")):
        return path
    return settings.SITE_URL.rstrip("/") + path


def _outgoing(row: OutboxMessage) -> Outgoing:
    notification = row.notification
    attachments = []
    if row.channel == Channel.EMAIL:
        attachments = [Attachment(a.name, bytes(a.content), a.mimetype) for a in notification.attachments.all()]
    link = notification.link or reverse("notifications:message_detail", args=[notification.pk])
    return Outgoing(
        dedupe_key=row.dedupe_key,
        recipient=row.recipient,
        event=NotificationEvent(notification.event),
        title=notification.title,
        body=notification.body,
        url=_absolute(link),
        context=dict(notification.context),
        attachments=attachments,
    )


def outbox_deliver(
    *,
    outbox_id: int,
    dispatch_no: int,
    now: datetime.datetime | None = None,
    backend: ChannelBackend | None = None,
) -> OutboxStatus | None:
    """Deliver one outbox row if it is still ours to send. Never call inside a transaction:
    each step must commit on its own, and the provider call must hold no locks."""
    now = now or timezone.now()
    token = outbox_claim(outbox_id=outbox_id, dispatch_no=dispatch_no, now=now)
    if token is None:
        return None  # sent, failed, claimed by another worker, or this task is a stale duplicate
    row = OutboxMessage.objects.select_related("notification").get(pk=outbox_id)
    try:
        backend = backend or channel_backend(Channel(row.channel))
        provider_ref = backend.deliver(_outgoing(row))
    except DeliveryError as exc:
        logger.warning("outbox %s (%s) attempt %s failed: %s", row.pk, row.channel, row.attempts, exc)
        return outbox_mark_failed(
            outbox_id=row.pk, token=token, attempts=row.attempts, error=str(exc), permanent=exc.permanent, now=now
        )
    except Exception as exc:
        # An unexpected answer or a bug: keep the trace, retry like any transient failure.
        logger.exception("outbox %s (%s) attempt %s crashed", row.pk, row.channel, row.attempts)
        return outbox_mark_failed(
            outbox_id=row.pk, token=token, attempts=row.attempts, error=repr(exc), permanent=False, now=now
        )
    outbox_mark_sent(outbox_id=row.pk, token=token, provider_ref=provider_ref, now=now)
    return OutboxStatus.SENT


def outbox_retry(*, now: datetime.datetime | None = None, limit: int = 500) -> int:
    """The periodic sweep: recover rows whose lease ran out, dispatch rows that are due.
    Returns how many rows were dispatched."""
    now = now or timezone.now()
    expired = OutboxMessage.objects.filter(status=OutboxStatus.SENDING, lease_until__lte=now)
    expired.filter(attempts__gte=settings.NOTIFY_MAX_ATTEMPTS).update(
        status=OutboxStatus.FAILED, last_error=LEASE_LOST, lease_until=None
    )
    # The claim token stays, so a worker that was only slow can still mark the row sent.
    recovered = expired.update(
        status=OutboxStatus.PENDING, next_attempt_at=now, last_error=LEASE_LOST, lease_until=None
    )
    if recovered:
        logger.warning("outbox: %s deliveries lost their worker; queued again", recovered)

    due = OutboxMessage.objects.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now).order_by(
        "next_attempt_at"
    )
    redispatch_at = now + datetime.timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
    dispatched = 0
    for outbox_id, dispatch_no in due.values_list("pk", "dispatch_no")[:limit]:
        # Conditional, so two sweeps never queue the same row; pushing next_attempt_at on means
        # a queued task has until then to run before the row is dispatched again.
        taken = OutboxMessage.objects.filter(pk=outbox_id, status=OutboxStatus.PENDING, dispatch_no=dispatch_no).update(
            dispatch_no=dispatch_no + 1, next_attempt_at=redispatch_at
        )
        if not taken:
            continue
        try:
            outbox_deliver_task.enqueue(outbox_id=outbox_id, dispatch_no=dispatch_no + 1)
        except Exception:
            logger.exception("outbox %s: could not queue its delivery; the next sweep tries again", outbox_id)
            continue
        dispatched += 1
    return dispatched


@transaction.atomic
def outbox_requeue(*, outbox_ids: Sequence[int], actor: User) -> int:
    """Give failed rows a fresh series of attempts (an operator's decision, audited)."""
    count = OutboxMessage.objects.filter(pk__in=outbox_ids, status=OutboxStatus.FAILED).update(
        status=OutboxStatus.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
    if count:
        audit_log(
            action="notification.requeued",
            actor=actor.mobile,
            object_type="outbox",
            data={"ids": list(outbox_ids), "count": count},
        )
    return count


# --- the message centre --------------------------------------------------------------------------


def notification_mark_read(*, notification: Notification) -> None:
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at)


def notification_mark_all_read(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


# --- preferences and WeChat binding --------------------------------------------------------------


def _preference_locked(user: User) -> NotificationPreference:
    NotificationPreference.objects.get_or_create(user=user)
    return NotificationPreference.objects.select_for_update().get(user=user)


@transaction.atomic
def notification_preference_update(
    *, user: User, sms_enabled: bool, email_enabled: bool, wechat_enabled: bool
) -> NotificationPreference:
    preference = _preference_locked(user)
    preference.sms_enabled = sms_enabled
    preference.email_enabled = email_enabled
    preference.wechat_enabled = wechat_enabled
    preference.save(update_fields=["sms_enabled", "email_enabled", "wechat_enabled"])
    audit_log(
        action="notification.preference_updated",
        actor=user.mobile,
        object_type="user",
        object_id=user.pk,
        data={"sms": sms_enabled, "email": email_enabled, "wechat": wechat_enabled},
    )
    return preference


@transaction.atomic
def wechat_bind(*, user: User, openid: str, via: str) -> NotificationPreference:
    preference = _preference_locked(user)
    preference.wechat_openid = openid
    preference.wechat_bound_at = timezone.now()
    preference.wechat_binding_version += 1
    preference.save(update_fields=["wechat_openid", "wechat_bound_at", "wechat_binding_version"])
    audit_log(
        action="notification.wechat_bound",
        actor=user.mobile,
        object_type="user",
        object_id=user.pk,
        data={"via": via, "openid": openid},
    )
    return preference


class BindingExpired(DomainError):
    code = "wechat_binding_expired"


BINDING_EXPIRED_MESSAGE = "绑定二维码已失效，请登录证书自助办理平台，在“通知设置”中重新扫码绑定。"


@transaction.atomic
def wechat_bind_by_token(*, token: str, openid: str, via: str) -> User:
    """Finish a binding started on the account page; the token names the account."""
    expired = BindingExpired(BINDING_EXPIRED_MESSAGE)
    user_id = binding_token_user_id(token)
    user = User.objects.filter(pk=user_id, is_active=True).first() if user_id is not None else None
    if user is None:
        raise expired
    preference = _preference_locked(user)
    if preference.wechat_openid == openid:
        return user  # WeChat repeats events it thinks we missed; binding twice is a no-op
    if not binding_token_valid(token=token, version=preference.wechat_binding_version):
        raise expired
    wechat_bind(user=user, openid=openid, via=via)
    return user


def wechat_bind_by_oauth(*, code: str, state: str) -> User:
    """The OAuth (snsapi_base) callback: `state` is the binding token, `code` buys the openid.
    Not atomic on purpose: the code exchange is an HTTP call and must hold no lock."""
    user_id = binding_token_user_id(state)
    versions = NotificationPreference.objects.filter(user_id=user_id or 0).values_list(
        "wechat_binding_version", flat=True
    )
    if user_id is None or not binding_token_valid(token=state, version=versions.first() or 0):
        raise BindingExpired(BINDING_EXPIRED_MESSAGE)
    try:
        openid = WechatClient().oauth_openid(code=code)
    except DeliveryError as exc:
        logger.warning("WeChat OAuth code exchange failed: %s", exc)
        raise DomainError("微信授权失败，请重新扫码绑定。", code="wechat_oauth_failed") from exc
    return wechat_bind_by_token(token=state, openid=openid, via="oauth")


def wechat_binding_qrcode(*, user: User) -> str:
    """Create a temporary parametric QR code on WeChat whose scan binds this account;
    returns the content to draw as the QR image."""
    preference = notification_preference_get(user=user)
    token = binding_token_make(user_id=user.pk, version=preference.wechat_binding_version)
    try:
        answer = WechatClient().qrcode_create(
            scene_str=QR_SCENE_PREFIX + token, expire_seconds=settings.WECHAT_BINDING_MAX_AGE
        )
    except DeliveryError as exc:
        logger.warning("WeChat QR code creation failed: %s", exc)
        raise DomainError("暂时无法生成微信二维码，请稍后再试。", code="wechat_unavailable") from exc
    return str(answer["url"])


def wechat_event_receive(*, openid: str, event: str, event_key: str) -> str:
    """An event pushed by WeChat to /wechat/callback/; returns the text to reply (may be empty)."""
    event = event.lower()
    if event == "unsubscribe":
        wechat_unsubscribed(openid=openid)
        return ""
    if event not in {"subscribe", "scan"}:
        return ""
    # subscribe through a parametric QR code prefixes the scene with "qrscene_"; SCAN does not.
    scene = event_key.removeprefix("qrscene_")
    if scene.startswith(QR_SCENE_PREFIX):
        try:
            wechat_bind_by_token(token=scene.removeprefix(QR_SCENE_PREFIX), openid=openid, via="qrcode")
        except BindingExpired as exc:
            return exc.message
        return "绑定成功！订单审核结果等通知将通过本公众号推送给您。"
    if event == "subscribe":
        return "感谢关注东方中讯！登录证书自助办理平台，在“通知设置”中绑定微信，即可在这里收到订单通知。"
    return ""


@transaction.atomic
def wechat_unbind(*, user: User) -> None:
    preference = _preference_locked(user)
    if not preference.wechat_openid:
        return
    preference.wechat_openid = ""
    preference.wechat_bound_at = None
    preference.wechat_binding_version += 1
    preference.save(update_fields=["wechat_openid", "wechat_bound_at", "wechat_binding_version"])
    audit_log(action="notification.wechat_unbound", actor=user.mobile, object_type="user", object_id=user.pk)


@transaction.atomic
def wechat_unsubscribed(*, openid: str) -> int:
    """The user unfollowed the account: WeChat would refuse our messages (43004), so stop binding it."""
    users = list(User.objects.filter(notification_preference__wechat_openid=openid))
    for user in users:
        wechat_unbind(user=user)
    return len(users)


# --- certificate expiry reminders ----------------------------------------------------------------


def certificate_expiry_remind(*, now: datetime.datetime | None = None) -> int:
    """Remind owners of certificates that expire soon, once per threshold in NOTIFY_EXPIRY_REMIND_DAYS."""
    now = now or timezone.now()
    thresholds = sorted(settings.NOTIFY_EXPIRY_REMIND_DAYS)
    if not thresholds:
        return 0
    selector = import_string(settings.NOTIFY_EXPIRING_CERTIFICATES_SELECTOR)
    today = timezone.localdate(now)
    renew_start = reverse("orders:start", args=["renew"])
    reminded = 0
    for certificate in selector(within_days=thresholds[-1], now=now):
        if certificate.not_after <= now:
            continue
        days = (timezone.localdate(certificate.not_after) - today).days
        threshold = next((limit for limit in thresholds if days <= limit), None)
        if threshold is None:
            continue
        try:
            notification_send(
                user=certificate.user,
                event=NotificationEvent.EXPIRING,
                context={
                    "order_number": certificate.order_number,
                    "serial": certificate.serial,
                    "not_after": timezone.localtime(certificate.not_after).strftime("%Y-%m-%d"),
                    "days": str(days),
                },
                dedupe_key=f"certificate:{certificate.serial}:expiring:{threshold}",
                link=renew_start
                + (
                    "?" + urlencode({"key_sn": certificate.key_sn, "uscc": certificate.uscc})
                    if certificate.key_sn
                    else ""
                ),
            )
        except Exception:
            logger.exception("expiry reminder for certificate %s failed", certificate.serial)
            continue
        reminded += 1  # including reminders stored by an earlier run (the dedupe key holds them once)
    return reminded
