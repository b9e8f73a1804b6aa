"""Templates and teams: cloning into a team, a team's templates, who of the team may do what
with them, and what the team's deletion does to them (docs/teams.md, README's templates).

The routes under a team's agent (`/agents/{id}/template/` and `apply/`) are in the access
matrix (`tests/test_team_access_matrix.py`) with every caller."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from agent_templates import services
from agent_templates.models import AgentTemplate, AgentTemplateLink
from agents.models import A1Agent
from agents.services import agent_access_set, agent_create, agent_update
from audit.models import AuditEntry
from billing.models import UserSubscription
from tests.teams_world import OTHER_TEAM, TEAM, member_add, team_make, team_world

pytestmark = pytest.mark.django_db

Headers = Callable[..., dict[str, str]]
EVERY_CALLER = ("viewer", "editor", "manager", "admin", "excluded", "removed", "outsider")
ROLE_OF = {"viewer": 1, "editor": 2, "excluded": 2, "manager": 3, "admin": 4}  # teams.roles


@pytest.fixture
def world() -> None:
    """The team world, with room for the team's agents (the free plan has one work agent)."""
    team_world()
    UserSubscription.objects.create(
        user_id=TEAM, max_personal_agents=10, max_work_agents=10, max_total_agents=20
    )


def authors_template(slug: str = "public_kit", visibility: str = "unlisted") -> AgentTemplate:
    """Another user's template everyone may read (by its slug)."""
    source, _ = agent_create(
        owner_id="author", name="S", handle=f"src_{slug}"[:30], agent_type="work",
        description="From the author.",
    )  # fmt: skip
    return services.template_create(
        owner_id="author", agent_id=source.pk, slug=slug, name="Kit", visibility=visibility
    )


def team_agent(handle: str = "team_source", *, restricted: bool = False) -> A1Agent:
    agent, _ = agent_create(
        owner_id=TEAM, team_id=TEAM, name="Team source", handle=handle, agent_type="work",
        description="The team's own.", settings={"tone": "team"},
    )  # fmt: skip
    if restricted:  # everyone but `excluded` is listed (admins reach it anyway)
        agent_access_set(
            agent=agent,
            access="restricted",
            members={"viewer": "viewer", "editor": "editor", "manager": "manager"},
        )
    return agent


def team_template(slug: str = "team_kit", **fields: Any) -> AgentTemplate:
    agent = team_agent(f"src_{slug}"[:30])
    return services.template_create(
        owner_id=TEAM, agent_id=agent.pk, slug=slug, name="Team kit", **fields
    )


def clone(headers: dict[str, str], slug: str, handle: str, **body: Any) -> Any:
    return APIClient().post(
        f"/api/v1/templates/{slug}/clone/", {"handle": handle, **body}, format="json", **headers
    )


# --- cloning into a team -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "team", "status", "code"),
    [
        ("viewer", TEAM, 403, "permission_denied"),
        ("editor", TEAM, 201, None),
        ("manager", TEAM, 201, None),
        ("admin", TEAM, 201, None),
        ("excluded", TEAM, 201, None),  # a plain member: the editor role
        ("removed", TEAM, 404, "not_found"),
        ("outsider", TEAM, 404, "not_found"),
        ("editor", OTHER_TEAM, 404, "not_found"),
        ("editor", "no-such-team", 404, "not_found"),
    ],
)
def test_cloning_into_a_team_needs_the_role_that_creates_the_teams_agents(
    world: None, owner_headers: Headers, caller: str, team: str, status: int, code: str | None
) -> None:
    template = authors_template()

    response = clone(owner_headers(caller), "public_kit", "team_clone", team=team)

    assert response.status_code == status, response.content
    if code is not None:
        assert response.json()["code"] == code
        assert not A1Agent.objects.filter(handle="team_clone").exists()
        assert AgentTemplate.objects.get(pk=template.pk).clone_count == 0
        return
    body = response.json()
    assert (body["team"], body["owner_id"]) == (TEAM, TEAM)
    agent = A1Agent.objects.get(pk=body["id"])
    assert (agent.owner_id, agent.team_id, agent.description) == (TEAM, TEAM, "From the author.")
    assert AgentTemplateLink.objects.filter(agent=agent, template=template).exists()
    created = AuditEntry.objects.get(action="agent.created", agent_id=agent.pk)
    cloned = AuditEntry.objects.get(action="agent_template.cloned", agent_id=agent.pk)
    assert (created.actor_id, created.owner_id) == (caller, TEAM)
    assert (cloned.actor_id, cloned.owner_id, cloned.context["team"]) == (caller, TEAM, TEAM)


