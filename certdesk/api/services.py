"""Writes of the agent API. The key work itself is `certdesk.fulfilment.keywork`; this adds what
only the HTTP edge knows about: who is knocking (the client address)."""

from __future__ import annotations

import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from certdesk.api import conf
from certdesk.api.models import SessionOpenFailure
from certdesk.core.errors import DomainError, RateLimited
from certdesk.fulfilment.keywork import OpenedSession, agent_session_open


def agent_session_open_limited(*, code: str, key_sn: str, ip: str) -> OpenedSession:
    """`agent_session_open`, refused for an address that failed too often lately.

    A pairing code has 32^8 values and lives ten minutes, so guessing is already hopeless; the
    limit makes sure nobody can even try at speed. Only failures count: an agent that opens its
    sessions properly is never slowed down."""
    now = timezone.now()
    window = datetime.timedelta(seconds=conf.open_window_seconds())
    recent = list(
        SessionOpenFailure.objects.filter(ip=ip, created_at__gt=now - window)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[: conf.open_max_failures()]
    )
    if len(recent) >= conf.open_max_failures():
        wait = int((recent[-1] + window - now).total_seconds()) + 1
        raise RateLimited(
            _("配对失败次数过多，请 %(m)d 分钟后再试。") % {"m": (wait + 59) // 60},
            retry_after_seconds=wait,
            code="rate_limited",
        )
    try:
        return agent_session_open(code=code, key_sn=key_sn)
    except DomainError:
        SessionOpenFailure.objects.create(ip=ip)
        SessionOpenFailure.objects.filter(created_at__lte=now - window).delete()
        raise
