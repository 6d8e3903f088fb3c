from typing import Any

from django.core.management.base import BaseCommand, CommandError

from certdesk.audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the hash chain of the audit log; exit non-zero at the first broken link."

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify()
        if not report.ok:
            raise CommandError(
                f"audit chain broken at record {report.broken_at}: {report.reason} "
                f"({report.checked} records verified before it)"
            )
        self.stdout.write(f"audit chain intact: {report.checked} records")
