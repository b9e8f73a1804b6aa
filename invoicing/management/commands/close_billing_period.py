from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.months import current_month, format_month, parse_month
from invoicing.closing import (
    close_period_fan_out,
    close_period_record,
    close_period_summary,
    period_charges,
)
from invoicing.stripe_gateway import stripe_configured


class Command(BaseCommand):
    help = (
        "Bill each account's (user's or team's) messages past its plan's included amount for a "
        "finished month, as counted toward its quota: one billing event per account and month, "
        "then one background task per overage that "
        "creates its Stripe invoice item (`manage.py jobs` shows them; a worker runs them). "
        "Safe to interrupt and re-run; a re-run changes nothing already done."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--month", required=True, type=parse_month, help="YYYY-MM")
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would be charged; write nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        month = options["month"]
        period = format_month(month)
        if month >= current_month():
            raise CommandError(f"{period} has not ended yet; close a month once it is over.")

        if options["dry_run"]:
            self._print_dry_run(month)
            return

        new_rows = close_period_record(month)
        self.stdout.write(f"Recorded {new_rows} new billing events for {period}.")
        if not stripe_configured():
            self.stderr.write(
                "STRIPE_SECRET_KEY is unset: overage is recorded, not sent to Stripe."
            )
            self._print_summary(close_period_summary(month))
            return
        fan_out = close_period_fan_out(period)
        self.stdout.write(f"Queued {fan_out.queued} Stripe invoice items for the workers.")
        self._print_summary(close_period_summary(month))
        if fan_out.not_queued:
            raise CommandError(
                f"{fan_out.not_queued} invoice items could not be queued: the broker "
                "(CELERY_BROKER_URL) cannot be reached. Re-run to queue them."
            )

    def _print_dry_run(self, month: Any) -> None:
        charges = list(period_charges(month))
        self.stdout.write(f"Dry run for {format_month(month)}: nothing is written.")
        self.stdout.write(f"{'user':<36} {'plan':<10} {'messages':>10} {'included':>10} "
                          f"{'overage':>9} {'amount':>10}")  # fmt: skip
        total = Decimal("0.00")
        for charge in charges:
            total += charge.amount
            included = "-" if charge.included is None else str(charge.included)
            self.stdout.write(
                f"{charge.user_id:<36} {charge.plan_id:<10} {charge.messages:>10} {included:>10} "
                f"{charge.overage_messages:>9} {charge.amount:>10}"
            )
        billable = sum(1 for charge in charges if charge.amount > 0)
        self.stdout.write(f"{len(charges)} users, {billable} with overage, total {total}.")

    def _print_summary(self, result: Any) -> None:
        rows = [
            ("period", result.period),
            ("users billed", result.users),
            ("messages", result.messages),
            ("overage messages", result.overage_messages),
            ("overage amount", result.amount),
            ("sent to Stripe", result.sent_to_stripe),
            ("waiting for Stripe", result.waiting_for_stripe),
            ("no Stripe customer", result.without_customer),
        ]
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            self.stdout.write(f"{name:<{width}}  {value}")
