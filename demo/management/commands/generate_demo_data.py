import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from demo.data import (
    DEFAULT_CHUNK_AGENTS,
    DemoDataExists,
    DemoOptions,
    DemoRunInProgress,
    demo_generate,
)


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = (
        "Fill the database with realistic demo owners, subscriptions, agents and apps, daily "
        "usage, conversations and messages, streamed with COPY (constant memory). The same "
        "--seed gives the same data; a seed already used is refused unless --append is given, "
        "which adds new owners after the existing ones. Each chunk of owners is one "
        "transaction, so an interrupted run keeps whole owners only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=100, help="owners to create (100)")
        parser.add_argument(
            "--agents-per-user", type=int, default=2, help="agents (and apps) per owner (2)"
        )
        parser.add_argument(
            "--days", type=int, default=30, help="days of usage per agent, ending --end-date (30)"
        )
        parser.add_argument(
            "--messages-per-day",
            type=int,
            default=10,
            help="messages per agent and day, on the last --message-days days only (10)",
        )
        parser.add_argument(
            "--message-days",
            type=int,
            default=3,
            help="how many of the last days get conversations and messages (3)",
        )
        parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
        parser.add_argument(
            "--end-date", type=_date, default=None, help="last day of usage (yesterday, UTC)"
        )
        parser.add_argument(
            "--append",
            action="store_true",
            help="add owners after the ones this seed already created (new ids and handles)",
        )
        parser.add_argument(
            "--encrypt-every",
            type=int,
            default=1000,
            help="give one agent in N encrypted contact details; 0 for none (1000)",
        )
        parser.add_argument(
            "--chunk-agents",
            type=int,
            default=DEFAULT_CHUNK_AGENTS,
            help=f"agents per transaction ({DEFAULT_CHUNK_AGENTS})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            demo = DemoOptions(
                users=options["users"],
                agents_per_user=options["agents_per_user"],
                days=options["days"],
                messages_per_day=options["messages_per_day"],
                message_days=options["message_days"],
                seed=options["seed"],
                end=options["end_date"],
                encrypt_every=options["encrypt_every"],
                chunk_agents=options["chunk_agents"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from None

        total = demo.users * demo.agents_per_user
        bar = tqdm(
            total=total,
            desc="agents",
            unit="agent",
            file=self.stderr,
            disable=options["verbosity"] < 1,
        )
        try:
            result = demo_generate(demo, append=options["append"], progress=bar.update)
        except (DemoDataExists, DemoRunInProgress, ValueError) as error:
            raise CommandError(str(error)) from None
        except KeyboardInterrupt:
            done = bar.n // demo.agents_per_user
            bar.close()
            raise CommandError(
                f"Interrupted: {done} of {demo.users} users were written (whole users only). "
                f"Finish with --append --seed {demo.seed} --users {demo.users - done}."
            ) from None
        finally:
            bar.close()

        rows = ", ".join(f"{count:,} {table}" for table, count in result.rows.items())
        first, last = result.first_user, result.first_user + result.users - 1
        window = (
            f"usage {demo.end_date - dt.timedelta(days=demo.days - 1)} to {demo.end_date}"
            if demo.days
            else "no usage"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Seed {result.seed}: users {first}-{last} ({rows}) in {result.seconds:.1f} s; "
                f"{result.encrypted_agents} agents with encrypted contact details; {window}."
            )
        )
