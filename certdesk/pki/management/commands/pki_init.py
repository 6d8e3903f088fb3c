from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from certdesk.pki import conf
from certdesk.pki.errors import PkiError
from certdesk.pki.keys import KeyAlgorithm
from certdesk.pki.management.commands._util import command_error
from certdesk.pki.services import ca_hierarchy_init
from certdesk.pki.tasks import pki_refresh_schedule


class Command(BaseCommand):
    help = "Create the root CA, the issuing CA, the OCSP signer and the first CRLs (idempotent; never overwrites keys)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--algorithm",
            choices=[a.value for a in KeyAlgorithm],
            help="CA key algorithm (default PKI_KEY_ALGORITHM, ec-p256).",
        )
        parser.add_argument(
            "--backend", choices=["file", "pkcs11"], help="where new CA keys go (default PKI_KEY_BACKEND, file)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if (
            options["backend"] or conf.key_backend_name()
        ) == "file" and conf.key_passphrase() == conf.EMBEDDED_PASSPHRASE.encode():
            self.stderr.write(
                "warning: CA key files use the embedded default passphrase; set PKI_KEY_PASSPHRASE in production."
            )
        try:
            result = ca_hierarchy_init(algorithm=options["algorithm"], backend=options["backend"])
        except PkiError as exc:
            raise command_error(exc) from exc
        for ca in (result.root, result.issuing, result.ocsp_signer):
            self.stdout.write(
                f"{ca.role:8} {ca.name:28} {ca.key_algorithm:9} {ca.key_backend}:{ca.key_ref}  {ca.subject}"
            )
        if result.created:
            self.stdout.write("created: " + ", ".join(result.created))
        else:
            self.stdout.write("already initialised: nothing to do")
        scheduled = pki_refresh_schedule()
        if scheduled is not None:
            self.stdout.write(f"periodic refresh scheduled for {scheduled.isoformat()}")
