"""What staff work leaves behind where it should not: a staff member's name in what the
customer reads, and a new app key in a cookie or a cache."""

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest
from django.test import Client
from rest_framework.test import APIClient

from agents.models import A1Agent
from agents.services import agent_create
from audit.models import AuditEntry
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

KEY = re.compile(r"a1app_[A-Za-z0-9_-]{43}")


def admin_session(username: str = "ann_admin") -> Client:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(user)
    return client


def cookie_texts(client: Client) -> list[str]:
    """Every cookie the browser now holds, with the messages cookie decoded."""
    texts = []
    for name, morsel in client.cookies.items():
        texts.append(morsel.value)
        if name == "messages" and morsel.value:
            request = HttpRequest()
            request.COOKIES[name] = morsel.value
            texts.extend(str(message) for message in CookieStorage(request))
    return texts


# --- a staff member's name stays out of what the owner reads --------------------------------


def test_a_plan_change_in_the_admin_does_not_name_the_staff_member_to_the_owner(
    owner_headers: Any,
) -> None:
    subscription = SubscriptionFactory.create(user_id="user_1", plan_id="free")
    client = admin_session("ann_admin")

    changed = client.post(
        f"/admin/billing/usersubscription/{subscription.pk}/change/",
        {"plan_id": "pro", "max_personal_agents": "", "max_work_agents": "9",
         "max_total_agents": ""},
    )  # fmt: skip

    events = APIClient().get("/api/v1/billing/events/", **owner_headers("user_1")).json()

    assert changed.status_code == 302
    descriptions = [event["description"] for event in events["results"]]
    assert "Plan changed from free to pro." in descriptions
    assert "Agent limits changed." in descriptions
    for description in descriptions:
        assert "ann_admin" not in description
        assert "staff" not in description
    # Who did it is in the audit trail, for staff.
    actors = set(
        AuditEntry.objects.filter(
            owner_id="user_1", action__startswith="subscription."
        ).values_list("actor_kind", "actor_name")
    )
    assert actors == {("staff", "ann_admin")}


# --- a new app key travels in no cookie and is kept by no cache ------------------------------


def test_rotating_a_key_in_the_admin_shows_it_in_the_response_and_in_no_cookie() -> None:
    agent, old_key = agent_create(owner_id="u1", name="K", handle="key_bot", agent_type="work")
    client = admin_session()

    response = client.post(f"/admin/agents/a1agent/{agent.pk}/lifecycle/rotate-key/")

    assert response.status_code == 200
    (new_key,) = set(KEY.findall(response.content.decode()))
    assert new_key != old_key
    assert "no-store" in response["Cache-Control"]
    assert not [text for text in cookie_texts(client) if new_key in text]
    page = client.get(f"/admin/agents/a1agent/{agent.pk}/change/").content.decode()
    assert new_key not in page


def test_adding_an_agent_in_the_admin_shows_its_key_in_the_response_and_in_no_cookie() -> None:
    client = admin_session()

    response = client.post(
        "/admin/agents/a1agent/add/",
        {"owner_id": "u_new", "name": "Made here", "handle": "made_here",
         "agent_type": "personal", "onboarding_data": "null", "settings": "{}"},
    )  # fmt: skip

    assert response.status_code == 200
    (key,) = set(KEY.findall(response.content.decode()))
    assert "no-store" in response["Cache-Control"]
    assert not [text for text in cookie_texts(client) if key in text]
    assert A1Agent.objects.filter(handle="made_here").exists()


def test_agent_answers_carrying_a_key_or_contact_details_are_not_stored_by_caches(
    owner_headers: Any,
) -> None:
    client = APIClient()
    headers = owner_headers("user_1")
    created = client.post(
        "/api/v1/agents/",
        {"name": "A", "handle": "cached_bot", "agent_type": "work", "email": "a@example.com"},
        format="json",
        **headers,
    )
    url = f"/api/v1/agents/{created.json()['id']}/"

    answers = {
        "create": created,
        "rotate-key": client.post(url + "rotate-key/", **headers),
        "retrieve": client.get(url, **headers),
        "list": client.get("/api/v1/agents/", **headers),
        "update": client.patch(url, {"phone_number": "+15550100"}, format="json", **headers),
    }

    assert created.status_code == 201
    assert "app_key" in answers["rotate-key"].json()
    assert {name: answer.get("Cache-Control") for name, answer in answers.items()} == dict.fromkeys(
        answers, "no-store"
    )
