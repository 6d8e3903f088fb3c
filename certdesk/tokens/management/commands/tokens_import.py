"""Import USB keys into stock from the vendor's CSV.

    python manage.py tokens_import keys.csv

Columns (header row required, any order): sn, so_pin, and optionally model,
vendor, user_pin (the initial user PIN). UTF-8, with or without a BOM (Excel).
Idempotent: keys already in stock are skipped; invalid rows and SNs repeated
within the file are rejected and listed with the reason (never with a PIN);
the good rows are imported regardless, and the command exits non-zero if any
row was rejected.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from certdesk.tokens.services import usb_keys_import

REQUIRED = ("sn", "so_pin")
ALIASES = {
    "serial": "sn",
    "admin_pin": "so_pin",
    "so pin": "so_pin",
    "user pin": "user_pin",
    "initial_user_pin": "user_pin",
    "initial user pin": "user_pin",
}


def _normalise(name: str) -> str:
    key = name.strip().lower()
    return ALIASES.get(key, key)


class Command(BaseCommand):
    help = "Import USB keys into stock from a CSV file (sn, model, vendor, so_pin, user_pin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="CSV file with a header row")
        parser.add_argument("--actor", default="tokens_import", help="who imports (for the audit log)")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"无法读取 {path}：{exc}") from None
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None:
            raise CommandError(f"{path} 是空文件。")
        columns = [_normalise(name) for name in reader.fieldnames]
        missing = [name for name in REQUIRED if name not in columns]
        if missing:
            raise CommandError(
                f"{path} 缺少列：{', '.join(missing)}（需要 sn, so_pin；可选 model, vendor, user_pin）。"
            )

        def rows() -> Iterator[tuple[int, Mapping[str, str]]]:
            for row in reader:
                values = {_normalise(k): (v or "").strip() for k, v in row.items() if k is not None}
                if not any(values.values()):
                    continue  # blank line
                yield reader.line_num, values

        report = usb_keys_import(rows=rows(), actor=options["actor"])
        self.stdout.write(
            f"导入 {len(report.created)} 把，跳过 {len(report.skipped)} 把，拒绝 {len(report.rejected)} 行。"
        )
        for line, sn, reason in report.skipped:
            self.stdout.write(f"  跳过 第 {line} 行 {sn}：{reason}")
        for line, sn, reason in report.rejected:
            self.stderr.write(f"  拒绝 第 {line} 行 {sn or '（无序列号）'}：{reason}")
        if report.rejected:
            raise CommandError(f"{len(report.rejected)} 行被拒绝（其余各行已处理）；改正后可重新导入同一文件。")
