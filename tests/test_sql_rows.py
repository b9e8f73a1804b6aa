"""The hot lists' hand-written SELECTs (core.sql_rows) read exactly what their querysets read.

The agents list pages `agents.selectors.agent_rows_for(user)` and a conversation's page
`message_rows_for`; the detail routes and everything else use the querysets.
Both must give the same rows, in the same order, for every caller and filter, or a list
would show what a detail route hides (or the reverse).
"""

import datetime as dt
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection

from agents.models import A1Agent, AgentAccess, AgentMember
from agents.selectors import AGENT_LIST_ROWS, agent_queryset_for, agent_rows_for
from conversations.selectors import (
    MESSAGE_LIST_ROWS,
    conversation_is_visible_to,
    conversation_queryset_for,
    message_rows_for,
    messages_of_conversation,
)
from core.principals import AppPrincipal, Owner
from core.sql_rows import SqlRows
from tests.factories import AgentFactory, ConversationFactory, MessageFactory
from tests.teams_world import OTHER_TEAM, TEAM, team_world

pytestmark = pytest.mark.django_db

CALLERS = ("viewer", "editor", "manager", "admin", "excluded", "removed", "outsider", "loner")
ORDER = ("-created_at", "-id")


@pytest.fixture
def agents() -> None:
    team_world()
    AgentFactory.create(owner_id="editor", handle="editor_own")
    AgentFactory.create(owner_id="loner", handle="loner_own", status="paused")
    AgentFactory.create(owner_id=TEAM, team_id=TEAM, handle="team_open", agent_type="work")
    restricted = AgentFactory.create(
        owner_id=TEAM, team_id=TEAM, handle="team_closed", access=AgentAccess.RESTRICTED
    )
    AgentMember.objects.create(agent=restricted, user_id="viewer", role="viewer")
    AgentFactory.create(owner_id=OTHER_TEAM, team_id=OTHER_TEAM, handle="other_team")


def rows_of(rows: SqlRows) -> list[dict[str, Any]]:
    return rows.order_by(*ORDER)[0:1000]


def as_read(rows: Any) -> list[dict[str, Any]]:
    """Rows as SqlRows reads them: UUIDs as their text (what the responses write)."""
    return [
        {name: str(value) if isinstance(value, uuid.UUID) else value for name, value in row.items()}
        for row in rows
    ]


def queryset_rows(user: Any, **lookups: Any) -> list[dict[str, Any]]:
    queryset = agent_queryset_for(user).filter(**lookups).order_by(*ORDER)
    return as_read(queryset.values(*AGENT_LIST_ROWS))


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    "lookups",
    [
        {},
        {"status": "paused"},
        {"agent_type__exact": "work"},
        {"team_id__isnull": True},
        {"team_id": TEAM},
    ],
)
def test_the_agents_rows_are_the_querysets_for_every_caller_and_filter(
    agents: None, caller: str, lookups: dict[str, Any]
) -> None:
    user = Owner(id=caller)

    assert rows_of(agent_rows_for(user).filter(**lookups)) == queryset_rows(user, **lookups)


def test_staff_rows_are_every_agent_and_anonymous_rows_none(
    agents: None, django_user_model: Any
) -> None:
    staff = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")

    assert len(rows_of(agent_rows_for(staff))) == A1Agent.objects.count() == 5
    assert rows_of(agent_rows_for(staff)) == queryset_rows(staff)
    assert rows_of(agent_rows_for(AnonymousUser())) == []


def test_a_cursor_position_pages_as_the_queryset_does(agents: None) -> None:
    user = Owner(id="admin")
    everything = queryset_rows(user)
    middle = str(everything[1]["created_at"])

    older = rows_of(agent_rows_for(user).filter(created_at__lt=middle))

    assert older == [row for row in everything if row["created_at"] < everything[1]["created_at"]]


def test_a_conversations_rows_are_its_messages(agents: None) -> None:
    conversation = ConversationFactory.create(agent=A1Agent.objects.get(handle="editor_own"))
    for n in range(3):
        MessageFactory.create(conversation=conversation, content=f"m{n}", metadata={"n": n})
    MessageFactory.create(conversation=ConversationFactory.create(), content="elsewhere")

    owner = Owner(id="editor")
    rows = message_rows_for(owner, conversation.pk).order_by("created_at", "id")[0:100]

    expected = messages_of_conversation(conversation.pk).values(*MESSAGE_LIST_ROWS)
    assert rows == as_read(expected)
    assert [row["metadata"] for row in rows] == [{"n": 0}, {"n": 1}, {"n": 2}]


@pytest.mark.parametrize("caller", [*CALLERS, "app", "other_app", "staff", "anonymous"])
def test_a_callers_messages_are_there_exactly_when_the_conversation_is_visible(
    agents: None, caller: str, django_user_model: Any
) -> None:
    principals = {
        "app": lambda agent: AppPrincipal(agent.app_id, agent.pk, agent.owner_id),
        "other_app": lambda agent: AppPrincipal(uuid.uuid4(), uuid.uuid4(), "someone"),
        "staff": lambda agent: django_user_model.objects.get_or_create(
            username="boss", defaults={"is_staff": True, "is_superuser": True}
        )[0],
        "anonymous": lambda agent: AnonymousUser(),
    }
    for handle in ("editor_own", "team_open", "team_closed", "other_team"):
        agent = A1Agent.objects.get(handle=handle)
        conversation = ConversationFactory.create(agent=agent)
        MessageFactory.create(conversation=conversation, content="hello")
        user = principals.get(caller, lambda agent: Owner(id=caller))(agent)

        rows = message_rows_for(user, conversation.pk).order_by("created_at", "id")[0:10]

        visible = conversation_is_visible_to(user, conversation.pk)
        assert visible == conversation_queryset_for(user).filter(pk=conversation.pk).exists()
        assert len(rows) == (1 if visible else 0), (caller, handle)


@pytest.mark.parametrize(
    "lookups", [{"name__icontains": "x"}, {"access": "team"}, {"status__in": ["active"]}]
)
def test_an_undeclared_column_or_lookup_is_an_error_not_ignored(lookups: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        agent_rows_for(Owner(id="u")).filter(**lookups)


def plan(sql: str, parameters: Any) -> str:
    """PostgreSQL's plan with sequential scans priced out: a scan still chosen has no index."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", parameters)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_agents_list_finds_the_callers_agents_through_the_owner_index() -> None:
    rows = agent_rows_for(Owner(id="user_1")).order_by(*ORDER)

    text = plan(rows.sql() + " LIMIT 51", rows.parameters)

    assert "Seq Scan on a1_agents" not in text, text


def test_a_conversations_page_reads_through_its_time_index() -> None:
    rows = message_rows_for(Owner(id="u"), uuid.uuid4()).order_by("created_at", "id")

    text = plan(rows.sql() + " LIMIT 51", rows.parameters)

    assert "idx_messages_conversation_time" in text, text


def test_the_close_reads_one_months_counters_through_the_month_index() -> None:
    from invoicing.closing import CLOSE_SQL

    text = plan(CLOSE_SQL, {"first": dt.date(2026, 11, 1), "after": dt.date(2026, 12, 1)})

    assert "idx_user_monthly_usage_month" in text, text
