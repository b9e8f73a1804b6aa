"""The console's analytics: the agent page's last 30 days, and the staff ranking of agents."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from agents.models import A1Agent
from analytics.selectors import bucket_seconds
from conversations.models import AgentConversation, Message
from conversations.rollups import response_bucket, rollups_rebuild_agent
from tests.analytics_data import moment, new_agent
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

RANKING = "/admin/agents/a1agent/analytics/"


def staff_client(role: str | None = "support") -> Client:
    user = User.objects.create_user(f"staff_{role}", password="pw", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def answered(agent: A1Agent, day: dt.date, waits: list[float], user: str = "u1") -> None:
    """One conversation on a past day, each wait a user message then an agent reply.

    The write path stamps messages with the server's clock, so past days are written with
    plain SQL and the rollup rebuilt (tests/test_analytics_rollups.py shows the two agree).
    """
    conversation = ConversationFactory.create(
        agent=agent, external_user_id=user, started_at=moment(day, 1)
    )
    at = moment(day, 2)
    for wait in waits:
        for role in ("user", "agent"):
            message = MessageFactory.create(conversation=conversation, role=role)
            Message.objects.filter(pk=message.pk).update(created_at=at)  # not auto_now_add's
            at += dt.timedelta(seconds=wait if role == "user" else 0)
        at += dt.timedelta(seconds=1)
    AgentConversation.objects.filter(pk=conversation.pk).update(
        started_at=moment(day, 1), last_message_at=at
    )
    rollups_rebuild_agent(agent_id=agent.pk)


def shown(wait: float) -> str:
    return str(round(bucket_seconds(response_bucket(dt.timedelta(seconds=wait))), 3))


def test_the_agent_page_shows_the_last_30_days_of_messages_users_and_response_time() -> None:
    agent = new_agent()
    today = timezone.now().date()
    answered(agent, today - dt.timedelta(days=2), [30, 30, 30], user="u1")
    answered(agent, today - dt.timedelta(days=2), [30], user="u2")
    answered(agent, today - dt.timedelta(days=40), [5])  # outside the 30 days

    html = staff_client().get(f"/admin/agents/a1agent/{agent.pk}/change/").content.decode()

    assert 'id="panel-analytics"' in html
    assert "8 messages, 2 end users" in html
    assert f"p50 {shown(30)} s" in html
    assert html.count("<polyline ") == 3
    day = (today - dt.timedelta(days=2)).isoformat()
    assert f"<td>{day}</td><td>8</td><td>2</td>" in html


def test_the_ranking_orders_agents_by_messages_and_by_slowest_p95() -> None:
    today = timezone.now().date()
    busy, slow, quiet = new_agent("busy_bot"), new_agent("slow_bot"), new_agent("quiet_bot")
    answered(busy, today, [2] * 12)
    answered(slow, today, [900] * 10)
    answered(quiet, today, [4000])  # too few responses to rank by time

    response = staff_client().get(RANKING)
    html = response.content.decode()

    assert response.status_code == 200
    volume = html[html.index('id="ranking-volume"') : html.index('id="ranking-slowest"')]
    slowest = html[html.index('id="ranking-slowest"') :]
    assert volume.index("@busy_bot") < volume.index("@slow_bot") < volume.index("@quiet_bot")
    assert slowest.index("@slow_bot") < slowest.index("@busy_bot")
    assert "@quiet_bot" not in slowest
    assert f"<td>{shown(900)}</td><td>10</td>" in slowest


def test_the_ranking_is_for_staff_with_a_role_only() -> None:
    assert staff_client(role=None).get(RANKING).status_code == 403
    assert Client().get(RANKING).status_code == 302
