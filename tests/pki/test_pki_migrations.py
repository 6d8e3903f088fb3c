"""Data migrations of the CA engine's records, forward and back."""

from __future__ import annotations

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from certdesk.pki.models import IssuedCertificate
from certdesk.pki.services import HierarchyInitResult

BEFORE = ("pki", "0003_certificate_rows_inline")
RECORDED_FIRST = ("pki", "0004_recorded_before_lint")


def _migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def _status(pk: int) -> str:
    table = IssuedCertificate._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT status FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return str(cursor.fetchone()[0])


def test_a_linted_row_of_an_earlier_version_becomes_recorded(live_ca: HierarchyInitResult) -> None:
    # Both say "recorded, possibly signed before a crash"; the record now comes before the lint.
    possibly_signed, issued = IssuedCertificate.objects.order_by("id")[:2]
    _migrate(BEFORE)
    try:
        table = IssuedCertificate._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET status = 'linted' WHERE id = %s", [possibly_signed.pk])  # noqa: S608
    finally:
        _migrate(RECORDED_FIRST)
    assert (_status(possibly_signed.pk), _status(issued.pk)) == ("recorded", "issued")

    _migrate(BEFORE)  # and back
    try:
        assert (_status(possibly_signed.pk), _status(issued.pk)) == ("linted", "issued")
    finally:
        _migrate(RECORDED_FIRST)
