"""The conversations API: apps open them (idempotently per thread), owners and staff read them."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import A1Agent
from agents.services import agent_create, agent_pause
from conversations.models import AgentConversation
from tests.factories import ConversationFactory, staff_user

pytestmark = pytest.mark.django_db

Headers = Callable[..., dict[str, str]]


def app_agent(
    owner_id: str = "user_1", handle: str = "helper_bot"
) -> tuple[A1Agent, dict[str, str]]:
    """Create an agent the way the API does; return it and headers carrying its app key."""
    agent, key = agent_create(owner_id=owner_id, name=handle, handle=handle, agent_type="personal")
    return agent, {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def mine() -> tuple[A1Agent, dict[str, str]]:
    return app_agent("user_1", "mine_bot")


@pytest.fixture
def theirs() -> tuple[A1Agent, dict[str, str]]:
    return app_agent("user_2", "theirs_bot")


def staff_client() -> APIClient:
    client = APIClient()
    client.force_login(staff_user())
    return client


def active_at(conversation: AgentConversation, at: dt.datetime) -> AgentConversation:
    """Set the conversation's last activity (auto_now_add overrides it on insert)."""
    AgentConversation.objects.filter(pk=conversation.pk).update(last_message_at=at)
    conversation.last_message_at = at
    return conversation


def open_conversation(api_client: APIClient, headers: dict[str, str], **body: Any) -> Any:
    body.setdefault("channel", "web")
    return api_client.post("/api/v1/conversations/", body, format="json", **headers)


# --- opening ---------------------------------------------------------------------------------


