import datetime as dt
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.rollups import rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the analytics rollup (agent_activity_days, agent_activity_users) and the "
        "conversations' analytics state from the stored messages: all days, or from --since "
        "(a UTC day); all agents, or --agent. Each agent is locked while it is rebuilt."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--agent", help="The agent's id (default: every agent).")
        parser.add_argument("--since", help="YYYY-MM-DD, a UTC day (default: all days).")

    def handle(self, *args: Any, **options: Any) -> None:
        agent_id = since = None
        try:
            if options["agent"]:
                agent_id = uuid.UUID(options["agent"])
            if options["since"]:
                since = dt.date.fromisoformat(options["since"])
        except ValueError as error:
            raise CommandError(f"Bad argument: {error}") from None
        count = rollups_rebuild(agent_id=agent_id, since=since)
        self.stdout.write(f"Rebuilt the analytics of {count} agent(s).")
