"""The analytics rollup: kept by the message write path, recomputed by rebuild_analytics.

Messages go through the real write path (conversation_open, message_post). Their server time
is the conversation's `last_message_at` plus a microsecond when that is ahead of the clock,
so a test places a message at a chosen moment by moving `last_message_at` first.
"""

import datetime as dt
import random
import uuid
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from agents.models import A1Agent
from conversations.models import (
    RESPONSE_BUCKETS,
    AgentActivityDay,
    AgentConversation,
    ConversationStatus,
)
from conversations.rollups import response_bucket, rollups_rebuild_agent
from conversations.services import conversation_archive, conversation_open, message_post
from tests.analytics_data import DAY, moment, new_agent, open_at, post_at

pytestmark = pytest.mark.django_db


def rollup(agent: A1Agent) -> dict[tuple[dt.date, str], dict[str, Any]]:
    """The agent's rollup rows, without the all-zero ones open_at leaves behind."""
    return {
        (row["day"], row["channel"]): dict(row)
        for row in AgentActivityDay.objects.filter(agent=agent).values().order_by("day", "channel")
        if any(value for key, value in row.items() if isinstance(value, int))
    }


def users(agent: A1Agent) -> set[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT day, channel, external_user_id FROM agent_activity_users WHERE agent_id = %s",
            [agent.pk],
        )
        return set(cursor.fetchall())


def states(agent: A1Agent) -> dict[uuid.UUID, tuple[Any, ...]]:
    return {
        row[0]: row[1:]
        for row in AgentConversation.objects.filter(agent=agent).values_list(
            "id", "reply_pending_since", "first_response_at", "activity_day"
        )
    }


def nonzero(buckets: list[int]) -> dict[int, int]:
    return {index: count for index, count in enumerate(buckets) if count}


# --- the rules -----------------------------------------------------------------------------


def test_a_burst_of_user_messages_is_answered_from_the_first_of_them() -> None:
    agent = new_agent()
    conversation = open_at(agent, moment(DAY, 9))
    post_at(conversation, "user", moment(DAY, 10, 0, 0))
    post_at(conversation, "user", moment(DAY, 10, 0, 5))
    post_at(conversation, "agent", moment(DAY, 10, 1, 5))
    post_at(conversation, "agent", moment(DAY, 10, 1, 6))  # answers nothing new
    post_at(conversation, "user", moment(DAY, 10, 2, 0))
    post_at(conversation, "tool", moment(DAY, 10, 2, 1))
    post_at(conversation, "agent", moment(DAY, 10, 2, 3))

    row = rollup(agent)[(DAY, "web")]

    assert (row["user_messages"], row["agent_messages"], row["tool_messages"]) == (3, 3, 1)
    assert row["responses"] == 2
    assert nonzero(row["response_buckets"]) == {
        response_bucket(dt.timedelta(seconds=65)): 1,
        response_bucket(dt.timedelta(seconds=3)): 1,
    }
    assert row["first_responses"] == 1
    assert nonzero(row["first_response_buckets"]) == {response_bucket(dt.timedelta(seconds=65)): 1}
    assert (row["conversations_started"], row["conversations_answered"]) == (1, 1)
    assert (row["active_conversations"], row["end_users"]) == (1, 1)


def test_an_agent_message_before_any_user_message_is_no_response() -> None:
    agent = new_agent()
    conversation = open_at(agent, moment(DAY, 9))
    post_at(conversation, "agent", moment(DAY, 9, 0, 1))

    row = rollup(agent)[(DAY, "web")]

    assert (row["agent_messages"], row["responses"], row["conversations_answered"]) == (1, 0, 0)


def test_a_conversation_spanning_midnight_counts_each_message_on_its_own_day() -> None:
    agent = new_agent()
    next_day = DAY + dt.timedelta(days=1)
    conversation = open_at(agent, moment(DAY, 23, 50))
    post_at(conversation, "user", moment(DAY, 23, 59, 50))
    post_at(conversation, "agent", moment(next_day, 0, 0, 10))

    rows = rollup(agent)

    assert rows[(DAY, "web")]["user_messages"] == 1
    assert rows[(DAY, "web")]["responses"] == 0
    # Answered: counted on the day the conversation started.
    assert rows[(DAY, "web")]["conversations_answered"] == 1
    assert rows[(next_day, "web")]["agent_messages"] == 1
    assert nonzero(rows[(next_day, "web")]["response_buckets"]) == {
        response_bucket(dt.timedelta(seconds=20)): 1
    }
    assert rows[(DAY, "web")]["active_conversations"] == 1
    assert rows[(next_day, "web")]["active_conversations"] == 1
    assert users(agent) == {(DAY, "web", "u1"), (next_day, "web", "u1")}


def test_a_retried_message_adds_nothing() -> None:
    agent = new_agent()
    conversation = open_at(agent, moment(DAY, 9))
    post_at(conversation, "user", moment(DAY, 10), client_message_id="m1")
    before = rollup(agent)

    message_post(conversation=conversation, role="user", content="x", client_message_id="m1")

    assert rollup(agent) == before