def test_app_opens_a_conversation_for_its_own_agent(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    agent, app = mine

    response = open_conversation(
        api_client, app, channel="whatsapp", external_user_id="+15550100",
        thread_id="wa-thread-1", metadata={"locale": "en"},
    )  # fmt: skip

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["agent"] == str(agent.pk)
    assert body["channel"] == "whatsapp"
    assert body["external_user_id"] == "+15550100"
    assert body["thread_id"] == "wa-thread-1"
    assert body["status"] == "active"
    assert body["metadata"] == {"locale": "en"}
    assert body["ended_at"] is None
    assert body["started_at"]
    assert body["last_message_at"]
    assert AgentConversation.objects.get(pk=body["id"]).agent_id == agent.pk


def test_app_may_name_its_own_agent(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    agent, app = mine

    response = open_conversation(api_client, app, agent=str(agent.pk))

    assert response.status_code == 201
    assert response.json()["agent"] == str(agent.pk)


def test_app_naming_another_agent_gets_404_and_nothing_is_written(
    api_client: APIClient,
    mine: tuple[A1Agent, dict[str, str]],
    theirs: tuple[A1Agent, dict[str, str]],
) -> None:
    _, app = mine
    other_agent, _ = theirs

    response = open_conversation(api_client, app, agent=str(other_agent.pk))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not AgentConversation.objects.exists()


def test_reopening_the_same_thread_on_the_same_channel_finds_it_with_200(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    _, app = mine
    first = open_conversation(api_client, app, channel="slack", thread_id="T1", metadata={"a": 1})

    again = open_conversation(api_client, app, channel="slack", thread_id="T1", metadata={"b": 2})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    # Found as stored: a retry does not rewrite it.
    assert again.json()["metadata"] == {"a": 1}
    assert AgentConversation.objects.count() == 1


def test_the_same_thread_on_another_channel_or_agent_is_another_conversation(
    api_client: APIClient,
    mine: tuple[A1Agent, dict[str, str]],
    theirs: tuple[A1Agent, dict[str, str]],
) -> None:
    statuses = [
        open_conversation(api_client, mine[1], channel="slack", thread_id="T1").status_code,
        open_conversation(api_client, mine[1], channel="discord", thread_id="T1").status_code,
        open_conversation(api_client, theirs[1], channel="slack", thread_id="T1").status_code,
    ]

    assert statuses == [201, 201, 201]
    assert AgentConversation.objects.count() == 3


def test_conversations_without_a_thread_are_never_merged(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    _, app = mine

    statuses = [open_conversation(api_client, app).status_code for _ in range(3)]

    assert statuses == [201, 201, 201]
    assert AgentConversation.objects.count() == 3


def test_the_database_refuses_a_second_conversation_for_a_thread_and_unknown_channels(
    mine: tuple[A1Agent, dict[str, str]],
) -> None:
    agent, _ = mine
    ConversationFactory.create(agent=agent, channel="email", thread_id="<id@mail>")

    with pytest.raises(IntegrityError), transaction.atomic():
        ConversationFactory.create(agent=agent, channel="email", thread_id="<id@mail>")
    with pytest.raises(IntegrityError), transaction.atomic():
        ConversationFactory.create(agent=agent, channel="fax")


@pytest.mark.parametrize("status", ["paused", "archived"])
def test_an_agent_that_is_not_active_opens_nothing_409(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], status: str
) -> None:
    agent, app = mine
    A1Agent.objects.filter(pk=agent.pk).update(status=status)

    response = open_conversation(api_client, app, thread_id="T1")

    assert response.status_code == 409
    assert response.json()["code"] == "agent_not_active"
    assert not AgentConversation.objects.exists()


def test_a_paused_agent_through_the_service_opens_nothing(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    agent, app = mine
    agent_pause(agent=agent)

    assert open_conversation(api_client, app).status_code == 409


def test_opening_a_conversation_reads_no_row_it_just_wrote(
    mine: tuple[A1Agent, dict[str, str]],
) -> None:
    """The INSERT returns the whole row: no SELECT of agent_conversations follows it."""
    from conversations.services import conversation_open

    agent, _ = mine
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        conversation, created = conversation_open(
            agent_id=agent.pk, channel="web", external_user_id="u-1", metadata={"a": [1]}
        )

    assert created
    stored = AgentConversation.objects.get(pk=conversation.pk)
    assert (conversation.metadata, conversation.started_at) == (stored.metadata, stored.started_at)
    assert (conversation.external_user_id, conversation.status) == ("u-1", stored.status)
    reads = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert not [sql for sql in reads if 'FROM "agent_conversations"' in sql], reads


def test_owners_and_staff_cannot_open_conversations_403(
    api_client: APIClient, owner_headers: Headers, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    agent, _ = mine

    as_owner = open_conversation(api_client, owner_headers("user_1"), agent=str(agent.pk))
    as_staff = staff_client().post(
        "/api/v1/conversations/", {"agent": str(agent.pk), "channel": "web"}, format="json"
    )

    assert as_owner.status_code == 403
    assert as_owner.json()["code"] == "permission_denied"
    assert as_staff.status_code == 403
    assert not AgentConversation.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channel", "fax"),
        ("channel", None),
        ("metadata", ["not", "an", "object"]),
        ("metadata", {"big": "x" * 70_000}),
        ("thread_id", "t" * 513),
        ("thread_id", ""),
        ("external_user_id", "u" * 256),
        ("external_user_id", "a\x00b"),
        ("agent", "not-a-uuid"),
        ("status", "archived"),
        ("chanel", "web"),
    ],
)  # fmt: skip
def test_bad_fields_answer_400_naming_the_field(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], field: str, value: Any
) -> None:
    _, app = mine

    response = open_conversation(api_client, app, **{field: value})

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["errors"]
    assert not AgentConversation.objects.exists()


# --- authentication on every route ------------------------------------------------------------

ROUTES = [
    ("get", "/api/v1/conversations/?agent={agent}"),
    ("post", "/api/v1/conversations/"),
    ("get", "/api/v1/conversations/{conversation}/"),
    ("patch", "/api/v1/conversations/{conversation}/"),
    ("post", "/api/v1/conversations/{conversation}/archive/"),
    ("get", "/api/v1/conversations/{conversation}/messages/"),
    ("post", "/api/v1/conversations/{conversation}/messages/"),
    ("get", "/api/v1/conversations/{conversation}/export/?format=csv"),
]
# The routes of one conversation.
CONVERSATION_ROUTES = ROUTES[2:]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_authentication_401(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], method: str, path: str
) -> None:
    conversation = ConversationFactory.create(agent=mine[0])
    url = path.format(agent=mine[0].pk, conversation=conversation.pk)

    response = getattr(api_client, method)(url)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "path"), CONVERSATION_ROUTES)
def test_the_app_of_another_agent_gets_404_on_every_conversation_route(
    api_client: APIClient,
    mine: tuple[A1Agent, dict[str, str]],
    theirs: tuple[A1Agent, dict[str, str]],
    method: str,
    path: str,
) -> None:
    conversation = ConversationFactory.create(agent=mine[0], metadata={"k": "v"})
    url = path.format(conversation=conversation.pk)
    body = {"role": "user", "content": "hi"} if url.endswith("messages/") else {}

    response = getattr(api_client, method)(url, body, format="json", **theirs[1])

    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    conversation.refresh_from_db()
    assert (conversation.status, conversation.metadata) == ("active", {"k": "v"})
    assert not conversation.messages.exists()


@pytest.mark.parametrize(("method", "path"), CONVERSATION_ROUTES)
def test_another_owner_gets_404_on_every_conversation_route(
    api_client: APIClient,
    owner_headers: Headers,
    mine: tuple[A1Agent, dict[str, str]],
    method: str,
    path: str,
) -> None:
    conversation = ConversationFactory.create(agent=mine[0], metadata={"k": "v"})
    url = path.format(conversation=conversation.pk)
    body = {"role": "user", "content": "hi"} if url.endswith("messages/") else {}

    response = getattr(api_client, method)(url, body, format="json", **owner_headers("user_2"))

    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    conversation.refresh_from_db()
    assert (conversation.status, conversation.metadata) == ("active", {"k": "v"})


