"""Per-agent access on a team's agent: restricted to chosen members with a role each, on top
of the team role; the team's admins keep every agent (docs/teams.md)."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from agents.models import A1Agent
from agents.selectors import agent_queryset_for
from agents.services import agent_access_set, agent_create
from audit.models import AuditEntry
from core.principals import Owner
from teams.roles import Role, role_from_permissions
from teams.selectors import admin_team_ids_of_member, team_admin_ids
from tests.teams_world import TEAM, member_add, team_make, team_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent() -> A1Agent:
    team_world()
    created, _ = agent_create(
        owner_id=TEAM, team_id=TEAM, name="Shared", handle="shared_one", agent_type="work"
    )
    return created


def access_url(agent: A1Agent) -> str:
    return f"/api/v1/agents/{agent.pk}/access/"


def put_access(agent: A1Agent, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return APIClient().put(access_url(agent), body, format="json", **headers)


def test_an_admin_restricts_an_agent_and_reads_who_may_reach_it(
    agent: A1Agent, owner_headers: Any
) -> None:
    body = {"access": "restricted", "members": [
        {"user_id": "manager", "role": "viewer"}, {"user_id": "editor", "role": "manager"},
    ]}  # fmt: skip

    response = put_access(agent, owner_headers("admin"), body)

    assert response.status_code == 200, response.content
    expected = {"access": "restricted", "members": [
        {"user_id": "editor", "role": "manager"}, {"user_id": "manager", "role": "viewer"},
    ]}  # fmt: skip
    assert response.json() == expected
    assert APIClient().get(access_url(agent), **owner_headers("viewer")).status_code == 404
    assert APIClient().get(access_url(agent), **owner_headers("editor")).json() == expected
    entry = AuditEntry.objects.get(action="agent.access_changed")
    assert (entry.actor_id, entry.owner_id, entry.agent_id) == ("admin", TEAM, agent.pk)


def test_a_listed_members_role_is_the_lower_of_the_listed_and_the_team_role(
    agent: A1Agent, owner_headers: Any
) -> None:
    agent_access_set(
        agent=agent, access="restricted", members={"manager": "viewer", "editor": "manager"}
    )
    detail = f"/api/v1/agents/{agent.pk}/"

    # The manager listed as a viewer may read, not change.
    assert APIClient().get(detail, **owner_headers("manager")).status_code == 200
    patch = APIClient().patch(detail, {"name": "x"}, format="json", **owner_headers("manager"))
    assert patch.status_code == 403
    # The editor listed as a manager stays an editor: may change, may not delete.
    patch = APIClient().patch(detail, {"name": "y"}, format="json", **owner_headers("editor"))
    assert patch.status_code == 200
    assert APIClient().delete(detail, **owner_headers("editor")).status_code == 403
    # The admin is not listed and keeps everything.
    assert APIClient().delete(detail, **owner_headers("admin")).status_code == 204


def test_opening_an_agent_to_the_team_again_drops_its_list(
    agent: A1Agent, owner_headers: Any
) -> None:
    agent_access_set(agent=agent, access="restricted", members={"editor": "editor"})
    assert not agent_queryset_for(Owner("viewer")).exists()

    response = put_access(agent, owner_headers("admin"), {"access": "team"})

    assert response.json() == {"access": "team", "members": []}
    assert agent_queryset_for(Owner("viewer")).get() == agent


@pytest.mark.parametrize(
    ("caller", "body", "status", "code"),
    [
        ("manager", {"access": "team"}, 403, "permission_denied"),
        ("admin", {"access": "restricted", "members": [{"user_id": "outsider", "role": "viewer"}]},
         400, "validation_error"),
        ("admin", {"access": "restricted", "members": [{"user_id": "removed", "role": "viewer"}]},
         400, "validation_error"),
        ("admin", {"access": "team", "members": [{"user_id": "editor", "role": "viewer"}]},
         400, "validation_error"),
        ("admin", {"access": "restricted", "members": [
            {"user_id": "editor", "role": "viewer"}, {"user_id": "editor", "role": "editor"}]},
         400, "validation_error"),
        ("admin", {"access": "restricted", "members": [{"user_id": "editor", "role": "admin"}]},
         400, "validation_error"),
        ("admin", {"access": "everyone"}, 400, "validation_error"),
    ],
)  # fmt: skip
def test_a_bad_access_change_is_refused_and_changes_nothing(
    agent: A1Agent, owner_headers: Any, caller: str, body: dict[str, Any], status: int, code: str
) -> None:
    response = put_access(agent, owner_headers(caller), body)

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert A1Agent.objects.get(pk=agent.pk).access == "team"
    assert not AuditEntry.objects.filter(action="agent.access_changed").exists()


def test_ones_own_agent_has_no_access_rules(owner_headers: Any) -> None:
    own, _ = agent_create(owner_id="solo", name="Mine", handle="mine_only", agent_type="work")

    read = APIClient().get(access_url(own), **owner_headers("solo"))
    change = put_access(own, owner_headers("solo"), {"access": "restricted"})

    assert (read.status_code, read.json()["code"]) == (409, "not_a_team_agent")
    assert (change.status_code, change.json()["code"]) == (409, "not_a_team_agent")


@pytest.mark.parametrize(
    "permissions",
    [
        [], ["a1zap:viewer"], ["a1zap:editor"], ["a1zap:manager"], ["a1zap:admin"],
        ["team_admin"], ["$update_team"], ["$delete_team"], ["team_member"],
        ["team_admin", "a1zap:viewer"], ["team_admin", "a1zap:admin"], ["$read_members"],
    ],
)  # fmt: skip
def test_the_admin_teams_filter_agrees_with_the_role_rule(permissions: list[str]) -> None:
    team_make("t-parity")
    member_add("t-parity", "someone", permissions)

    in_filter = list(admin_team_ids_of_member("someone")) != []
    in_admins = team_admin_ids("t-parity") == ["someone"]

    assert in_filter == in_admins == (role_from_permissions(permissions) == Role.ADMIN)


def test_the_agents_list_keeps_its_query_count_with_restricted_agents(
    owner_headers: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(10):
        team_id = f"team-r{n}"
        team_make(team_id)
        member_add(team_id, "busy", ["a1zap:admin"] if n % 3 == 0 else [])
        for m, agent_type in enumerate(("work", "personal")):
            created, _ = agent_create(
                owner_id=team_id, team_id=team_id, name="A", handle=f"r{n}_{m}",
                agent_type=agent_type,
            )  # fmt: skip
            if m:
                agent_access_set(
                    agent=created, access="restricted",
                    members={"busy": "viewer"} if n % 2 else {},
                )  # fmt: skip
    headers = owner_headers("busy")
    APIClient().get("/api/v1/agents/", **headers)

    with django_assert_max_num_queries(6):
        response = APIClient().get("/api/v1/agents/?page_size=100", **headers)

    # Every open agent; restricted ones where listed (odd teams) or admin (teams 0, 3, 6, 9).
    listed_or_admin = {n for n in range(10) if n % 2 or n % 3 == 0}
    assert len(response.json()["results"]) == 10 + len(listed_or_admin)


def test_the_agents_a_user_may_see_are_found_through_the_owner_index_not_a_scan() -> None:
    """The rule covers the user's own agents and their teams' (owned by the team), as one IN
    over those accounts: an OR of the two made PostgreSQL read every agent of every owner."""
    from django.db import connection

    from agents.models import A1Agent
    from agents.selectors import reachable_by_owner

    def plan(queryset: Any) -> str:
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())

    text = plan(A1Agent.objects.filter(reachable_by_owner("user_1")).order_by("-created_at")[:51])
    assert "Seq Scan on a1_agents" not in text, text


def _legacy_agent_of_team_without_team(handle: str) -> A1Agent:
    """An agent owned by TEAM's id with no team_id, as the console could make before the
    database refused it (the trigger is skipped, as for a row older than it)."""
    from django.db import connection

    agent, _ = agent_create(owner_id="someone_else", name="S", handle=handle, agent_type="work")
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE a1_agents SET owner_id = %s WHERE id = %s", [TEAM, agent.pk])
        cursor.execute("SET session_replication_role = origin")
    return A1Agent.objects.get(pk=agent.pk)


def test_an_agent_owned_by_a_teams_id_without_the_team_reaches_no_member(
    owner_headers: Any,
) -> None:
    from tests.factories import ConversationFactory

    team_world()
    agent = _legacy_agent_of_team_without_team("staff_made")
    conversation = ConversationFactory.create(agent=agent)

    for caller in ("viewer", "admin"):
        headers = owner_headers(caller)
        listed = APIClient().get("/api/v1/agents/", **headers).json()["results"]
        detail = APIClient().get(f"/api/v1/agents/{agent.pk}/", **headers).status_code
        talk = APIClient().get(f"/api/v1/conversations/{conversation.pk}/", **headers)
        conversations = APIClient().get(f"/api/v1/conversations/?agent={agent.pk}", **headers)

        assert (listed, detail, talk.status_code) == ([], 404, 404), caller
        assert conversations.status_code == 404 or conversations.json()["results"] == []


def test_the_reach_rule_as_a_filter_and_in_sql_agree_with_agent_role_of() -> None:
    """`reachable_by_owner` (the lists' Q), `REACHABLE_BY_OWNER_SQL` (plain-SQL reads) and
    `agent_role_of` (every route naming an agent) say the same, case by case."""
    from django.db import connection

    from agents.selectors import REACHABLE_BY_OWNER_SQL, agent_role_of, reachable_by_owner
    from billing.models import UserSubscription
    from tests.teams_world import OTHER_TEAM

    team_world()
    for team in (TEAM, OTHER_TEAM):
        UserSubscription.objects.create(
            user_id=team, plan_id="enterprise", max_personal_agents=5, max_total_agents=5
        )

    def team_agent(team: str, handle: str, members: dict[str, str] | None = None) -> None:
        created, _ = agent_create(
            owner_id=team, team_id=team, name="T", handle=handle, agent_type="personal"
        )
        if members is not None:
            agent_access_set(agent=created, access="restricted", members=members)

    team_agent(TEAM, "open_one")
    team_agent(TEAM, "listed_viewer", {"viewer": "viewer"})
    team_agent(TEAM, "listed_nobody", {})
    team_agent(OTHER_TEAM, "other_open")
    team_agent(OTHER_TEAM, "other_closed", {})
    for user in ("viewer", "admin", "removed", "outsider"):
        agent_create(owner_id=user, name="Own", handle=f"own_{user}", agent_type="work")
    _legacy_agent_of_team_without_team("no_team")
    callers = ["viewer", "editor", "excluded", "admin", "removed", "outsider", "nobody"]

    for caller in callers:
        by_role = {agent.handle for agent in A1Agent.objects.all() if agent_role_of(caller, agent)}
        by_filter = set(
            A1Agent.objects.filter(reachable_by_owner(caller)).values_list("handle", flat=True)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT a.handle FROM a1_agents a WHERE {REACHABLE_BY_OWNER_SQL}",
                {"user": caller},
            )
            by_sql = {handle for (handle,) in cursor.fetchall()}

        assert by_filter == by_sql == by_role, caller
    # A sanity check that the cases are not all empty.
    admin_reach = {a.handle for a in A1Agent.objects.filter(reachable_by_owner("admin"))}
    assert admin_reach == {"open_one", "listed_viewer", "listed_nobody", "own_admin"}
