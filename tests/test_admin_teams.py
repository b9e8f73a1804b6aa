"""Teams in the support console: found by id or name, with members, roles, agents and the
subscription; an agent's page says who can reach it and why (docs/teams.md)."""

from typing import Any

import pytest
from django.test import Client

from agents.services import agent_access_set, agent_create
from billing.models import UserSubscription
from tests.factories import staff_user
from tests.teams_world import TEAM, team_world

pytestmark = pytest.mark.django_db

TEAMS = "/admin/teams/team/"


def support() -> Client:
    client = Client()
    client.force_login(staff_user("support_member", role="support"))
    return client


@pytest.fixture
def acme() -> Any:
    team_world()
    UserSubscription.objects.create(user_id=TEAM, plan_id="pro")
    agent, _ = agent_create(
        owner_id=TEAM, team_id=TEAM, name="Acme Bot", handle="acme_bot", agent_type="work"
    )
    return agent


@pytest.mark.parametrize("term", [TEAM, "Acme", "ACME"])
def test_support_finds_a_team_by_exact_id_or_its_name_in_any_case(acme: Any, term: str) -> None:
    response = support().get(TEAMS, {"q": term})

    assert response.status_code == 200
    text = response.content.decode()
    assert TEAM in text
    assert "team-0000-other" not in text


def test_a_teams_page_shows_members_with_their_roles_agents_and_subscription(acme: Any) -> None:
    response = support().get(f"{TEAMS}{TEAM}/change/")

    assert response.status_code == 200
    text = response.content.decode()
    for shown in ("panel-members", "a1zap:viewer", "a1zap:manager", "team_admin", "@acme_bot",
                  "Pro", "excluded"):  # fmt: skip
        assert shown in text, shown
    assert "removed" not in text  # no longer a member
    assert "outsider" not in text


def test_an_agents_page_says_who_can_reach_it_and_why(acme: Any) -> None:
    agent_access_set(agent=acme, access="restricted", members={"manager": "viewer"})

    response = support().get(f"/admin/agents/a1agent/{acme.pk}/change/")

    text = response.content.decode()
    assert response.status_code == 200
    assert "panel-reach" in text
    assert "listed as viewer; team role manager" in text
    assert "not listed on this restricted agent" in text
    assert "a team admin reaches every agent of the team" in text


def test_an_agents_page_says_when_who_can_reach_it_is_cut_short(acme: Any) -> None:
    from agents.selectors import REACH_LIMIT
    from tests.teams_world import many_members

    many_members(TEAM, REACH_LIMIT)

    text = support().get(f"/admin/agents/a1agent/{acme.pk}/change/").content.decode()

    assert f"Only the first {REACH_LIMIT} members of the team are shown" in text


def test_an_agents_page_of_a_small_team_is_not_cut_short(acme: Any) -> None:
    text = support().get(f"/admin/agents/a1agent/{acme.pk}/change/").content.decode()

    assert "Only the first" not in text


def test_support_cannot_change_a_team(acme: Any) -> None:
    client = support()

    response = client.post(f"{TEAMS}{TEAM}/change/", {"display_name": "Hijacked"})

    assert response.status_code == 403


def test_the_teams_list_keeps_its_query_count(
    acme: Any, django_assert_max_num_queries: Any
) -> None:
    from tests.teams_world import member_add, team_make

    for n in range(30):
        team_make(f"team-many-{n}", f"Many {n}")
        member_add(f"team-many-{n}", f"member_{n}")
    client = support()
    client.get(TEAMS)

    with django_assert_max_num_queries(12):
        response = client.get(TEAMS)

    assert response.status_code == 200


def test_a_teams_page_lists_its_templates_and_the_template_admin_finds_them_by_team(
    acme: Any,
) -> None:
    from agent_templates.services import template_create

    template_create(owner_id=TEAM, agent_id=acme.pk, slug="acme_kit", name="Acme kit")
    template_create(owner_id="editor", agent_id=_own_agent("editor").pk, slug="mine", name="M")

    client = support()
    page = client.get(f"{TEAMS}{TEAM}/change/").content.decode()
    found = client.get("/admin/agent_templates/agenttemplate/", {"q": TEAM}).content.decode()

    templates_panel = page.split('id="panel-templates"', 1)[1]
    assert "acme_kit" in templates_panel
    assert ">mine<" not in templates_panel
    assert "acme_kit" in found
    assert ">mine<" not in found


def _own_agent(owner_id: str) -> Any:
    agent, _ = agent_create(
        owner_id=owner_id, name="Own", handle=f"{owner_id}_own", agent_type="work"
    )
    return agent
