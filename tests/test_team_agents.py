"""Agents owned by a Stack Auth team: created with `team`, counted against the team's plan,
reached by its members according to their role, by nobody else (docs/teams.md)."""

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from agents.errors import AgentLimitReached
from agents.models import A1Agent
from agents.services import agent_create
from audit.models import AuditEntry
from billing.models import UserSubscription
from tests.concurrency import race
from tests.factories import AgentFactory
from tests.teams_world import OTHER_TEAM, TEAM, member_add, member_remove, team_make, team_world

pytestmark = pytest.mark.django_db

Headers = Callable[..., dict[str, str]]


@pytest.fixture
def world() -> None:
    team_world()


def create(headers: dict[str, str], handle: str, **body: Any) -> Any:
    payload = {"name": handle, "handle": handle, "agent_type": "work", **body}
    return APIClient().post("/api/v1/agents/", payload, format="json", **headers)


def test_an_editor_creates_a_teams_agent_owned_and_counted_by_the_team(
    world: None, owner_headers: Headers
) -> None:
    response = create(owner_headers("editor"), "acme_bot", team=TEAM)

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["team"], body["owner_id"]) == (TEAM, TEAM)
    agent = A1Agent.objects.get(pk=body["id"])
    assert (agent.team_id, agent.owner_id) == (TEAM, TEAM)
    assert UserSubscription.objects.filter(user_id=TEAM).exists()
    assert not UserSubscription.objects.filter(user_id="editor").exists()
    entry = AuditEntry.objects.get(action="agent.created", agent_id=agent.pk)
    assert (entry.actor_id, entry.owner_id) == ("editor", TEAM)
    assert entry.changes["team_id"] == {"before": None, "after": TEAM}


def test_without_team_the_agent_is_the_callers_own(world: None, owner_headers: Headers) -> None:
    response = create(owner_headers("editor"), "my_own", team=None)

    assert response.status_code == 201
    assert (response.json()["team"], response.json()["owner_id"]) == (None, "editor")


@pytest.mark.parametrize(
    ("caller", "team", "status", "code"),
    [
        ("viewer", TEAM, 403, "permission_denied"),
        ("removed", TEAM, 404, "not_found"),
        ("outsider", TEAM, 404, "not_found"),
        ("editor", OTHER_TEAM, 404, "not_found"),
        ("editor", "no-such-team", 404, "not_found"),
    ],
)
def test_only_a_member_with_the_editor_role_creates_a_teams_agent(
    world: None, owner_headers: Headers, caller: str, team: str, status: int, code: str
) -> None:
    response = create(owner_headers(caller), "refused", team=team)

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert not A1Agent.objects.exists()


def test_a_deleted_team_gets_no_new_agent(world: None, owner_headers: Headers) -> None:
    from teams.services import team_delete

    team_delete(team_id=TEAM)

    assert create(owner_headers("admin"), "late", team=TEAM).status_code == 404


def test_the_teams_agents_count_against_the_teams_plan_not_the_members(
    world: None, owner_headers: Headers
) -> None:
    # The free plan: one personal and one work agent, two in all.
    assert create(owner_headers("editor"), "team_work", team=TEAM).status_code == 201
    refused = create(owner_headers("manager"), "team_work_2", team=TEAM)
    assert (refused.status_code, refused.json()["code"]) == (403, "agent_limit_reached")

    assert create(owner_headers("editor"), "own_work").status_code == 201
    assert create(owner_headers("manager"), "manager_work").status_code == 201


def test_the_database_refuses_a_teams_agent_not_owned_by_the_team(world: None) -> None:
    agent = AgentFactory.create(owner_id="editor")

    with pytest.raises(IntegrityError), transaction.atomic():
        A1Agent.objects.filter(pk=agent.pk).update(team_id=TEAM)


def test_the_database_refuses_an_agent_of_an_unknown_team() -> None:
    def insert() -> None:
        with transaction.atomic():
            AgentFactory.create(owner_id="ghost-team", team_id="ghost-team")
            # Deferred foreign keys are checked at commit; force the check here.
            connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")

    with pytest.raises(IntegrityError):
        insert()


