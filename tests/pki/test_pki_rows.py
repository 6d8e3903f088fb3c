"""The issuance hot path's writes: plain SQL from the model, the same rows the ORM would write."""

from __future__ import annotations

import contextlib
import datetime
import importlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import IntegrityError, OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from pkitestlib import ec_key, issue, make_csr

from certdesk.pki import issuance
from certdesk.pki.errors import KeyRejected
from certdesk.pki.models import IssuedCertificate, OcspResponse
from certdesk.pki.rows import Lookup, row_insert, row_insert_unless, row_update, row_update_inserting
from certdesk.pki.selectors import public_key_conflict
from certdesk.pki.serials import serial_hex, serial_new
from certdesk.pki.services import CA_PROFILES, HierarchyInitResult, ca_hierarchy_init, certificate_revoke
from certdesk.pki.types import RevocationReason
from tests.dbserver import second_connection, terminate_own_backend

ROOT = Path(__file__).resolve().parents[2]
STAMPS = {"id", "serial", "created_at", "updated_at"}


def _certificate(ca: HierarchyInitResult, serial: str, **overrides: object) -> IssuedCertificate:
    values: dict[str, object] = {
        "serial": serial,
        "issuer": ca.issuing,
        "profile": "org-sign",
        "status": IssuedCertificate.Status.RECORDED,
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


def _response(ca: HierarchyInitResult, serial: str) -> OcspResponse:
    now = datetime.datetime(2026, 11, 27, tzinfo=datetime.UTC)
    return OcspResponse(
        serial=serial, hash_algorithm="sha1", issuer=ca.issuing, der=b"\x30\x03\x0a\x01\x00", this_update=now,
        next_update=now + datetime.timedelta(days=1),
    )  # fmt: skip


# The combined writes run as one statement on PostgreSQL outside a transaction (autocommit, as the
# pipeline calls them) and as two statements in a transaction otherwise: these tests run both ways.
both_ways = pytest.mark.parametrize(
    "ca_any",
    [
        pytest.param("in a transaction", marks=pytest.mark.django_db),
        pytest.param("autocommit", marks=pytest.mark.django_db(transaction=True)),
    ],
    indirect=True,
)


@pytest.fixture
def ca_any(request: pytest.FixtureRequest, ca_backend: str) -> HierarchyInitResult:
    assert connection.in_atomic_block == (request.param == "in a transaction")
    return ca_hierarchy_init()


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
    assert IssuedCertificate.objects.get(pk=record.pk).status == "recorded"

    written = row_update(
        IssuedCertificate,
        pk=record.pk,
        where={"status": "recorded"},
        values={"status": "issued", "certificate_der": b"x"},
    )
    assert written["status"] == "issued" and written["updated_at"] >= before.updated_at
    after = IssuedCertificate.objects.get(pk=record.pk)
    assert (after.status, bytes(after.certificate_der or b"")) == ("issued", b"x")
    assert after.updated_at == written["updated_at"] and after.created_at == before.created_at


def test_row_update_names_only_concrete_fields(ca: HierarchyInitResult) -> None:
    with pytest.raises(TypeError):
        row_update(IssuedCertificate, pk=1, where={"status": "recorded"}, values={"renewals": None})


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


@both_ways
def test_row_update_inserting_writes_both_rows_or_neither(ca_any: HierarchyInitResult) -> None:
    record = _certificate(ca_any, "06" * 16)
    row_insert(record)
    response = _response(ca_any, record.serial)
    written = row_update_inserting(
        IssuedCertificate, pk=record.pk, where={"status": "recorded"}, values={"status": "issued"}, insert=response
    )
    assert written["status"] == "issued" and "updated_at" in written
    assert response.pk is not None and not response._state.adding
    assert IssuedCertificate.objects.get(pk=record.pk).status == "issued"
    assert OcspResponse.objects.filter(pk=response.pk, serial=record.serial, der=b"\x30\x03\x0a\x01\x00").exists()

    # The update finds no row in the expected state: nothing is inserted.
    again = _response(ca_any, "07" * 16)
    assert not row_update_inserting(
        IssuedCertificate, pk=record.pk, where={"status": "recorded"}, values={"status": "failed"}, insert=again
    )
    assert again.pk is None and not OcspResponse.objects.filter(serial="07" * 16).exists()
    assert IssuedCertificate.objects.get(pk=record.pk).status == "issued"

    # The insert fails: the update is undone with it.
    other = _certificate(ca_any, "08" * 16)
    row_insert(other)
    with pytest.raises(IntegrityError):
        row_update_inserting(
            IssuedCertificate,
            pk=other.pk,
            where={"status": "recorded"},
            values={"status": "issued"},
            insert=_response(ca_any, record.serial),  # (serial, hash) taken
        )
    assert IssuedCertificate.objects.get(pk=other.pk).status == "recorded"


@both_ways
def test_row_insert_unless_inserts_only_when_the_lookup_finds_nothing(ca_any: HierarchyInitResult) -> None:
    table = IssuedCertificate._meta.db_table
    lookup = Lookup(sql=f"SELECT profile FROM {table} WHERE serial = %s", params=("09" * 16,))  # noqa: S608
    first = _certificate(ca_any, "09" * 16, profile="org-enc")
    assert row_insert_unless(first, lookup=lookup, meanwhile=lambda: "linted") == (None, "linted")
    assert first.pk is not None and IssuedCertificate.objects.filter(pk=first.pk, profile="org-enc").exists()

    second = _certificate(ca_any, "0A" * 16)
    assert row_insert_unless(second, lookup=lookup, meanwhile=lambda: 7) == ("org-enc", 7)
    assert second.pk is None and not IssuedCertificate.objects.filter(serial="0A" * 16).exists()

    # Without a lookup: a plain INSERT (the CA certificates' records).
    third = _certificate(ca_any, "0C" * 16)
    assert row_insert_unless(third, lookup=None, meanwhile=lambda: None) == (None, None)
    assert _stored(third.pk) == {**_stored(first.pk), "profile": "org-sign"}


def _visible_elsewhere(serial: str) -> bool:
    """Whether another connection sees a committed row with this serial within 10 s."""
    table = IssuedCertificate._meta.db_table
    with second_connection() as other:
        for _ in range(1000):
            if other.execute(f"SELECT 1 FROM {table} WHERE serial = %s", [serial]).fetchone():  # noqa: S608
                return True
            time.sleep(0.01)
    return False


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the statement is sent ahead on PostgreSQL")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lookup", [False, True], ids=["plain", "with lookup"])
def test_on_postgresql_the_insert_is_committed_while_meanwhile_runs(ca_backend: str, lookup: bool) -> None:
    # The pipeline lints while its record INSERT travels and commits: the row is there before lint ends.
    ca = ca_hierarchy_init()
    table = IssuedCertificate._meta.db_table
    check = Lookup(sql=f"SELECT profile FROM {table} WHERE serial = %s", params=("0D" * 16,)) if lookup else None  # noqa: S608
    record = _certificate(ca, "0D" * 16)
    found, seen = row_insert_unless(record, lookup=check, meanwhile=lambda: _visible_elsewhere("0D" * 16))
    assert (found, seen) == (None, True)
    assert record.pk is not None and IssuedCertificate.objects.filter(pk=record.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the statement is sent ahead on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_server_lost_while_meanwhile_runs_raises_djangos_error(ca_backend: str) -> None:
    # The INSERT waits behind another session's table lock; while lint runs, its server process is
    # killed (a failover, a restart). The answer read afterwards is the lost connection: Django's
    # OperationalError, nothing inserted, and the next connection works.
    ca = ca_hierarchy_init()
    table = IssuedCertificate._meta.db_table
    with second_connection() as other, other.transaction():
        other.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        with pytest.raises(OperationalError):
            row_insert_unless(_certificate(ca, "11" * 16), lookup=None, meanwhile=terminate_own_backend)
    assert connection.errors_occurred
    connection.close()  # as Django does after a request whose connection failed
    assert not IssuedCertificate.objects.filter(serial="11" * 16).exists()
    record = _certificate(ca, "11" * 16)
    assert row_insert_unless(record, lookup=None, meanwhile=lambda: "again") == (None, "again")


@pytest.mark.django_db(transaction=True)
def test_with_autocommit_off_the_insert_stays_in_the_callers_transaction(ca_backend: str) -> None:
    # No atomic block, but no autocommit either (`set_autocommit(False)`): the statement must not be
    # sent past psycopg, which begins the transaction; a rollback takes the row back.
    ca = ca_hierarchy_init()
    transaction.set_autocommit(False)
    try:
        assert row_insert_unless(_certificate(ca, "12" * 16), lookup=None, meanwhile=lambda: 1) == (None, 1)
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    assert not IssuedCertificate.objects.filter(serial="12" * 16).exists()


@both_ways
def test_when_meanwhile_raises_the_insert_is_still_read_and_the_connection_works(ca_any: HierarchyInitResult) -> None:
    # On PostgreSQL the statement's answer is read even so: otherwise the connection's next statement
    # fails ("another command is already in progress").
    def crash() -> None:
        raise ValueError("lint crashed")

    record = _certificate(ca_any, "0E" * 16)
    with pytest.raises(ValueError, match="lint crashed"):
        row_insert_unless(record, lookup=None, meanwhile=crash)
    assert IssuedCertificate.objects.filter(serial="0E" * 16).count() == 1


@both_ways
def test_a_failed_insert_raises_djangos_integrity_error(ca_any: HierarchyInitResult) -> None:
    row_insert(_certificate(ca_any, "0F" * 16))
    ran = []
    # In the test's transaction, a savepoint lets it go on; in autocommit, the one-statement path.
    sent_ahead = connection.vendor == "postgresql" and not connection.in_atomic_block
    inside = contextlib.nullcontext() if sent_ahead else transaction.atomic()
    with pytest.raises(IntegrityError), inside:
        row_insert_unless(_certificate(ca_any, "0F" * 16), lookup=None, meanwhile=lambda: ran.append(1))
    # Sent ahead, the statement fails while `meanwhile` runs; elsewhere it fails first.
    assert ran == ([1] if sent_ahead else [])
    assert IssuedCertificate.objects.filter(serial="0F" * 16).count() == 1


@both_ways
def test_the_key_check_finds_compromised_and_ca_keys(ca_any: HierarchyInitResult) -> None:
    key = ec_key()
    first = issue(csr_pem=make_csr(key))
    record = IssuedCertificate.objects.get(serial=first.serial)

    def found(spki_sha256: str) -> object:
        probe = _certificate(ca_any, "0B" * 16)
        lookup = public_key_conflict(spki_sha256=spki_sha256, ca_profiles=CA_PROFILES)
        result, _ = row_insert_unless(probe, lookup=lookup, meanwhile=lambda: None)
        IssuedCertificate.objects.filter(serial="0B" * 16).delete()
        return result

    assert found(record.spki_sha256) is None  # issued, not revoked: the key may be certified again
    certificate_revoke(serial=first.serial, reason=RevocationReason.KEY_COMPROMISE)
    assert found(record.spki_sha256) == "org-sign"
    issuing = IssuedCertificate.objects.get(serial=ca_any.issuing.serial)
    assert found(issuing.spki_sha256) in CA_PROFILES

    records = IssuedCertificate.objects.count()
    with pytest.raises(KeyRejected) as refused:
        issue(csr_pem=make_csr(key))
    assert refused.value.code == "key_compromised"
    assert IssuedCertificate.objects.count() == records  # refused inside the record's INSERT: nothing written


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement writes are PostgreSQL's")
def test_on_postgresql_issuance_makes_two_statements(live_ca: HierarchyInitResult) -> None:
    issue()  # warm: signers and CA certificates are cached
    with CaptureQueriesContext(connection) as queries:
        issue()
    # Only the writes: a cached CA or signer older than its 5 s may be read again on a slow machine.
    sql = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"] or "UPDATE" in q["sql"]]
    table, responses = IssuedCertificate._meta.db_table, OcspResponse._meta.db_table
    assert len(sql) == 2, sql
    assert sql[0].startswith("WITH found AS (SELECT profile") and f'INSERT INTO "{table}"' in sql[0]
    assert sql[1].startswith(f'WITH updated AS (UPDATE "{table}"') and f'INSERT INTO "{responses}"' in sql[1]
    assert not [q for q in queries.captured_queries if "spki_sha256" in q["sql"] and q["sql"] not in sql]


on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@on_postgresql
def test_on_postgresql_the_issuance_statements_are_prepared_once(live_ca: HierarchyInitResult) -> None:
    for _ in range(3):
        issue()
    prepared = _prepared_statements()
    # Parsed and planned once per connection, then only executed: one prepared statement for each write.
    assert len([s for s in prepared if s.startswith("WITH found AS (SELECT profile")]) == 1, prepared
    assert (
        len([s for s in prepared if s.startswith(f'WITH updated AS (UPDATE "{IssuedCertificate._meta.db_table}"')]) == 1
    )


@on_postgresql
def test_on_postgresql_one_adapter_per_connection_serves_the_issuance_statements(
    live_ca: HierarchyInitResult,
) -> None:
    # Sent ahead (`rows._execute_meanwhile`): psycopg's adapter and the prepared names are kept per connection.
    issue()
    kept = connection._certdesk_ahead  # type: ignore[attr-defined]
    prepared = dict(kept.prepared)
    assert kept.raw is connection.connection and prepared
    with CaptureQueriesContext(connection) as queries:
        issue()
    assert connection._certdesk_ahead is kept and kept.prepared == prepared  # type: ignore[attr-defined]
    assert len([q for q in queries.captured_queries if q["sql"].startswith("WITH ")]) == 2  # still logged
    # A new database connection gets its own, and prepares the statements again.
    connection.close()
    serial = issue().serial
    assert connection._certdesk_ahead is not kept  # type: ignore[attr-defined]
    assert connection._certdesk_ahead.raw is connection.connection  # type: ignore[attr-defined]
    assert len([s for s in _prepared_statements() if s.startswith("WITH found AS (SELECT profile")]) == 1
    assert IssuedCertificate.objects.get(serial=serial).status == IssuedCertificate.Status.ISSUED


def _writes(statements: list[str]) -> list[str]:
    """The tables each issuance write names, in order (INSERT INTO / UPDATE)."""
    tables = (IssuedCertificate._meta.db_table, OcspResponse._meta.db_table)
    return [
        f"{verb} {table}"
        for sql in statements
        for verb in ("INSERT INTO", "UPDATE")
        for table in tables
        if f'{verb} "{table}"' in sql
    ]


def test_every_issuance_write_passes_through_an_execute_wrapper(live_ca: HierarchyInitResult) -> None:
    # On PostgreSQL a hook makes the pipeline's writes go through the kept cursor, not libpq's calls.
    issue()  # warm: signers and CA certificates are cached
    seen: list[str] = []

    def hook(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(hook):
        serial = issue().serial
    table, responses = IssuedCertificate._meta.db_table, OcspResponse._meta.db_table
    assert _writes(seen) == [f"INSERT INTO {table}", f"UPDATE {table}", f"INSERT INTO {responses}"], seen
    assert IssuedCertificate.objects.get(serial=serial).status == IssuedCertificate.Status.ISSUED


def test_issuance_writes_reach_the_django_db_backends_debug_log(
    live_ca: HierarchyInitResult, caplog: pytest.LogCaptureFixture
) -> None:
    issue()
    with caplog.at_level(logging.DEBUG, logger="django.db.backends"), CaptureQueriesContext(connection) as queries:
        issue()
    # Django's cursors and `rows` log a statement with its SQL, parameters and alias as the record's extra.
    logged = [vars(r) for r in caplog.records if r.name == "django.db.backends" and hasattr(r, "sql")]
    table = IssuedCertificate._meta.db_table
    assert f"INSERT INTO {table}" in _writes([r["sql"] for r in logged])
    assert f"UPDATE {table}" in _writes([r["sql"] for r in logged])
    # The same statements as the query log, each with its parameters and the connection's alias.
    assert _writes([r["sql"] for r in logged]) == _writes([q["sql"] for q in queries.captured_queries])
    writes = [r for r in logged if _writes([r["sql"]])]
    assert all(r["alias"] == connection.alias and r["params"] for r in writes)


@on_postgresql
@pytest.mark.django_db
def test_on_postgresql_one_cursor_per_connection_serves_the_statements_in_a_transaction(ca_backend: str) -> None:
    ca = ca_hierarchy_init()
    record = _certificate(ca, "10" * 16)
    row_insert(record)
    kept = connection._certdesk_rows_cursor  # type: ignore[attr-defined]
    assert kept.connection is connection.connection and not kept.closed
    with CaptureQueriesContext(connection) as queries:
        assert row_update(IssuedCertificate, pk=record.pk, where={"status": "recorded"}, values={"status": "failed"})
    assert connection._certdesk_rows_cursor is kept  # type: ignore[attr-defined]
    assert [q["sql"][:7] for q in queries.captured_queries] == ["UPDATE "]  # still logged


@on_postgresql
def test_on_postgresql_nothing_is_prepared_when_prepared_statements_are_off(
    live_ca: HierarchyInitResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)  # DATABASE_PREPARED_STATEMENTS=false
    before = _prepared_statements()
    serial = issue().serial
    assert IssuedCertificate.objects.get(serial=serial).status == IssuedCertificate.Status.ISSUED
    assert _prepared_statements() == before


@pytest.mark.parametrize(("value", "threshold"), [(None, 5), ("false", None)])
def test_database_prepared_statements_setting(value: str | None, threshold: int | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_PREPARED_STATEMENTS"}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": "postgres://u@127.0.0.1:5432/x"}
    if value is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = value
    code = "from django.conf import settings as s; print(s.DATABASES['default']['OPTIONS']['prepare_threshold'])"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == str(threshold), result.stderr


def _toast_rows() -> int:
    """Rows in the TOAST table of the certificate records (visible to this test's transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.oid::regclass FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid WHERE c.relname = %s",
            [IssuedCertificate._meta.db_table],
        )
        (toast,) = cursor.fetchone()
        cursor.execute(f"SELECT count(*) FROM {toast}")  # noqa: S608 - a relation name from the catalogue
        return int(cursor.fetchone()[0])


@on_postgresql
def test_on_postgresql_a_certificate_record_stays_in_its_row(ca: HierarchyInitResult) -> None:
    before = _toast_rows()
    record = IssuedCertificate.objects.get(serial=issue().serial)
    assert len(record.precertificate_der) + len(record.certificate_der or b"") + len(record.public_key_der) > 1600
    # Past the default threshold (~2 KB) the store moved a DER value out of line: one TOAST row a certificate.
    assert _toast_rows() == before


def test_a_serial_already_taken_draws_another_and_issues(
    live_ca: HierarchyInitResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Outside a transaction, as the pipeline runs: the record's INSERT fails on the unique serial, the
    # pipeline checks the serial is taken and draws again, on the same kept cursor on PostgreSQL.
    taken = int(issue().serial, 16)
    draws = iter([taken, serial_new()])
    monkeypatch.setattr(issuance, "serial_new", lambda: next(draws))
    serial = issue().serial
    assert int(serial, 16) != taken
    assert IssuedCertificate.objects.get(serial=serial).status == IssuedCertificate.Status.ISSUED
    assert IssuedCertificate.objects.filter(serial=serial_hex(taken)).count() == 1
