from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from certdesk.audit.models import AuditRecord
from certdesk.audit.selectors import audit_chain_verify
from certdesk.audit.services import audit_log

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain() -> list[AuditRecord]:
    return [audit_log(action="test.event", actor="13800000001", object_id=n, data={"n": n}) for n in range(5)]


def test_intact_chain_verifies(chain: list[AuditRecord], capsys: pytest.CaptureFixture[str]) -> None:
    call_command("audit_verify")
    assert "5 records" in capsys.readouterr().out
    assert [r.prev_hash for r in chain[1:]] == [r.hash for r in chain[:-1]]


def test_records_refuse_update_and_delete(chain: list[AuditRecord]) -> None:
    with pytest.raises(RuntimeError):
        chain[0].save()
    with pytest.raises(RuntimeError):
        chain[0].delete()


def test_tampered_record_is_found(chain: list[AuditRecord]) -> None:
    # A bulk UPDATE bypasses the model guard, as a person with database access would.
    AuditRecord.objects.filter(seq=3).update(data={"n": 99})
    report = audit_chain_verify()
    assert report.broken_at == 3
    assert "altered" in report.reason
    with pytest.raises(CommandError, match="broken at record 3"):
        call_command("audit_verify")


def test_deleted_middle_record_is_found(chain: list[AuditRecord]) -> None:
    AuditRecord.objects.filter(seq=2).delete()
    assert audit_chain_verify().broken_at == 2


def test_deleted_newest_record_is_found(chain: list[AuditRecord]) -> None:
    AuditRecord.objects.filter(seq=5).delete()
    report = audit_chain_verify()
    assert not report.ok
    assert "newest removed" in report.reason


def test_rehashed_record_still_breaks_the_next_link(chain: list[AuditRecord]) -> None:
    from certdesk.audit.services import audit_record_hash

    forged = AuditRecord.objects.get(seq=2)
    forged.data = {"n": 42}
    AuditRecord.objects.filter(seq=2).update(data=forged.data, hash=audit_record_hash(forged))
    report = audit_chain_verify()
    assert report.broken_at == 3
    assert "previous-hash" in report.reason


def test_audit_joins_the_callers_transaction() -> None:
    from django.db import transaction

    with pytest.raises(ValueError, match="boom"), transaction.atomic():
        audit_log(action="test.rolled_back")
        raise ValueError("boom")
    assert not AuditRecord.objects.filter(action="test.rolled_back").exists()
    assert audit_chain_verify().ok