# --- listing ---------------------------------------------------------------------------------


def list_conversations(api_client: APIClient, headers: dict[str, str], **params: Any) -> Any:
    return api_client.get("/api/v1/conversations/", params, **headers)


def test_owner_lists_an_agents_conversations_most_recent_activity_first(
    api_client: APIClient, owner_headers: Headers, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    agent, _ = mine
    now = timezone.now()
    older = active_at(ConversationFactory.create(agent=agent), now - dt.timedelta(hours=2))
    newest = active_at(ConversationFactory.create(agent=agent), now)
    middle = active_at(ConversationFactory.create(agent=agent), now - dt.timedelta(hours=1))
    ConversationFactory.create()  # another owner's agent

    response = list_conversations(api_client, owner_headers("user_1"), agent=agent.pk)

    assert response.status_code == 200, response.json()
    ids = [row["id"] for row in response.json()["results"]]
    assert ids == [str(newest.pk), str(middle.pk), str(older.pk)]
    assert {"next", "previous", "results"} <= set(response.json())


def test_owner_list_needs_the_agent_parameter_400(
    api_client: APIClient, owner_headers: Headers
) -> None:
    response = list_conversations(api_client, owner_headers("user_1"))

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "agent" in response.json()["errors"]


def test_listing_another_owners_agent_answers_404_not_an_empty_list(
    api_client: APIClient, owner_headers: Headers, theirs: tuple[A1Agent, dict[str, str]]
) -> None:
    ConversationFactory.create(agent=theirs[0])

    response = list_conversations(api_client, owner_headers("user_1"), agent=theirs[0].pk)
    unknown = list_conversations(
        api_client, owner_headers("user_1"), agent="00000000-0000-4000-8000-000000000000"
    )

    assert response.status_code == unknown.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_app_lists_its_own_agents_conversations_and_no_others(
    api_client: APIClient,
    mine: tuple[A1Agent, dict[str, str]],
    theirs: tuple[A1Agent, dict[str, str]],
) -> None:
    own = ConversationFactory.create(agent=mine[0])
    ConversationFactory.create(agent=theirs[0])

    default = list_conversations(api_client, mine[1])
    named = list_conversations(api_client, mine[1], agent=mine[0].pk)
    other = list_conversations(api_client, mine[1], agent=theirs[0].pk)

    assert [row["id"] for row in default.json()["results"]] == [str(own.pk)]
    assert [row["id"] for row in named.json()["results"]] == [str(own.pk)]
    assert other.status_code == 404


def test_staff_list_any_agents_conversations(mine: tuple[A1Agent, dict[str, str]]) -> None:
    conversation = ConversationFactory.create(agent=mine[0])

    response = staff_client().get("/api/v1/conversations/", {"agent": mine[0].pk})

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(conversation.pk)]


