"""Racing writers keep the rollup exact: what they add equals what the rebuild recomputes."""

import itertools
from collections.abc import Callable

import pytest

from agents.models import A1Agent
from conversations.models import AgentConversation
from conversations.rollups import rollups_rebuild_agent
from conversations.services import conversation_open, message_post
from tests.analytics_data import new_agent
from tests.concurrency import race
from tests.test_analytics_rollups import rollup, states, users

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_plans")]

THREADS = 6
MESSAGES = 8


def writer(agent: A1Agent, conversations: list[AgentConversation], n: int) -> Callable[[], int]:
    def write() -> int:
        roles = itertools.cycle(["user", "user", "agent", "tool", "agent"][n % 3 :])
        for index in range(MESSAGES):
            conversation = conversations[(n + index) % len(conversations)]
            fresh = AgentConversation.objects.get(pk=conversation.pk)
            message_post(conversation=fresh, role=next(roles), content=f"{n}-{index}")
        conversation_open(agent_id=agent.pk, channel="web", external_user_id=f"n{n}")
        return n

    return write


def test_racing_messages_add_up_to_what_the_rebuild_recomputes() -> None:
    agent = new_agent("race_bot", owner="racer")
    conversations = [
        conversation_open(agent_id=agent.pk, channel=channel, external_user_id=user)[0]
        for channel, user in [("web", "a"), ("web", "b"), ("slack", "a")]
    ]

    results = race([writer(agent, conversations, n) for n in range(THREADS)])

    assert sorted(results) == list(range(THREADS))
    kept = (rollup(agent), users(agent), states(agent))
    assert sum(row["user_messages"] + row["agent_messages"] + row["tool_messages"]
               for row in kept[0].values()) == THREADS * MESSAGES  # fmt: skip
    rollups_rebuild_agent(agent_id=agent.pk)
    assert (rollup(agent), users(agent), states(agent)) == kept


def test_messages_posted_during_a_rebuild_are_counted() -> None:
    agent = new_agent("race_bot", owner="racer")
    conversations = [conversation_open(agent_id=agent.pk, channel="web")[0]]

    def rebuild() -> int:
        rollups_rebuild_agent(agent_id=agent.pk)
        return -1

    race([writer(agent, conversations, n) for n in range(3)] + [rebuild, rebuild])

    kept = rollup(agent)
    rollups_rebuild_agent(agent_id=agent.pk)
    assert rollup(agent) == kept
    assert sum(row["conversations_started"] for row in kept.values()) == 4
