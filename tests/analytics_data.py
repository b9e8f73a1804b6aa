"""Analytics test data written through the real write path at chosen moments.

A message's server time is the conversation's `last_message_at` plus a microsecond when that
is ahead of the clock, so a test places a message at a moment by moving `last_message_at`.
"""

import datetime as dt
from typing import Any

from agents.models import A1Agent
from agents.services import agent_create
from billing.models import UserSubscription
from conversations.models import AgentActivityDay, AgentConversation
from conversations.services import conversation_open, message_post

DAY = dt.date(2031, 3, 14)


def moment(day: dt.date, hour: int, minute: int = 0, second: float = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC) + dt.timedelta(
        seconds=second
    )


def new_agent(handle: str = "stats_bot", owner: str = "user_1") -> A1Agent:
    """A work agent of an owner on the enterprise plan (no agent or message limits here)."""
    UserSubscription.objects.get_or_create(
        user_id=owner,
        defaults={
            "plan_id": "enterprise", "max_personal_agents": 100, "max_work_agents": 100,
            "max_total_agents": 200,
        },
    )  # fmt: skip
    agent, _ = agent_create(owner_id=owner, name=handle, handle=handle, agent_type="work")
    return agent


def open_at(
    agent: A1Agent, at: dt.datetime, channel: str = "web", user: str | None = "u1"
) -> AgentConversation:
    conversation, _ = conversation_open(agent_id=agent.pk, channel=channel, external_user_id=user)
    AgentConversation.objects.filter(pk=conversation.pk).update(started_at=at, last_message_at=at)
    # The rollup counted the start on the real day: move the count to the chosen day.
    started = AgentActivityDay.objects.get(
        agent=agent, channel=channel, day=conversation.started_at.astimezone(dt.UTC).date()
    )
    started.conversations_started -= 1
    started.save()
    row, _ = AgentActivityDay.objects.get_or_create(agent=agent, day=at.date(), channel=channel)
    row.conversations_started += 1
    row.save()
    conversation.refresh_from_db()
    return conversation


def post_at(conversation: AgentConversation, role: str, at: dt.datetime, **extra: Any) -> None:
    AgentConversation.objects.filter(pk=conversation.pk).update(
        last_message_at=at - dt.timedelta(microseconds=1)
    )
    conversation.refresh_from_db()
    message, _ = message_post(conversation=conversation, role=role, content="x", **extra)
    assert message.created_at == at
