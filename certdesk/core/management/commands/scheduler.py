import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from certdesk.core.periodic import periodic_enqueue_due, periodic_tasks

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Enqueue periodic tasks when they are due (run one beside the workers; several are safe)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=10.0, help="seconds between checks")
        parser.add_argument("--once", action="store_true", help="check once and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        names = ", ".join(entry.name for entry in periodic_tasks()) or "none"
        self.stdout.write(f"scheduler: periodic tasks: {names}")
        while True:
            for name in periodic_enqueue_due():
                logger.info("scheduler: enqueued %s", name)
            if options["once"]:
                return
            time.sleep(options["interval"])
