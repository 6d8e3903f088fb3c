from __future__ import annotations

from certdesk.audit.models import AuditChainHead, AuditRecord
from certdesk.audit.services import ChainReport, audit_record_hash


def audit_chain_verify() -> ChainReport:
    """Walk the chain in order; report the first record that does not fit."""
    prev_hash = "0" * 64
    expected_seq = 1
    checked = 0
    for record in AuditRecord.objects.order_by("seq").iterator(chunk_size=2000):
        if record.seq != expected_seq:
            return ChainReport(checked, expected_seq, f"record {expected_seq} is missing")
        if record.prev_hash != prev_hash:
            return ChainReport(checked, record.seq, "previous-hash link does not match")
        if audit_record_hash(record) != record.hash:
            return ChainReport(checked, record.seq, "content does not match its hash (altered)")
        prev_hash = record.hash
        expected_seq += 1
        checked += 1
    head = AuditChainHead.objects.filter(id=1).first()
    if head is not None and (head.last_seq != checked or head.last_hash != prev_hash):
        return ChainReport(checked, checked + 1, f"chain head says {head.last_seq} records: newest removed")
    return ChainReport(checked, None, "")
