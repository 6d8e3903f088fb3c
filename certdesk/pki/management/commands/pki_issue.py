from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.management.base import BaseCommand, CommandError, CommandParser

from certdesk.pki.errors import PkiError
from certdesk.pki.management.commands._util import command_error
from certdesk.pki.profiles import END_ENTITY_PROFILES, subject_fields_from_name
from certdesk.pki.services import certificate_issue
from certdesk.pki.types import IssuanceRequest


class Command(BaseCommand):
    help = "Issue a certificate from a CSR (subject taken from the CSR and checked against the profile); writes PEM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--csr", required=True, type=Path, help="PKCS#10 request, PEM or DER")
        parser.add_argument("--profile", required=True, choices=END_ENTITY_PROFILES)
        parser.add_argument("--years", type=int, default=1)
        parser.add_argument("--out", required=True, type=Path, help="where to write the certificate (PEM)")
        parser.add_argument("--chain", action="store_true", help="append the issuing and root CA certificates")
        parser.add_argument("--renewal-of", help="serial of the certificate this one renews (validity runs on from it)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            data = options["csr"].read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {options['csr']}: {exc}") from exc
        try:
            csr = x509.load_pem_x509_csr(data) if b"-----BEGIN" in data else x509.load_der_x509_csr(data)
        except ValueError as exc:
            raise CommandError(f"[csr_invalid] {options['csr']} is not a PKCS#10 request: {exc}") from exc
        try:
            fields = subject_fields_from_name(csr.subject)
            result = certificate_issue(
                request=IssuanceRequest(
                    profile=options["profile"],
                    validity_years=options["years"],
                    csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode(),
                    renewal_of=options["renewal_of"],
                    reference="pki_issue",
                    organisation_name=fields["organisation_name"],
                    uscc=fields["uscc"],
                    province=fields["province"],
                    city=fields["city"],
                )
            )
        except PkiError as exc:
            raise command_error(exc) from exc
        pem = result.certificate_pem + (result.chain_pem if options["chain"] else "")
        options["out"].write_text(pem)
        self.stdout.write(
            f"issued {result.serial} ({result.profile}) valid {result.not_before:%Y-%m-%d} – {result.not_after:%Y-%m-%d}"
            f" → {options['out']}"
        )
