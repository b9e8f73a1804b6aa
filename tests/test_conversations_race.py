"""Retries that race stay idempotent: each thread has its own database connection."""

import datetime as dt
from collections import Counter
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from agents.models import A1Agent
from agents.services import agent_create
from conversations.models import AgentConversation, Message
from tests.concurrency import race
from tests.factories import ConversationFactory
from usage.models import AgentUsage, UserMonthlyUsage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_plans")]

RETRIES = 8


def app_agent() -> tuple[A1Agent, dict[str, str]]:
    agent, key = agent_create(
        owner_id="racer", name="Racer", handle="racer_bot", agent_type="personal"
    )
    return agent, {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def poster(
    url: str, body: dict[str, object], headers: dict[str, str]
) -> Callable[[], tuple[int, str]]:
    def post() -> tuple[int, str]:
        response = APIClient().post(url, body, format="json", **headers)
        return response.status_code, response.json().get("id", "")

    return post


def test_racing_retries_to_open_the_same_thread_create_one_conversation() -> None:
    agent, app = app_agent()
    body = {"channel": "whatsapp", "thread_id": "wamid.123", "external_user_id": "+1555"}

    results = race([poster("/api/v1/conversations/", body, app) for _ in range(RETRIES)])

    assert Counter(status for status, _ in results) == {201: 1, 200: RETRIES - 1}
    assert len({conversation_id for _, conversation_id in results}) == 1
    assert AgentConversation.objects.filter(agent=agent).count() == 1


def test_racing_retries_of_one_client_message_id_store_and_count_it_once() -> None:
    agent, app = app_agent()
    conversation = ConversationFactory.create(agent=agent)
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    body = {"role": "user", "content": "Hello", "client_message_id": "msg-42"}

    results = race([poster(url, body, app) for _ in range(RETRIES)])

    assert Counter(status for status, _ in results) == {201: 1, 200: RETRIES - 1}
    assert len({message_id for _, message_id in results}) == 1
    assert Message.objects.filter(conversation=conversation).count() == 1
    today = dt.datetime.now(dt.UTC).date()
    assert AgentUsage.objects.get(agent=agent, date=today).message_count == 1
    assert UserMonthlyUsage.objects.get(user_id="racer").message_count == 1


def test_racing_distinct_messages_are_all_stored_counted_and_ordered() -> None:
    agent, app = app_agent()
    conversation = ConversationFactory.create(agent=agent)
    url = f"/api/v1/conversations/{conversation.pk}/messages/"

    results = race([poster(url, {"role": "user", "content": f"m{n}"}, app) for n in range(RETRIES)])

    assert Counter(status for status, _ in results) == {201: RETRIES}
    times = list(
        Message.objects.filter(conversation=conversation)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    assert len(times) == RETRIES
    assert AgentConversation.objects.get(pk=conversation.pk).last_message_at == times[-1]
    assert UserMonthlyUsage.objects.get(user_id="racer").message_count == RETRIES


def test_racing_messages_at_the_hard_cap_let_exactly_the_remaining_quota_through() -> None:
    agent, app = app_agent()
    conversation = ConversationFactory.create(agent=agent)
    month = dt.datetime.now(dt.UTC).date().replace(day=1)
    UserMonthlyUsage.objects.create(user_id="racer", month=month, message_count=997)
    url = f"/api/v1/conversations/{conversation.pk}/messages/"

    results = race([poster(url, {"role": "user", "content": f"m{n}"}, app) for n in range(RETRIES)])

    assert Counter(status for status, _ in results) == {201: 3, 429: RETRIES - 3}
    assert Message.objects.filter(conversation=conversation).count() == 3
    assert UserMonthlyUsage.objects.get(user_id="racer").message_count == 1000
