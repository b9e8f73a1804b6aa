"""Locks on agents' rows, taken for other apps' transactions (Saleor's `lock_objects.py`).

An app that writes rows under an agent calls one of these instead of writing its own SQL
against `a1_agents`, so that the lock each one needs is chosen, and documented, here:

- FOR SHARE: the agent's status cannot change until commit. A pause or an archive (FOR UPDATE)
  waits for us, or we wait for it: work that must not happen on a paused agent is ordered
  before or after the pause, never beside it.
- FOR KEY SHARE: the agent cannot be deleted until commit, but its details and status may
  still change; for rows that only reference the agent.

Several agents are locked in primary-key order, so two transactions never wait on each
other in a cycle.
"""

import uuid
from dataclasses import dataclass

from django.db import connection

from agents.models import A1Agent


@dataclass(frozen=True)
class HeldAgent:
    id: uuid.UUID
    owner_id: str
    status: str


def _hold(agent_id: uuid.UUID, mode: str) -> HeldAgent | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, owner_id, status FROM a1_agents WHERE id = %s FOR {mode}",  # noqa: S608 - a constant
            [agent_id],
        )
        row = cursor.fetchone()
    return HeldAgent(id=row[0], owner_id=str(row[1]), status=row[2]) if row else None


def agent_hold_status(agent_id: uuid.UUID) -> HeldAgent | None:
    """Share-lock the agent until commit (its status cannot change); None if it is gone."""
    return _hold(agent_id, "SHARE")


def agent_hold_existence(agent_id: uuid.UUID) -> HeldAgent | None:
    """Keep the agent from being deleted until commit; None if it is already gone."""
    return _hold(agent_id, "KEY SHARE")


def agent_lock(agent_id: uuid.UUID) -> A1Agent:
    """Lock one agent FOR UPDATE, with its app; A1Agent.DoesNotExist if it is gone."""
    return A1Agent.objects.select_for_update().select_related("app").get(pk=agent_id)


def agents_lock(agent_ids: list[uuid.UUID]) -> list[A1Agent]:
    """Lock agents FOR UPDATE, in primary-key order, and return them in that order."""
    return list(
        A1Agent.objects.select_for_update()
        .select_related("app")
        .filter(pk__in=agent_ids)
        .order_by("pk")
    )
