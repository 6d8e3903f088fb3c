"""Periodic CA upkeep on the tasks API.

`pki_refresh` regenerates CRLs past half their life, rotates the OCSP signer
and re-signs stale OCSP responses, then, where the backend can defer (the
database backend), schedules its own next run. A single schedule slot on the
issuing CA row (`refresh_scheduled_for`, claimed with a conditional update)
keeps one chain alive however often the chain is started (`pki_init` starts
it; cron running `manage.py pki_crl` works as well).
"""

from __future__ import annotations

import datetime

from django.db.models import Q
from django.utils import timezone
from django_tasks import task

from certdesk.pki import conf, services
from certdesk.pki.errors import CaNotInitialised
from certdesk.pki.models import CertificateAuthority
from certdesk.pki.selectors import ca_get


@task()
def pki_refresh() -> dict[str, int]:
    report = services.pki_maintain()
    pki_refresh_schedule()
    return report


def pki_refresh_schedule(*, now: datetime.datetime | None = None) -> datetime.datetime | None:
    """Enqueue the next run unless one is already scheduled; None when the backend cannot defer."""
    if not pki_refresh.get_backend().supports_defer:
        return None
    try:
        issuing = ca_get(role=CertificateAuthority.Role.ISSUING)
    except CaNotInitialised:
        return None
    now = now or timezone.now()
    when = now + conf.refresh_interval()
    claimed = (
        CertificateAuthority.objects.filter(pk=issuing.pk)
        .filter(Q(refresh_scheduled_for__isnull=True) | Q(refresh_scheduled_for__lte=now))
        .update(refresh_scheduled_for=when)
    )
    if not claimed:
        return None
    pki_refresh.using(run_after=when).enqueue()
    return when
