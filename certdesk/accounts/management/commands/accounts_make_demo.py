from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from certdesk.accounts.demo import DEMO_ACCOUNTS, demo_accounts_ensure


class Command(BaseCommand):
    help = "Create the demo logins (demo mode only) and print them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--print-only", action="store_true", help="only print the demo logins")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["print_only"]:
            if not settings.DEMO_MODE:
                raise CommandError("demo accounts are only made in demo mode (CERTDESK_DEMO=true)")
            demo_accounts_ensure()
        self.stdout.write("  demo logins (mobile / password):")
        for account in DEMO_ACCOUNTS:
            self.stdout.write(f"    {account.mobile} / {account.password}  — {account.role}")
