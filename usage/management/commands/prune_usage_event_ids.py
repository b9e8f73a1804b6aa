from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from usage.services import usage_event_ids_prune


class Command(BaseCommand):
    help = (
        "Delete remembered usage event ids older than the 35-day window, in batches. "
        "Scheduled daily (Celery beat); safe to run by hand at any time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=10_000)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be 1 or more.")
        deleted, cutoff = usage_event_ids_prune(batch_size=options["batch_size"])
        self.stdout.write(f"Deleted {deleted} event ids older than {cutoff:%Y-%m-%d %H:%M} UTC.")
