"""E-mail goes through Django's e-mail framework (SMTP in production). The
embedded default prints each message and keeps it for the demo inbox."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.console import EmailBackend as DjangoConsoleBackend

from certdesk.notifications.channels.demo import demo_inbox_keep
from certdesk.notifications.models import Channel


class ConsoleInboxEmailBackend(DjangoConsoleBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = super().send_messages(email_messages)
        for message in email_messages:
            body = str(message.body)
            attachments = [a[0] for a in message.attachments if isinstance(a, tuple) and a[0]]
            if attachments:
                body += "\n\n[附件] " + ", ".join(str(name) for name in attachments)
            for recipient in message.recipients():
                demo_inbox_keep(channel=Channel.EMAIL, recipient=recipient, subject=str(message.subject), body=body)
        return sent
