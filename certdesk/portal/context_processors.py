from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject


def portal(request: HttpRequest) -> dict[str, Any]:
    def unread() -> int:
        from certdesk.notifications.selectors import notification_unread_count

        user = request.user
        return notification_unread_count(user=user) if user.is_authenticated else 0

    return {
        "demo_mode": settings.DEMO_MODE,
        "site_name": "证书自助办理平台",
        # Counted only when a page shows it.
        "unread_messages": SimpleLazyObject(unread),
    }
