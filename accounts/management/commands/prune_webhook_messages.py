from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import WEBHOOK_MESSAGE_DAYS_KEPT, webhook_messages_prune


class Command(BaseCommand):
    help = (
        "Forget the ids of Stack Auth webhook messages received more than --days ago. "
        "Scheduled daily (Celery beat); safe to run by hand at any time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=WEBHOOK_MESSAGE_DAYS_KEPT)
        parser.add_argument("--batch-size", type=int, default=10_000)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 2:
            raise CommandError("--days must be 2 or more: Svix retries for more than a day.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be 1 or more.")
        deleted, cutoff = webhook_messages_prune(
            days=options["days"], batch_size=options["batch_size"]
        )
        self.stdout.write(
            f"Deleted {deleted} webhook message ids received before {cutoff:%Y-%m-%d %H:%M} UTC."
        )
