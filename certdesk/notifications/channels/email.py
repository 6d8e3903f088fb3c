"""E-mail goes through Django's e-mail framework (SMTP in production). The
embedded default prints each message and keeps it for the demo inbox."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.core.mail.backends.console import EmailBackend as DjangoConsoleBackend
from django.template.loader import render_to_string

from certdesk.notifications.channels.base import ChannelBackend, DeliveryError, Outgoing
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


def _permanent(code: int) -> bool:
    return 500 <= code < 600


class EmailChannel(ChannelBackend):
    """Notifications by e-mail through EMAIL_BACKEND, with attachments."""

    channel = Channel.EMAIL

    def message_id(self, message: Outgoing) -> str:
        # Derived from the dedupe key: if a crash makes us send the same notification
        # twice, both copies carry one Message-ID and mail systems may fold them.
        domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "certdesk.local"
        return f"<{message.idempotency_id}@{domain}>"

    def build(self, message: Outgoing) -> EmailMultiAlternatives:
        context = {"title": message.title, "body": message.body, "url": message.url}
        email = EmailMultiAlternatives(
            subject=f"【证书自助办理平台】{message.title}",
            body=render_to_string("notifications/email/notification.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient],
            headers={"Message-ID": self.message_id(message), "Auto-Submitted": "auto-generated"},
        )
        email.attach_alternative(render_to_string("notifications/email/notification.html", context), "text/html")
        for attachment in message.attachments:
            email.attach(attachment.name, attachment.content, attachment.mimetype)
        return email

    def deliver(self, message: Outgoing) -> str:
        email = self.build(message)
        try:
            with get_connection(fail_silently=False) as connection:
                connection.send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"SMTP refused the recipient: {exc.recipients}", permanent=all(map(_permanent, codes))
            ) from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise DeliveryError(
                f"SMTP refused the message: {exc.smtp_code} {exc.smtp_error!r}", permanent=_permanent(exc.smtp_code)
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP server unavailable: {exc!r}") from exc
        return self.message_id(message)