def test_cloning_without_a_team_makes_the_callers_own_agent(
    world: None, owner_headers: Headers
) -> None:
    authors_template()

    response = clone(owner_headers("editor"), "public_kit", "own_clone", team=None)

    assert response.status_code == 201, response.content
    assert (response.json()["team"], response.json()["owner_id"]) == (None, "editor")


def test_cloning_into_a_team_at_its_agent_limit_is_refused_like_creating_one(
    owner_headers: Headers,
) -> None:
    team_world()  # the team on the free plan
    authors_template()  # a work agent's template; the free plan allows the team one work agent
    headers = owner_headers("editor")
    assert clone(headers, "public_kit", "first_clone", team=TEAM).status_code == 201

    refused = clone(headers, "public_kit", "second_clone", team=TEAM)
    created = APIClient().post(
        "/api/v1/agents/",
        {"name": "n", "handle": "created_one", "agent_type": "work", "team": TEAM},
        format="json",
        **headers,
    )

    assert (refused.status_code, refused.json()["code"]) == (403, "agent_limit_reached")
    assert (created.status_code, created.json()["code"]) == (403, "agent_limit_reached")
    assert A1Agent.objects.filter(team_id=TEAM).count() == 1
    assert clone(headers, "public_kit", "own_clone").status_code == 201  # the member's own room


def test_a_deleted_teams_clone_is_refused(world: None, owner_headers: Headers) -> None:
    from teams.services import team_delete

    authors_template()
    team_delete(team_id=TEAM)

    response = clone(owner_headers("admin"), "public_kit", "late_clone", team=TEAM)

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_a_users_private_template_is_not_cloned_into_a_team(
    world: None, owner_headers: Headers
) -> None:
    source, _ = agent_create(
        owner_id="editor", name="S", handle="editors_src", agent_type="personal"
    )
    services.template_create(owner_id="editor", agent_id=source.pk, slug="mine", name="Mine")

    response = clone(owner_headers("editor"), "mine", "into_team", team=TEAM)

    # Private is its owner's account only: the team could never read it (nor its updates).
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    own = clone(owner_headers("editor"), "mine", "into_own", agent_type="work")
    assert own.status_code == 201, own.content


# --- a team's templates --------------------------------------------------------------------


@pytest.mark.parametrize("restricted", [False, True])
@pytest.mark.parametrize("caller", EVERY_CALLER)
def test_publishing_a_teams_agent_needs_the_editor_role_on_it_and_the_team_owns_the_template(
    world: None, owner_headers: Headers, caller: str, restricted: bool
) -> None:
    agent = team_agent(restricted=restricted)
    body = {"agent": str(agent.pk), "slug": "team_kit", "name": "Team kit"}

    response = APIClient().post("/api/v1/templates/", body, format="json", **owner_headers(caller))

    hidden = caller in ("removed", "outsider") or (caller == "excluded" and restricted)
    if hidden:  # as another owner's agent
        assert (response.status_code, list(response.json()["errors"])) == (400, ["agent"])
        assert "team_source" not in response.content.decode()
    elif ROLE_OF[caller] < 2:
        assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    else:
        assert response.status_code == 201, response.content
        assert response.json()["team"] == TEAM
        template = AgentTemplate.objects.get(slug="team_kit")
        assert (template.owner_id, template.team_id) == (TEAM, TEAM)
        entry = AuditEntry.objects.get(action="agent_template.created")
        assert (entry.actor_id, entry.owner_id) == (caller, TEAM)
        return
    assert not AgentTemplate.objects.exists()


# (method, path after the slug, body) -> the lowest team role (teams.roles) that may call it
TEMPLATE_ROUTES: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {
    ("get", ""): (1, {}),
    ("patch", ""): (2, {"name": "Renamed"}),
    ("post", "versions/"): (2, {"changelog": "again"}),
    ("delete", ""): (3, {}),
}


