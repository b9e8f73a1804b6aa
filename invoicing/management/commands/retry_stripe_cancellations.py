from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from invoicing.stripe_cancellations import stripe_cancellations_retry


class Command(BaseCommand):
    help = (
        "Cancel at Stripe the subscriptions still waiting for it (deleted users' subscriptions "
        "that Stripe could not be told about at the time). Each is sent with an idempotency key "
        "and forgotten once Stripe has it; run it every few minutes. Safe to interrupt and re-run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all",
            action="store_true",
            help="Also try those still backing off after a failure (e.g. once Stripe is back).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = stripe_cancellations_retry(include_waiting=options["all"])
        self.stdout.write(
            f"{result.cancelled} cancelled at Stripe, {result.failed} failed, "
            f"{result.waiting} waiting for their next attempt."
        )
        if result.failed:
            noun = "cancellation is" if result.failed == 1 else "cancellations are"
            raise CommandError(
                f"{result.failed} {noun} still pending (see stripe_pending_cancellations."
                "last_error); they are retried on a later run."
            )