def test_an_agent_owned_by_a_teams_id_is_refused_without_the_team(world: None) -> None:
    """A team's agent has team_id = owner_id; owned by the team's id without it, it would be
    nobody's (no member has a role on it) yet owned by the team's account."""
    from agents.errors import OwnerIsATeam

    with pytest.raises(OwnerIsATeam) as refused:
        agent_create(owner_id=TEAM, name="S", handle="staff_made", agent_type="work")

    assert (refused.value.status_code, refused.value.code) == (400, "owner_is_a_team")
    assert not A1Agent.objects.filter(handle="staff_made").exists()


def test_the_database_refuses_an_agent_owned_by_a_teams_id_without_the_team(world: None) -> None:
    agent = AgentFactory.create(owner_id="editor")

    with pytest.raises(IntegrityError, match="a1_agents_owner_not_a_team"), transaction.atomic():
        A1Agent.objects.filter(pk=agent.pk).update(owner_id=TEAM)
    with pytest.raises(IntegrityError, match="a1_agents_owner_not_a_team"), transaction.atomic():
        AgentFactory.create(owner_id=OTHER_TEAM)
    # A team's agent proper is fine, and so is an update that leaves the owner alone.
    A1Agent.objects.filter(pk=agent.pk).update(name="Renamed")
    agent_create(owner_id=TEAM, team_id=TEAM, name="T", handle="proper", agent_type="work")


# --- lists ---------------------------------------------------------------------------------


def agents_listed(headers: dict[str, str], query: str = "") -> list[str]:
    response = APIClient().get(f"/api/v1/agents/{query}", **headers)
    assert response.status_code == 200
    return sorted(agent["handle"] for agent in response.json()["results"])


def test_a_member_lists_their_own_and_their_teams_agents(
    world: None, owner_headers: Headers
) -> None:
    agent_create(owner_id=TEAM, team_id=TEAM, name="T", handle="team_agent", agent_type="work")
    agent_create(
        owner_id=OTHER_TEAM, team_id=OTHER_TEAM, name="O", handle="other_agent", agent_type="work"
    )
    agent_create(owner_id="viewer", name="V", handle="viewer_own", agent_type="work")

    assert agents_listed(owner_headers("viewer")) == ["team_agent", "viewer_own"]
    assert agents_listed(owner_headers("viewer"), f"?team={TEAM}") == ["team_agent"]
    assert agents_listed(owner_headers("viewer"), "?team=none") == ["viewer_own"]
    assert agents_listed(owner_headers("viewer"), f"?team={OTHER_TEAM}") == []
    assert agents_listed(owner_headers("outsider")) == ["other_agent"]
    assert agents_listed(owner_headers("removed")) == []


def test_a_removed_member_loses_the_teams_agents_at_once(
    world: None, owner_headers: Headers
) -> None:
    agent, _ = agent_create(owner_id=TEAM, team_id=TEAM, name="T", handle="t_a", agent_type="work")
    headers = owner_headers("manager")
    assert APIClient().get(f"/api/v1/agents/{agent.pk}/", **headers).status_code == 200

    member_remove(TEAM, "manager")

    assert APIClient().get(f"/api/v1/agents/{agent.pk}/", **headers).status_code == 404
    assert agents_listed(headers) == []


def test_the_agents_list_keeps_its_query_count_with_many_teams_and_agents(
    owner_headers: Headers, django_assert_max_num_queries: Any
) -> None:
    for n in range(12):
        team_id = f"team-{n}"
        team_make(team_id, f"Team {n}")
        member_add(team_id, "busy", ["a1zap:viewer"] if n % 2 else [])
        member_add(team_id, f"someone_{n}")
        for m in range(2):  # the free plan's two
            agent_create(
                owner_id=team_id, team_id=team_id, name="A", handle=f"t{n}_a{m}",
                agent_type="work" if m else "personal",
            )  # fmt: skip
    headers = owner_headers("busy")
    APIClient().get("/api/v1/agents/", **headers)  # the mirror's first touch of the user

    with django_assert_max_num_queries(6):
        response = APIClient().get("/api/v1/agents/?page_size=100", **headers)

    assert len(response.json()["results"]) == 24


