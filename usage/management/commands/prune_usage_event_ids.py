import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.utils import timezone

# Events older than 35 days are refused at ingestion, so their ids can never be counted
# again; a day of margin covers clock skew.
KEEP = dt.timedelta(days=36)


class Command(BaseCommand):
    help = "Delete remembered usage event ids older than the 35-day window, in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=10_000)

    def handle(self, *args: Any, **options: Any) -> None:
        cutoff = timezone.now() - KEEP
        deleted = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    """
                    DELETE FROM usage_event_ids
                    WHERE (agent_id, event_id) IN (
                        SELECT agent_id, event_id FROM usage_event_ids
                        WHERE occurred_at < %s LIMIT %s
                    )
                    """,
                    [cutoff, options["batch_size"]],
                )
                batch = cursor.rowcount
            deleted += batch
            if batch < options["batch_size"]:
                break
        self.stdout.write(f"Deleted {deleted} event ids older than {cutoff:%Y-%m-%d %H:%M} UTC.")