def test_an_archived_conversation_stays_counted() -> None:
    agent = new_agent()
    conversation = open_at(agent, moment(DAY, 9))
    post_at(conversation, "user", moment(DAY, 10))
    before = rollup(agent)

    conversation_archive(conversation_id=conversation.pk)
    rollups_rebuild_agent(agent_id=agent.pk)

    assert AgentConversation.objects.get(pk=conversation.pk).status == ConversationStatus.ARCHIVED
    assert rollup(agent) == before


def test_conversation_open_counts_a_new_conversation_once() -> None:
    agent = new_agent()

    conversation_open(agent_id=agent.pk, channel="slack", thread_id="t1")
    conversation_open(agent_id=agent.pk, channel="slack", thread_id="t1")

    assert sum(row["conversations_started"] for row in rollup(agent).values()) == 1


def test_response_buckets_are_log_spaced_and_cover_long_waits() -> None:
    assert response_bucket(dt.timedelta(0)) == 0
    assert response_bucket(dt.timedelta(seconds=1)) == 4
    assert response_bucket(dt.timedelta(days=400)) == RESPONSE_BUCKETS - 1


# --- the rebuild agrees with the write path -------------------------------------------------


def generate(agent: A1Agent, seed: int) -> None:
    """Conversations over a few days and channels, with random roles and waits."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    for index in range(12):
        channel = rng.choice(["web", "slack", "whatsapp"])
        start = moment(DAY, 0) + dt.timedelta(hours=rng.randrange(0, 72), minutes=index)
        conversation = open_at(agent, start, channel, rng.choice(["u1", "u2", "u3", None]))
        at = start
        for _ in range(rng.randrange(0, 9)):
            at += dt.timedelta(seconds=rng.choice([0.5, 3, 40, 700, 5000, 30000]))
            role = rng.choices(["user", "agent", "system", "tool"], [5, 4, 1, 1])[0]
            post_at(conversation, role, at)
        if rng.random() < 0.2:
            conversation_archive(conversation_id=conversation.pk)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_rebuild_gives_the_rows_the_write_path_kept(seed: int) -> None:
    agent = new_agent()
    other = new_agent("other_bot", "user_2")
    generate(agent, seed)
    generate(other, seed + 10)
    kept = (rollup(agent), users(agent), states(agent))
    others = (rollup(other), users(other))
    AgentActivityDay.objects.filter(agent=agent).update(user_messages=999)

    call_command("rebuild_analytics", "--agent", str(agent.pk), stdout=StringIO())

    assert (rollup(agent), users(agent), states(agent)) == kept
    assert (rollup(other), users(other)) == others


def test_a_rebuild_since_a_day_keeps_the_days_before_and_agrees_after() -> None:
    agent = new_agent()
    generate(agent, 7)
    kept = rollup(agent)
    since = DAY + dt.timedelta(days=1)
    AgentActivityDay.objects.filter(agent=agent, day__lt=since).update(tool_messages=77)
    AgentActivityDay.objects.filter(agent=agent, day__gte=since).delete()

    call_command("rebuild_analytics", "--since", since.isoformat(), stdout=StringIO())

    rebuilt = rollup(agent)
    assert {k: v for k, v in rebuilt.items() if k[0] >= since} == {
        k: v for k, v in kept.items() if k[0] >= since
    }
    assert all(v["tool_messages"] == 77 for k, v in rebuilt.items() if k[0] < since)


def test_the_rebuild_counts_messages_written_outside_the_write_path() -> None:
    agent = new_agent()
    conversation = open_at(agent, moment(DAY, 9))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO messages (agent_id, conversation_id, role, content, created_at)"
            " VALUES (%s, %s, 'user', 'a', %s), (%s, %s, 'agent', 'b', %s)",
            [agent.pk, conversation.pk, moment(DAY, 10),
             agent.pk, conversation.pk, moment(DAY, 10, 0, 30)],
        )  # fmt: skip
        cursor.execute(
            "UPDATE agent_conversations SET last_message_at = %s WHERE id = %s",
            [moment(DAY, 10, 0, 30), conversation.pk],
        )

    rollups_rebuild_agent(agent_id=agent.pk)

    row = rollup(agent)[(DAY, "web")]
    assert (row["user_messages"], row["agent_messages"], row["responses"]) == (1, 1, 1)
    assert states(agent)[conversation.pk] == (None, moment(DAY, 10, 0, 30), DAY)


def test_rebuilding_again_and_again_gives_the_same_rows() -> None:
    # More rebuilds in one session than psycopg's prepare threshold: the prepared statements
    # over the rebuild's temporary tables must keep working after the tables are dropped.
    agent = new_agent()
    generate(agent, 5)
    kept = rollup(agent)

    for _ in range(8):
        rollups_rebuild_agent(agent_id=agent.pk)

    assert rollup(agent) == kept
