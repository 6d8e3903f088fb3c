from django.db.models import QuerySet

from certdesk.notifications.models import DemoInboxMessage


def demo_inbox_list(*, recipient: str = "", limit: int = 200) -> QuerySet[DemoInboxMessage]:
    messages = DemoInboxMessage.objects.all()
    if recipient:
        messages = messages.filter(recipient__icontains=recipient)
    return messages[:limit]
