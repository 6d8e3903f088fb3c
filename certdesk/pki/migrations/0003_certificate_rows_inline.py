from typing import Any

from django.db import migrations

# A P-256 certificate's record is ~2.3 KB (the linted pre-certificate, the certificate, the key, the
# findings): just past PostgreSQL's default TOAST threshold of ~2 KB. Each store then tried to compress
# the DER values (they hardly compress) and moved one out of line into the TOAST table: one more heap
# row and index entry a certificate, and more pages to write. Measured over 2,000 issuances after a
# checkpoint (pg_waldump --stats): WAL 15.9-18.2 KB a certificate before, 12.8 KB after. With the
# target at its maximum (a page), a row is TOASTed only when it would not fit a page.
TOAST_TUPLE_TARGET = 8160


def _set(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("pki", "IssuedCertificate")._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} SET (toast_tuple_target = {TOAST_TUPLE_TARGET})")


def _reset(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("pki", "IssuedCertificate")._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} RESET (toast_tuple_target)")


class Migration(migrations.Migration):
    dependencies = [
        ("pki", "0002_lean_certificate_indexes"),
    ]

    operations = [migrations.RunPython(_set, _reset)]
