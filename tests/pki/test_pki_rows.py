"""The issuance hot path's writes: plain SQL from the model, the same rows the ORM would write."""

from __future__ import annotations

import datetime
import importlib

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from pkitestlib import issue

from certdesk.pki.models import IssuedCertificate, OcspResponse
from certdesk.pki.rows import row_insert, row_update
from certdesk.pki.services import HierarchyInitResult

STAMPS = {"id", "serial", "created_at", "updated_at"}


def _certificate(ca: HierarchyInitResult, serial: str, **overrides: object) -> IssuedCertificate:
    values: dict[str, object] = {
        "serial": serial,
        "issuer": ca.issuing,
        "profile": "org-sign",
        "status": IssuedCertificate.Status.LINTED,
        "subject": "CN=示例科技有限公司,O=示例科技有限公司,C=CN",
        "organisation_name": "示例科技有限公司",
        "uscc": "91350100M000100Y43",
        "public_key_der": b"\x30\x59" + bytes(range(89)),
        "spki_sha256": "ab" * 32,
        "precertificate_der": b"\x30\x82\x01\x00" + b"\x00" * 256,
        "lint_findings": ["INFO pkix.x @ certificate", "中文 finding"],
        "not_before": datetime.datetime(2026, 1, 1, 8, 30, tzinfo=datetime.UTC),
        "not_after": datetime.datetime(2028, 1, 1, 8, 30, tzinfo=datetime.UTC),
        "reference": "order-1",
    }
    values.update(overrides)
    return IssuedCertificate(**values)


def _stored(pk: int) -> dict[str, object]:
    row = IssuedCertificate.objects.filter(pk=pk).values().get()
    return {name: bytes(v) if isinstance(v, memoryview) else v for name, v in row.items() if name not in STAMPS}


def test_row_insert_writes_what_the_orm_writes(ca: HierarchyInitResult) -> None:
    by_orm = _certificate(ca, "01" * 16)
    by_orm.save()
    by_sql = _certificate(ca, "02" * 16)
    row_insert(by_sql)
    assert by_sql.pk is not None and by_sql.pk != by_orm.pk and not by_sql._state.adding
    assert _stored(by_sql.pk) == _stored(by_orm.pk)
    stored = IssuedCertificate.objects.get(pk=by_sql.pk)
    assert stored.created_at == by_sql.created_at and stored.updated_at is not None  # auto_now(_add) stamped
    assert stored.status_version == 0 and stored.certificate_der is None  # model defaults


def test_row_insert_refuses_a_duplicate_serial(ca: HierarchyInitResult) -> None:
    row_insert(_certificate(ca, "03" * 16))
    with pytest.raises(IntegrityError), transaction.atomic():
        row_insert(_certificate(ca, "03" * 16))


def test_row_insert_other_models(ca: HierarchyInitResult) -> None:
    now = datetime.datetime(2026, 11, 27, tzinfo=datetime.UTC)
    response = OcspResponse(
        serial="0A" * 16, hash_algorithm="sha1", issuer=ca.issuing, der=b"\x30\x03\x0a\x01\x00", this_update=now,
        next_update=now + datetime.timedelta(days=1),
    )  # fmt: skip
    row_insert(response)
    assert OcspResponse.objects.filter(pk=response.pk, der=b"\x30\x03\x0a\x01\x00", status_version=0).exists()


def test_row_update_changes_only_a_row_still_in_the_expected_state(ca: HierarchyInitResult) -> None:
    record = _certificate(ca, "04" * 16)
    row_insert(record)
    before = IssuedCertificate.objects.get(pk=record.pk)

    missed = row_update(IssuedCertificate, pk=record.pk, where={"status": "issued"}, values={"status": "failed"})
    assert missed == {}
    assert IssuedCertificate.objects.get(pk=record.pk).status == "linted"

    written = row_update(
        IssuedCertificate,
        pk=record.pk,
        where={"status": "linted"},
        values={"status": "issued", "certificate_der": b"x"},
    )
    assert written["status"] == "issued" and written["updated_at"] >= before.updated_at
    after = IssuedCertificate.objects.get(pk=record.pk)
    assert (after.status, bytes(after.certificate_der or b"")) == ("issued", b"x")
    assert after.updated_at == written["updated_at"] and after.created_at == before.created_at


def test_row_update_names_only_concrete_fields(ca: HierarchyInitResult) -> None:
    with pytest.raises(TypeError):
        row_update(IssuedCertificate, pk=1, where={"status": "linted"}, values={"renewals": None})


def test_issuance_writes_the_record_once_and_updates_it_once(ca: HierarchyInitResult) -> None:
    issue()  # warm: the OCSP signer exists
    with CaptureQueriesContext(connection) as queries:
        issue()
    sql = [q["sql"] for q in queries.captured_queries]
    table = IssuedCertificate._meta.db_table
    assert len([s for s in sql if s.startswith(f'INSERT INTO "{table}"')]) == 1
    assert len([s for s in sql if s.startswith(f'UPDATE "{table}"')]) == 1
    assert len([s for s in sql if s.startswith(f'INSERT INTO "{OcspResponse._meta.db_table}"')]) == 1


def test_the_store_step_touches_no_indexed_column(db: None) -> None:
    # PostgreSQL updates a row in place (HOT, no new index entries) only when no indexed column changes.
    written_at_store = {"status", "certificate_der", "updated_at"}
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, IssuedCertificate._meta.db_table)
    indexed = {column for c in constraints.values() if c["index"] or c["unique"] for column in c["columns"]}
    assert indexed  # the introspection saw the indexes
    assert not written_at_store & indexed


def test_migration_turns_rows_reserved_by_earlier_versions_into_failed(ca: HierarchyInitResult) -> None:
    record = _certificate(ca, "05" * 16)
    row_insert(record)
    IssuedCertificate.objects.filter(pk=record.pk).update(status="reserved")
    migration = importlib.import_module("certdesk.pki.migrations.0002_lean_certificate_indexes")
    migration.reserved_to_failed(apps, None)
    stored = IssuedCertificate.objects.get(pk=record.pk)
    assert stored.status == "failed" and "before lint" in stored.failure_reason
