from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from certdesk.pki.errors import PkiError
from certdesk.pki.management.commands._util import command_error
from certdesk.pki.services import certificate_revoke
from certdesk.pki.types import RevocationReason


class Command(BaseCommand):
    help = "Revoke a certificate (RFC 5280 reason); the CRL and OCSP reflect it at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--serial", required=True, help="serial number, hex")
        parser.add_argument(
            "--reason",
            required=True,
            help="one of: "
            + ", ".join(r.rfc_name for r in RevocationReason if r is not RevocationReason.REMOVE_FROM_CRL),
        )
        parser.add_argument(
            "--invalidity-date", help="ISO 8601 with time zone: when the key is known to have been compromised"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            reason = RevocationReason.parse(options["reason"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        invalidity = None
        if options["invalidity_date"]:
            invalidity = parse_datetime(options["invalidity_date"])
            if invalidity is None:
                raise CommandError(f"cannot parse invalidity date {options['invalidity_date']!r}")
        try:
            info = certificate_revoke(serial=options["serial"], reason=reason, invalidity_date=invalidity)
        except PkiError as exc:
            raise command_error(exc) from exc
        assert info.revoked_at is not None
        self.stdout.write(f"revoked {info.serial} at {info.revoked_at.isoformat()} ({reason.rfc_name})")
