from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from certdesk.pki.errors import PkiError
from certdesk.pki.management.commands._util import command_error
from certdesk.pki.services import certificate_unhold


class Command(BaseCommand):
    help = "Lift a certificateHold (the only revocation that can be undone)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--serial", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            info = certificate_unhold(serial=options["serial"])
        except PkiError as exc:
            raise command_error(exc) from exc
        self.stdout.write(f"hold lifted: {info.serial} is {info.status}")