@pytest.mark.parametrize("caller", EVERY_CALLER)
@pytest.mark.parametrize(("method", "suffix"), sorted(TEMPLATE_ROUTES))
def test_a_teams_template_is_managed_by_its_members_according_to_their_role(
    world: None, owner_headers: Headers, caller: str, method: str, suffix: str
) -> None:
    template = team_template()  # private: the team's only
    needs, body = TEMPLATE_ROUTES[(method, suffix)]

    response = getattr(APIClient(), method)(
        f"/api/v1/templates/team_kit/{suffix}", body, format="json", **owner_headers(caller)
    )

    after = AgentTemplate.objects.filter(pk=template.pk).values("name", "latest_version").first()
    if caller in ("removed", "outsider"):
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
        assert after == {"name": "Team kit", "latest_version": 1}
    elif ROLE_OF[caller] < needs:
        assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
        assert after == {"name": "Team kit", "latest_version": 1}
    else:
        assert 200 <= response.status_code < 300, response.content
        if method == "get":  # a member reads it as its owner does
            assert (response.json()["team"], response.json()["visibility"]) == (TEAM, "private")
        if method != "get" and method != "delete":
            action = "updated" if method == "patch" else "version_published"
            entry = AuditEntry.objects.get(action=f"agent_template.{action}")
            assert (entry.actor_id, entry.owner_id) == (caller, TEAM)


def test_a_new_version_comes_only_from_a_teams_agent_the_member_may_change(
    world: None, owner_headers: Headers
) -> None:
    team_template()
    restricted = team_agent("restricted_src", restricted=True)
    own, _ = agent_create(owner_id="excluded", name="O", handle="excluded_own", agent_type="work")

    def publish(caller: str, agent: A1Agent) -> Any:
        return APIClient().post(
            "/api/v1/templates/team_kit/versions/",
            {"changelog": "from another", "agent": str(agent.pk)},
            format="json",
            **owner_headers(caller),
        )

    for caller, agent in (("excluded", restricted), ("excluded", own)):
        refused = publish(caller, agent)
        assert (refused.status_code, list(refused.json()["errors"])) == (400, ["agent"])
    assert publish("editor", restricted).status_code == 201
    assert AgentTemplate.objects.get(slug="team_kit").source_agent_id == restricted.pk


def test_the_teams_templates_are_listed_with_team_and_not_with_owner_me(
    world: None, owner_headers: Headers
) -> None:
    team_template("team_kit")
    source, _ = agent_create(owner_id="viewer", name="S", handle="viewer_src", agent_type="work")
    services.template_create(owner_id="viewer", agent_id=source.pk, slug="viewers", name="V")
    team_make("team-third", "Third")
    member_add("team-third", "viewer")

    def listed(caller: str, query: str) -> Any:
        return APIClient().get(f"/api/v1/templates/?{query}", **owner_headers(caller))

    for caller in ("viewer", "editor", "manager", "admin", "excluded"):
        response = listed(caller, f"team={TEAM}")
        assert [row["slug"] for row in response.json()["results"]] == ["team_kit"], caller
        assert response.json()["results"][0]["team"] == TEAM
    for caller in ("removed", "outsider"):
        response = listed(caller, f"team={TEAM}")
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert [row["slug"] for row in listed("viewer", "owner=me").json()["results"]] == ["viewers"]
    assert listed("viewer", "team=team-third").json()["results"] == []
    both = listed("viewer", f"owner=me&team={TEAM}")
    assert (both.status_code, list(both.json()["errors"])) == (400, ["team"])
    assert APIClient().get(f"/api/v1/templates/?team={TEAM}").status_code == 401


def test_the_team_template_list_runs_a_constant_number_of_queries(
    world: None, owner_headers: Headers, django_assert_max_num_queries: Any
) -> None:
    agent = team_agent()
    for n in range(30):
        services.template_create(owner_id=TEAM, agent_id=agent.pk, slug=f"team_{n}", name="K")
    headers = owner_headers("viewer")
    APIClient().get(f"/api/v1/templates/?team={TEAM}", **headers)  # the mirror's first touch

    with django_assert_max_num_queries(3):  # the member's role, the page, (the throttle's plan)
        response = APIClient().get(f"/api/v1/templates/?team={TEAM}&page_size=100", **headers)

    assert len(response.json()["results"]) == 30


