"""Messages: apps post them (counted, idempotent per client id), owners read and export them."""

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import A1Agent
from agents.services import agent_create
from conversations.models import AgentConversation, Message
from tests.factories import ConversationFactory, MessageFactory, staff_user
from usage.models import AgentUsage, UserMonthlyUsage

pytestmark = pytest.mark.django_db

Headers = Callable[..., dict[str, str]]


def app_agent(owner_id: str, handle: str) -> tuple[A1Agent, dict[str, str]]:
    """Create an agent the way the API does; return it and headers carrying its app key."""
    agent, key = agent_create(owner_id=owner_id, name=handle, handle=handle, agent_type="personal")
    return agent, {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def mine() -> tuple[A1Agent, dict[str, str]]:
    return app_agent("user_1", "mine_bot")


@pytest.fixture
def conversation(mine: tuple[A1Agent, dict[str, str]]) -> AgentConversation:
    return ConversationFactory.create(agent=mine[0])


def post_message(
    api_client: APIClient, conversation: AgentConversation, headers: dict[str, str], **body: Any
) -> Any:
    body.setdefault("role", "user")
    body.setdefault("content", "Hello!")
    return api_client.post(
        f"/api/v1/conversations/{conversation.pk}/messages/", body, format="json", **headers
    )


def messages_today(agent: A1Agent) -> int:
    today = dt.datetime.now(dt.UTC).date()
    usage = AgentUsage.objects.filter(agent=agent, date=today).first()
    return usage.message_count or 0 if usage else 0


def messages_this_month(owner_id: str) -> int:
    month = dt.datetime.now(dt.UTC).date().replace(day=1)
    usage = UserMonthlyUsage.objects.filter(user_id=owner_id, month=month).first()
    return usage.message_count if usage else 0


def spread_in_time(conversation: AgentConversation, count: int) -> list[Message]:
    """Bulk-create `count` messages one second apart, oldest first; return them in order."""
    messages = Message.objects.bulk_create(
        Message(conversation=conversation, agent_id=conversation.agent_id, role="user",
                content=f"message {n}")
        for n in range(count)
    )  # fmt: skip
    start = timezone.now() - dt.timedelta(seconds=count)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messages SET created_at = %s::timestamptz + make_interval(secs => n)"
            " FROM unnest(%s::uuid[]) WITH ORDINALITY AS m(id, n) WHERE messages.id = m.id",
            [start, [message.pk for message in messages]],
        )
    return messages


# --- posting ---------------------------------------------------------------------------------


def test_app_posts_a_message_which_is_counted_and_moves_the_conversation(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], conversation: AgentConversation
) -> None:
    agent, app = mine
    before = conversation.last_message_at

    response = post_message(
        api_client, conversation, app, role="agent", content="  Hi there\n", metadata={"k": 1}
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["conversation"] == str(conversation.pk)
    assert body["agent"] == str(agent.pk)
    assert (body["role"], body["content"], body["metadata"]) == ("agent", "  Hi there\n", {"k": 1})
    assert body["client_message_id"] is None
    message = Message.objects.get(pk=body["id"])
    assert message.agent_id == agent.pk
    assert message.content == "  Hi there\n"
    conversation.refresh_from_db()
    assert conversation.last_message_at == message.created_at
    assert conversation.last_message_at > before
    assert messages_today(agent) == 1
    assert messages_this_month("user_1") == 1


def test_every_message_counts_one(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], conversation: AgentConversation
) -> None:
    agent, app = mine

    statuses = [post_message(api_client, conversation, app).status_code for _ in range(3)]

    assert statuses == [201, 201, 201]
    assert messages_today(agent) == 3
    assert messages_this_month("user_1") == 3
    times = list(conversation.messages.order_by("created_at").values_list("created_at", flat=True))
    assert len(set(times)) == 3


def test_a_retried_client_message_id_returns_the_stored_message_200_and_is_not_counted(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], conversation: AgentConversation
) -> None:
    agent, app = mine
    first = post_message(api_client, conversation, app, client_message_id="m-1", content="one")

    again = post_message(api_client, conversation, app, client_message_id="m-1", content="two")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert again.json()["content"] == "one"
    assert conversation.messages.count() == 1
    assert messages_today(agent) == 1
    assert messages_this_month("user_1") == 1


def test_a_retry_is_answered_even_once_the_agent_is_paused_or_the_quota_is_used_up(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], conversation: AgentConversation
) -> None:
    agent, app = mine
    first = post_message(api_client, conversation, app, client_message_id="m-1")
    A1Agent.objects.filter(pk=agent.pk).update(status="paused")

    again = post_message(api_client, conversation, app, client_message_id="m-1")
    new = post_message(api_client, conversation, app, client_message_id="m-2")

    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert new.status_code == 409


