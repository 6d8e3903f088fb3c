from django.conf import settings

from certdesk.notifications.models import Channel, DemoInboxMessage


def demo_inbox_keep(*, channel: Channel, recipient: str, body: str, subject: str = "") -> None:
    """Keep a console-sent message for the demo inbox; nothing at all outside demo mode."""
    if settings.DEMO_MODE:
        DemoInboxMessage.objects.create(channel=channel, recipient=recipient, subject=subject, body=body)