# --- races ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_members_racing_for_the_teams_last_agent_let_one_win() -> None:
    team_world()
    UserSubscription.objects.create(
        user_id=TEAM, max_personal_agents=10, max_work_agents=10, max_total_agents=3
    )
    agent_create(owner_id=TEAM, team_id=TEAM, name="A", handle="first", agent_type="work")
    agent_create(owner_id=TEAM, team_id=TEAM, name="B", handle="second", agent_type="work")

    def creator(member: str, n: int) -> Callable[[], str]:
        def run() -> str:
            try:
                agent_create(
                    owner_id=TEAM, team_id=TEAM, member_id=member, name="R",
                    handle=f"race_{member}_{n}", agent_type="personal",
                )  # fmt: skip
            except AgentLimitReached:
                return "refused"
            return "created"

        return run

    results = race([creator(member, n) for n in range(4) for member in ("editor", "admin")])

    assert Counter(results) == {"created": 1, "refused": 7}
    assert A1Agent.objects.filter(team_id=TEAM).count() == 3


def test_the_audit_trail_names_the_member_who_changed_a_teams_agent_and_the_team(
    world: None, owner_headers: Any
) -> None:
    agent, _ = agent_create(
        owner_id=TEAM, team_id=TEAM, name="T", handle="t_audit", agent_type="work"
    )
    detail = f"/api/v1/agents/{agent.pk}/"

    APIClient().patch(detail, {"name": "Renamed"}, format="json", **owner_headers("editor"))
    APIClient().post(f"{detail}rotate-key/", **owner_headers("manager"))
    APIClient().delete(detail, **owner_headers("admin"))

    entries = AuditEntry.objects.filter(agent_id=agent.pk).order_by("id")
    assert [(e.action, e.actor_id, e.owner_id) for e in entries] == [
        ("agent.created", "", TEAM),  # made here by the system
        ("agent.updated", "editor", TEAM),
        ("app_key.rotated", "manager", TEAM),
        ("agent.deleted", "admin", TEAM),
    ]


def test_the_conversations_and_integrations_lists_of_a_teams_agent_keep_their_query_count(
    world: None, owner_headers: Any, django_assert_max_num_queries: Any
) -> None:
    from tests.factories import ConversationFactory, IntegrationFactory

    agent, _ = agent_create(
        owner_id=TEAM, team_id=TEAM, name="T", handle="t_lists", agent_type="work"
    )
    for n in range(30):
        ConversationFactory.create(agent=agent, external_user_id=f"c{n}")
    for provider in ("slack", "telegram", "discord"):
        IntegrationFactory.create(agent=agent, provider=provider)
    headers = owner_headers("viewer")
    APIClient().get(f"/api/v1/conversations/?agent={agent.pk}", **headers)

    with django_assert_max_num_queries(6):
        conversations = APIClient().get(f"/api/v1/conversations/?agent={agent.pk}", **headers)
    with django_assert_max_num_queries(6):
        integrations = APIClient().get(f"/api/v1/integrations/?agent={agent.pk}", **headers)

    assert len(conversations.json()["results"]) == 30
    assert len(integrations.json()["results"]) == 3


@pytest.mark.django_db(transaction=True)
def test_a_removal_waits_for_a_creation_in_progress_and_a_later_creation_sees_it() -> None:
    import threading
    import time

    from django.db import connection as thread_connection

    from teams.errors import TeamNotFound
    from tests.teams_world import member_remove

    team_world()
    holding, removed = threading.Event(), threading.Event()

    def create_slowly() -> None:
        try:
            with transaction.atomic():
                agent_create(
                    owner_id=TEAM, team_id=TEAM, member_id="editor", name="S",
                    handle="slow_one", agent_type="work",
                )  # fmt: skip
                holding.set()
                time.sleep(0.5)  # the removal arrives meanwhile and must wait for this commit
        finally:
            thread_connection.close()

    def remove() -> None:
        try:
            holding.wait(10)
            member_remove(TEAM, "editor")
            removed.set()
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=create_slowly), threading.Thread(target=remove)]
    for thread in threads:
        thread.start()
    holding.wait(10)
    assert not removed.wait(0.2)  # blocked on the team's row while the creation holds it
    for thread in threads:
        thread.join(20)

    assert removed.is_set()
    assert A1Agent.objects.filter(handle="slow_one", team_id=TEAM).exists()
    with pytest.raises(TeamNotFound):
        agent_create(
            owner_id=TEAM, team_id=TEAM, member_id="editor", name="L", handle="late_one",
            agent_type="personal",
        )  # fmt: skip