def test_the_same_client_message_id_in_another_conversation_is_another_message(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], conversation: AgentConversation
) -> None:
    agent, app = mine
    other = ConversationFactory.create(agent=agent)

    first = post_message(api_client, conversation, app, client_message_id="m-1")
    second = post_message(api_client, other, app, client_message_id="m-1")

    assert (first.status_code, second.status_code) == (201, 201)
    assert messages_today(agent) == 2


def test_a_message_to_an_archived_conversation_is_refused_409_and_nothing_is_written(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], conversation: AgentConversation
) -> None:
    agent, app = mine
    api_client.post(f"/api/v1/conversations/{conversation.pk}/archive/", **app)

    response = post_message(api_client, conversation, app)

    assert response.status_code == 409
    assert response.json()["code"] == "conversation_archived"
    assert not Message.objects.exists()
    assert messages_today(agent) == 0
    assert messages_this_month("user_1") == 0


@pytest.mark.parametrize("status", ["paused", "archived"])
def test_a_message_for_an_agent_that_is_not_active_is_refused_409_and_nothing_is_written(
    api_client: APIClient,
    mine: tuple[A1Agent, dict[str, str]],
    conversation: AgentConversation,
    status: str,
) -> None:
    agent, app = mine
    A1Agent.objects.filter(pk=agent.pk).update(status=status)
    before = AgentConversation.objects.get(pk=conversation.pk).last_message_at

    response = post_message(api_client, conversation, app, client_message_id="m-1")

    assert response.status_code == 409
    assert response.json()["code"] == "agent_not_active"
    assert not Message.objects.exists()
    assert not AgentUsage.objects.exists()
    assert not UserMonthlyUsage.objects.exists()
    assert AgentConversation.objects.get(pk=conversation.pk).last_message_at == before


def test_past_the_free_plans_hard_cap_a_message_is_refused_429_and_nothing_is_written(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], conversation: AgentConversation
) -> None:
    agent, app = mine
    month = dt.datetime.now(dt.UTC).date().replace(day=1)
    UserMonthlyUsage.objects.create(user_id="user_1", month=month, message_count=999)

    last_allowed = post_message(api_client, conversation, app, content="the 1,000th")
    refused = post_message(api_client, conversation, app, content="the 1,001st")

    assert last_allowed.status_code == 201
    assert refused.status_code == 429
    assert refused.json()["code"] == "quota_exceeded"
    assert list(Message.objects.values_list("content", flat=True)) == ["the 1,000th"]
    assert messages_this_month("user_1") == 1000
    assert messages_today(agent) == 1
    conversation.refresh_from_db()
    assert conversation.last_message_at == Message.objects.get().created_at


@pytest.mark.parametrize(
    ("content", "status"),
    [("x" * 32 * 1024, 201), ("x" * (32 * 1024 + 1), 400), ("é" * (16 * 1024 + 1), 400)],
)
def test_content_is_limited_to_32_kib_of_utf8(
    api_client: APIClient,
    mine: tuple[A1Agent, dict[str, str]],
    conversation: AgentConversation,
    content: str,
    status: int,
) -> None:
    response = post_message(api_client, conversation, mine[1], content=content)

    assert response.status_code == status
    if status == 400:
        assert response.json()["code"] == "validation_error"
        assert "content" in response.json()["errors"]
        assert not Message.objects.exists()
        assert not AgentUsage.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role", "bot"),
        ("role", None),
        ("content", ""),
        ("content", None),
        ("content", "a\x00b"),
        ("metadata", [1, 2]),
        ("client_message_id", "c" * 256),
        ("agent", "someone"),
        ("created_at", "2020-01-01T00:00:00Z"),
    ],
)
def test_bad_message_fields_answer_400_naming_the_field(
    api_client: APIClient,
    mine: tuple[A1Agent, dict[str, str]],
    conversation: AgentConversation,
    field: str,
    value: Any,
) -> None:
    response = post_message(api_client, conversation, mine[1], **{field: value})

    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert not Message.objects.exists()


def test_owners_and_staff_read_but_do_not_post_messages_403(
    api_client: APIClient, owner_headers: Headers, conversation: AgentConversation
) -> None:
    staff = APIClient()
    staff.force_login(staff_user())

    as_owner = post_message(api_client, conversation, owner_headers("user_1"))
    as_staff = staff.post(
        f"/api/v1/conversations/{conversation.pk}/messages/",
        {"role": "user", "content": "x"},
        format="json",
    )

    assert (as_owner.status_code, as_staff.status_code) == (403, 403)
    assert as_owner.json()["code"] == "permission_denied"
    assert not Message.objects.exists()


# --- reading ---------------------------------------------------------------------------------


