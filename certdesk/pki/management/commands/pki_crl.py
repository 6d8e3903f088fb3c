from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.management.base import BaseCommand, CommandParser

from certdesk.pki.errors import PkiError
from certdesk.pki.management.commands._util import command_error
from certdesk.pki.services import crl_generate


class Command(BaseCommand):
    help = "Sign and publish a new full CRL now (cron-friendly); optionally write it to a file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, help="write the CRL here (DER unless --pem)")
        parser.add_argument("--pem", action="store_true")
        parser.add_argument("--root", action="store_true", help="the root CA's CRL instead of the issuing CA's")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            info = crl_generate(role="root" if options["root"] else "issuing")
        except PkiError as exc:
            raise command_error(exc) from exc
        if options["out"]:
            data = info.der
            if options["pem"]:
                data = x509.load_der_x509_crl(info.der).public_bytes(serialization.Encoding.PEM)
            options["out"].write_bytes(data)
        self.stdout.write(
            f"CRL #{info.number} of {info.issuer}: {info.entries} entries, next update {info.next_update.isoformat()}"
            + (f" → {options['out']}" if options["out"] else "")
        )
