"""The one interface every delivery channel implements.

The outbox hands a channel an `Outgoing` (everything needed to send one
notification to one recipient) and expects either a provider reference back
or a `DeliveryError`. `permanent=True` says retrying cannot help (unknown
recipient, user unsubscribed, template missing), so the row fails at once.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings
from django.utils.module_loading import import_string

from certdesk.notifications.models import Channel, NotificationEvent


class Attachment(NamedTuple):
    name: str
    content: bytes
    mimetype: str


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    dedupe_key: str  # unique per notification and channel; providers that can, deduplicate on it
    recipient: str  # mobile, e-mail address or openid
    event: NotificationEvent
    title: str
    body: str
    url: str  # absolute link to the order or the message
    context: dict[str, str]
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def idempotency_id(self) -> str:
        """A short stable id derived from the dedupe key, for provider fields with length limits."""
        return hashlib.sha256(self.dedupe_key.encode()).hexdigest()[:32]


class ChannelBackend(ABC):
    channel: Channel

    def handles(self, event: NotificationEvent) -> bool:
        """Whether this channel can carry the event at all (e.g. a WeChat template is configured)."""
        return True

    @abstractmethod
    def deliver(self, message: Outgoing) -> str:
        """Send one message; return the provider's reference (may be empty)."""


def channel_backend(channel: Channel) -> ChannelBackend:
    from certdesk.notifications.channels.email import EmailChannel
    from certdesk.notifications.channels.sms import SmsChannel

    if channel == Channel.SMS:
        return SmsChannel()
    if channel == Channel.EMAIL:
        return EmailChannel()
    backend: ChannelBackend = import_string(settings.WECHAT_BACKEND)()
    return backend
