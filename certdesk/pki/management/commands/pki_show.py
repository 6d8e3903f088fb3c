from typing import Any

from django.core.management.base import BaseCommand

from certdesk.pki.selectors import pki_overview


class Command(BaseCommand):
    help = "Show the CAs, certificate counts and when the next CRLs are due."

    def handle(self, *args: Any, **options: Any) -> None:
        overview = pki_overview()
        if not overview.cas:
            self.stdout.write("no CA yet: run `manage.py pki_init`")
        for ca in overview.cas:
            until = ca.not_after.isoformat() if ca.not_after else "-"
            self.stdout.write(f"{ca.role:8} {ca.status:8} {ca.name:28} {ca.algorithm:9} {ca.key}")
            self.stdout.write(f"         {ca.subject}  valid until {until}")
            if ca.role in ("root", "issuing"):
                next_update = ca.next_crl_update.isoformat() if ca.next_crl_update else "no CRL yet"
                self.stdout.write(f"         CRL #{ca.crl_number}, next update {next_update}")
        counts = ", ".join(f"{status} {n}" for status, n in sorted(overview.certificates_by_status.items())) or "none"
        self.stdout.write(f"certificates: {counts}; revoked {overview.revoked}")
        self.stdout.write(f"pre-signed OCSP responses: {overview.ocsp_responses}")
