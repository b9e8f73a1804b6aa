import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

# Svix retries a failed delivery for about 27 hours; a month also covers messages resent by
# hand from its dashboard. A message older than what is kept is still not applied over newer
# data (the order kept on stack_users refuses it); only its duplicate answer is lost.
DEFAULT_DAYS = 30


class Command(BaseCommand):
    help = "Forget the ids of Stack Auth webhook messages received more than --days ago."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
        parser.add_argument("--batch-size", type=int, default=10_000)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 2:
            raise CommandError("--days must be 2 or more: Svix retries for more than a day.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be 1 or more.")
        cutoff = timezone.now() - dt.timedelta(days=options["days"])
        deleted = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    """
                    DELETE FROM stack_auth_webhook_messages
                    WHERE svix_id IN (
                        SELECT svix_id FROM stack_auth_webhook_messages
                        WHERE received_at < %s LIMIT %s
                    )
                    """,
                    [cutoff, options["batch_size"]],
                )
                batch = cursor.rowcount
            deleted += batch
            if batch < options["batch_size"]:
                break
        self.stdout.write(
            f"Deleted {deleted} webhook message ids received before {cutoff:%Y-%m-%d %H:%M} UTC."
        )
