from typing import Any

from django.core.management.base import BaseCommand

from certdesk.catalog.services import catalog_load_demo


class Command(BaseCommand):
    help = "Create or refresh the demo catalogue (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        count = catalog_load_demo()
        self.stdout.write(f"demo catalogue ready: {count} certificate types")
