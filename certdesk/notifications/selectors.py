from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from certdesk.accounts.models import User
from certdesk.notifications.binding import binding_token_make
from certdesk.notifications.channels.wechat import wechat_oauth_authorize_url
from certdesk.notifications.models import DemoInboxMessage, Notification, NotificationPreference


def demo_inbox_list(*, recipient: str = "", limit: int = 200) -> QuerySet[DemoInboxMessage]:
    messages = DemoInboxMessage.objects.all()
    if recipient:
        messages = messages.filter(recipient__icontains=recipient)
    return messages[:limit]


def notification_list_for_user(*, user: User) -> QuerySet[Notification]:
    """The message centre: the user's own messages, newest first."""
    return Notification.objects.filter(user=user).order_by("-created_at", "-id")


def notification_for_user(*, user: User, notification_id: int) -> Notification | None:
    return Notification.objects.filter(user=user, pk=notification_id).first()


def notification_unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notification_preference_get(*, user: User) -> NotificationPreference:
    """The user's settings; the defaults (not saved) when they never changed them."""
    return NotificationPreference.objects.filter(user=user).first() or NotificationPreference(user=user)


def wechat_binding_oauth_url(*, preference: NotificationPreference) -> str:
    """The WeChat OAuth (snsapi_base) address that binds this account; shown as a QR code."""
    state = binding_token_make(user_id=preference.user_id, version=preference.wechat_binding_version)
    redirect_uri = settings.SITE_URL.rstrip("/") + reverse("notifications:wechat_oauth_callback")
    return wechat_oauth_authorize_url(redirect_uri=redirect_uri, state=state)