def test_a_teams_private_template_is_read_and_cloned_by_its_members_only(
    world: None, owner_headers: Headers
) -> None:
    team_template()

    assert APIClient().get("/api/v1/templates/team_kit/").status_code == 404
    for caller in ("removed", "outsider"):
        headers = owner_headers(caller)
        assert APIClient().get("/api/v1/templates/team_kit/", **headers).status_code == 404
        assert clone(headers, "team_kit", f"{caller}_clone").status_code == 404
    into_team = clone(owner_headers("editor"), "team_kit", "team_copy", team=TEAM)
    assert into_team.status_code == 201, into_team.content
    status = APIClient().get(
        f"/api/v1/agents/{into_team.json()['id']}/template/", **owner_headers("viewer")
    )
    assert (status.status_code, status.json()["version"]) == (200, 1)


def test_a_clone_in_a_team_sees_and_applies_its_templates_update(
    world: None, owner_headers: Headers
) -> None:
    template = team_template(visibility="unlisted")
    cloned = clone(owner_headers("editor"), "team_kit", "team_copy", team=TEAM)
    agent_id = cloned.json()["id"]
    assert template.source_agent_id is not None
    source = A1Agent.objects.get(pk=template.source_agent_id)
    agent_update(agent=source, description="Better.")
    services.template_publish_version(template=template, changelog="better")
    url = f"/api/v1/agents/{agent_id}/template/"

    preview = APIClient().get(url, **owner_headers("viewer")).json()
    refused = APIClient().post(url + "apply/", {}, format="json", **owner_headers("viewer"))
    applied = APIClient().post(url + "apply/", {}, format="json", **owner_headers("editor"))

    assert preview["update_available"] is True
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert (applied.status_code, applied.json()["version"]) == (200, 2), applied.content
    assert A1Agent.objects.get(pk=agent_id).description == "Better."
    entry = AuditEntry.objects.get(action="agent_template.update_applied")
    assert (entry.actor_id, entry.owner_id) == ("editor", TEAM)


def test_deleting_the_team_deletes_its_templates_and_keeps_other_accounts_clones(
    world: None, owner_headers: Headers
) -> None:
    from accounts.services import stack_team_delete

    template = team_template(visibility="unlisted")
    kept = clone(owner_headers("outsider"), "team_kit", "outsiders_copy")
    assert kept.status_code == 201

    stack_team_delete(team_id=TEAM)

    assert not AgentTemplate.objects.filter(pk=template.pk).exists()
    assert A1Agent.objects.filter(pk=kept.json()["id"]).exists()
    assert not AgentTemplateLink.objects.filter(agent_id=kept.json()["id"]).exists()
    entry = AuditEntry.objects.get(action="agent_template.deleted")
    assert entry.owner_id == TEAM


def test_the_database_refuses_a_teams_template_not_owned_by_the_team(world: None) -> None:
    template = authors_template()

    with pytest.raises(IntegrityError), transaction.atomic():
        AgentTemplate.objects.filter(pk=template.pk).update(team_id=TEAM)


def test_a_template_of_a_restricted_agent_is_the_teams_and_every_member_reads_it(
    world: None, owner_headers: Headers
) -> None:
    """Publishing is sharing: the member who may change the restricted agent made a copy for
    the team; the agent itself stays hidden from those it is not shared with."""
    agent = team_agent(restricted=True)
    body = {"agent": str(agent.pk), "slug": "shared_kit", "name": "Shared"}
    made = APIClient().post("/api/v1/templates/", body, format="json", **owner_headers("editor"))
    assert made.status_code == 201, made.content
    excluded = owner_headers("excluded")

    read = APIClient().get("/api/v1/templates/shared_kit/", **excluded)
    hidden = APIClient().get(f"/api/v1/agents/{agent.pk}/", **excluded)

    assert (read.status_code, read.json()["content"]["settings"]) == (200, {"tone": "team"})
    assert hidden.status_code == 404