def test_the_owner_the_app_and_staff_read_messages_oldest_first(
    api_client: APIClient,
    owner_headers: Headers,
    mine: tuple[A1Agent, dict[str, str]],
    conversation: AgentConversation,
) -> None:
    messages = spread_in_time(conversation, 3)
    MessageFactory.create()  # another conversation's
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    staff = APIClient()
    staff.force_login(staff_user())

    for response in (
        api_client.get(url, **owner_headers("user_1")),
        api_client.get(url, **mine[1]),
        staff.get(url),
    ):
        assert response.status_code == 200
        assert [row["id"] for row in response.json()["results"]] == [
            str(message.pk) for message in messages
        ]


def test_thousands_of_messages_page_oldest_first_in_a_constant_number_of_queries(
    api_client: APIClient, owner_headers: Headers, conversation: AgentConversation
) -> None:
    messages = spread_in_time(conversation, 3000)
    headers = owner_headers("user_1")
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    api_client.get(url, **headers)  # warm the JWKS cache

    def queries_for(page_size: int) -> int:
        with CaptureQueriesContext(connection) as context:
            response = api_client.get(url, {"page_size": page_size}, **headers)
        assert len(response.json()["results"]) == page_size
        return len(context.captured_queries)

    assert queries_for(10) == queries_for(200)

    seen: list[str] = []
    next_url: str | None = f"{url}?page_size=200"
    while next_url:
        page = api_client.get(next_url, **headers).json()
        seen += [row["id"] for row in page["results"]]
        next_url = page["next"]
    assert seen == [str(message.pk) for message in messages]


def test_page_size_is_capped_at_200(
    api_client: APIClient, owner_headers: Headers, conversation: AgentConversation
) -> None:
    spread_in_time(conversation, 250)

    response = api_client.get(
        f"/api/v1/conversations/{conversation.pk}/messages/",
        {"page_size": 1000},
        **owner_headers("user_1"),
    )

    assert len(response.json()["results"]) == 200


# --- export ----------------------------------------------------------------------------------


def export(
    api_client: APIClient, conversation: AgentConversation, headers: Any, **params: Any
) -> Any:
    return api_client.get(f"/api/v1/conversations/{conversation.pk}/export/", params, **headers)


def test_export_as_json_lines_streams_every_message_oldest_first(
    api_client: APIClient, owner_headers: Headers, conversation: AgentConversation
) -> None:
    messages = spread_in_time(conversation, 2500)
    Message.objects.filter(pk=messages[0].pk).update(
        content='Line one\nline "two" — ünïcode', metadata={"tool": "search"}
    )

    response = export(api_client, conversation, owner_headers("user_1"), format="jsonl")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"] == (
        f'attachment; filename="conversation-{conversation.pk}.jsonl"'
    )
    lines = b"".join(response.streaming_content).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["id"] for row in rows] == [str(message.pk) for message in messages]
    assert rows[0]["content"] == 'Line one\nline "two" — ünïcode'
    assert rows[0]["metadata"] == {"tool": "search"}
    assert set(rows[0]) == {
        "id", "conversation", "role", "content", "metadata", "client_message_id", "created_at",
    }  # fmt: skip
    assert rows[0]["conversation"] == str(conversation.pk)


def test_export_as_csv_quotes_content_and_defuses_formulas(
    api_client: APIClient, owner_headers: Headers, conversation: AgentConversation
) -> None:
    first, second = spread_in_time(conversation, 2)
    Message.objects.filter(pk=first.pk).update(content='Hello, "world"\nbye')
    Message.objects.filter(pk=second.pk).update(content='=HYPERLINK("http://evil")')

    response = export(api_client, conversation, owner_headers("user_1"), format="csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Disposition"].endswith('.csv"')
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["id"] for row in rows] == [str(first.pk), str(second.pk)]
    assert rows[0]["content"] == 'Hello, "world"\nbye'
    assert rows[1]["content"] == '\'=HYPERLINK("http://evil")'
    assert json.loads(rows[0]["metadata"]) == {}


def test_staff_may_export_and_the_app_may_not(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], conversation: AgentConversation
) -> None:
    staff = APIClient()
    staff.force_login(staff_user())

    assert export(staff, conversation, {}, format="csv").status_code == 200
    as_app = export(api_client, conversation, mine[1], format="csv")
    assert as_app.status_code == 403
    assert as_app.json()["code"] == "permission_denied"


@pytest.mark.parametrize("params", [{}, {"format": "xml"}, {"format": "json"}])
def test_export_needs_a_known_format_400(
    api_client: APIClient, owner_headers: Headers, conversation: AgentConversation, params: Any
) -> None:
    response = export(api_client, conversation, owner_headers("user_1"), **params)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "format" in response.json()["errors"]


def test_export_of_another_owners_conversation_is_404(
    api_client: APIClient, owner_headers: Headers, conversation: AgentConversation
) -> None:
    response = export(api_client, conversation, owner_headers("user_2"), format="jsonl")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
