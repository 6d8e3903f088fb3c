from __future__ import annotations

import datetime

from certdesk.notifications.expiry import ExpiringCertificate
from certdesk.ra.models import CertificateRole, OrderCertificate


def expiring_certificates(*, within_days: int, now: datetime.datetime) -> list[ExpiringCertificate]:
    """Signing certificates on customers' keys that run out within `within_days` (for the reminders)."""
    records = (
        OrderCertificate.objects.filter(
            role=CertificateRole.SIGN,
            status=OrderCertificate.Status.INSTALLED,
            not_after__gt=now,
            not_after__lte=now + datetime.timedelta(days=within_days),
        )
        .select_related("order__owner")
        .order_by("not_after")
    )
    return [
        ExpiringCertificate(
            user=record.order.owner,
            serial=record.serial or "",
            not_after=record.not_after,
            order_number=record.order.number,
            key_sn=record.key_sn,
            uscc=record.uscc,
        )
        for record in records
        if record.not_after is not None
    ]