def test_list_filters_by_channel_status_external_user_and_activity_window(
    api_client: APIClient, owner_headers: Headers, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    agent = mine[0]
    now = timezone.now()
    web = active_at(
        ConversationFactory.create(agent=agent, channel="web", external_user_id="alice"), now
    )
    sms = active_at(
        ConversationFactory.create(agent=agent, channel="sms", external_user_id="bob"),
        now - dt.timedelta(days=2),
    )
    archived = active_at(
        ConversationFactory.create(agent=agent, channel="sms", status="archived"),
        now - dt.timedelta(days=5),
    )
    headers = owner_headers("user_1")

    def ids(**params: Any) -> list[str]:
        response = list_conversations(api_client, headers, agent=agent.pk, **params)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids(channel="sms") == [str(sms.pk), str(archived.pk)]
    assert ids(status="archived") == [str(archived.pk)]
    assert ids(external_user_id="alice") == [str(web.pk)]
    assert ids(since=(now - dt.timedelta(days=3)).isoformat()) == [str(web.pk), str(sms.pk)]
    assert ids(until=(now - dt.timedelta(days=1)).isoformat()) == [str(sms.pk), str(archived.pk)]
    bad = list_conversations(api_client, headers, agent=agent.pk, channel="fax", since="soon")
    assert bad.status_code == 400
    assert {"channel", "since"} <= set(bad.json()["errors"])


def test_conversation_list_pages_with_a_cursor_in_a_constant_number_of_queries(
    api_client: APIClient, owner_headers: Headers, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    agent = mine[0]
    now = timezone.now()
    for n, conversation in enumerate(
        AgentConversation.objects.bulk_create(
            AgentConversation(agent=agent, channel="web") for _ in range(120)
        )
    ):
        active_at(conversation, now - dt.timedelta(seconds=n))
    headers = owner_headers("user_1")
    list_conversations(api_client, headers, agent=agent.pk)  # warm the JWKS cache

    def queries_for(page_size: int) -> int:
        with CaptureQueriesContext(connection) as context:
            response = list_conversations(api_client, headers, agent=agent.pk, page_size=page_size)
        assert len(response.json()["results"]) == page_size
        return len(context.captured_queries)

    assert queries_for(5) == queries_for(100)

    seen: list[str] = []
    url: str | None = f"/api/v1/conversations/?agent={agent.pk}&page_size=50"
    while url:
        page = api_client.get(url, **headers).json()
        seen += [row["last_message_at"] for row in page["results"]]
        url = page["next"]
    assert len(seen) == 120
    assert seen == sorted(seen, reverse=True)


# --- one conversation ------------------------------------------------------------------------


def test_the_owner_the_app_and_staff_read_a_conversation(
    api_client: APIClient, owner_headers: Headers, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    conversation = ConversationFactory.create(agent=mine[0])
    url = f"/api/v1/conversations/{conversation.pk}/"

    responses = [
        api_client.get(url, **owner_headers("user_1")),
        api_client.get(url, **mine[1]),
        staff_client().get(url),
    ]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert {response.json()["id"] for response in responses} == {str(conversation.pk)}


def test_filters_do_not_hide_a_conversation_read_by_id(
    api_client: APIClient, owner_headers: Headers, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    conversation = ConversationFactory.create(agent=mine[0])

    response = api_client.get(
        f"/api/v1/conversations/{conversation.pk}/?status=archived", **owner_headers("user_1")
    )

    assert response.status_code == 200


@pytest.mark.parametrize("who", ["owner", "app"])
def test_owner_or_app_change_metadata_and_external_user_id(
    api_client: APIClient, owner_headers: Headers, mine: tuple[A1Agent, dict[str, str]], who: str
) -> None:
    conversation = ConversationFactory.create(agent=mine[0], metadata={"old": True})
    headers = owner_headers("user_1") if who == "owner" else mine[1]

    response = api_client.patch(
        f"/api/v1/conversations/{conversation.pk}/",
        {"metadata": {"new": True}, "external_user_id": "carol"},
        format="json",
        **headers,
    )

    assert response.status_code == 200, response.json()
    assert response.json()["metadata"] == {"new": True}
    assert response.json()["external_user_id"] == "carol"
    conversation.refresh_from_db()
    assert (conversation.metadata, conversation.external_user_id) == ({"new": True}, "carol")


@pytest.mark.parametrize(
    ("field", "value"),
    [("channel", "sms"), ("status", "archived"), ("thread_id", "x"), ("agent", None),
     ("metadata", "text")],
)  # fmt: skip
def test_patch_refuses_everything_but_metadata_and_external_user_id(
    api_client: APIClient, mine: tuple[A1Agent, dict[str, str]], field: str, value: Any
) -> None:
    conversation = ConversationFactory.create(agent=mine[0])

    response = api_client.patch(
        f"/api/v1/conversations/{conversation.pk}/", {field: value}, format="json", **mine[1]
    )

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_staff_may_read_but_not_change_a_conversation_403(
    mine: tuple[A1Agent, dict[str, str]],
) -> None:
    conversation = ConversationFactory.create(agent=mine[0])
    client = staff_client()

    patch = client.patch(
        f"/api/v1/conversations/{conversation.pk}/", {"metadata": {}}, format="json"
    )
    archive = client.post(f"/api/v1/conversations/{conversation.pk}/archive/")

    assert (patch.status_code, archive.status_code) == (403, 403)
    conversation.refresh_from_db()
    assert conversation.status == "active"


def test_archiving_sets_status_and_end_and_is_idempotent(
    api_client: APIClient, owner_headers: Headers, mine: tuple[A1Agent, dict[str, str]]
) -> None:
    conversation = ConversationFactory.create(agent=mine[0])
    url = f"/api/v1/conversations/{conversation.pk}/archive/"

    first = api_client.post(url, **mine[1])
    again = api_client.post(url, **owner_headers("user_1"))

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["status"] == again.json()["status"] == "archived"
    assert first.json()["ended_at"] is not None
    assert again.json()["ended_at"] == first.json()["ended_at"]


def test_unknown_or_malformed_ids_answer_404(api_client: APIClient, owner_headers: Headers) -> None:
    headers = owner_headers("user_1")

    assert api_client.get("/api/v1/conversations/not-a-uuid/", **headers).status_code == 404
    assert (
        api_client.get(
            "/api/v1/conversations/00000000-0000-4000-8000-000000000000/messages/", **headers
        ).status_code
        == 404
    )
