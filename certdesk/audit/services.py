from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from certdesk.audit.models import AuditChainHead, AuditRecord


def _canonical(record: AuditRecord) -> bytes:
    content = {
        "seq": record.seq,
        "created_at": record.created_at.isoformat(),
        "actor": record.actor,
        "action": record.action,
        "object_type": record.object_type,
        "object_id": record.object_id,
        "ip": record.ip,
        "data": record.data,
    }
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def audit_record_hash(record: AuditRecord) -> str:
    return hashlib.sha256(record.prev_hash.encode() + b"\n" + _canonical(record)).hexdigest()


@transaction.atomic
def audit_log(
    *,
    action: str,
    actor: str = "",
    object_type: str = "",
    object_id: str | int = "",
    ip: str = "",
    data: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record. Joins the caller's transaction, so a rolled-back
    state change leaves no audit record either."""
    AuditChainHead.objects.get_or_create(id=1)
    head = AuditChainHead.objects.select_for_update().get(id=1)
    record = AuditRecord(
        seq=head.last_seq + 1,
        created_at=timezone.now(),
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        ip=ip,
        # Round-trip through JSON so the stored value is what gets hashed.
        data=json.loads(json.dumps(data or {}, default=str)),
        prev_hash=head.last_hash,
    )
    record.hash = audit_record_hash(record)
    record.save(force_insert=True)
    AuditChainHead.objects.filter(id=1).update(last_seq=record.seq, last_hash=record.hash)
    return record


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_at: int | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.broken_at is None
