"""Moving agents between a user's account and a team's, both ways (docs/teams.md)."""

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from agents.errors import AgentLimitReached
from agents.models import A1Agent, AgentMember
from agents.services import agent_access_set, agent_create, agent_move
from audit.models import AuditEntry
from billing.models import UserSubscription
from tests.concurrency import race
from tests.factories import ConversationFactory, IntegrationFactory
from tests.teams_world import OTHER_TEAM, TEAM, team_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> None:
    team_world()


def move(agent: A1Agent, headers: dict[str, str], team: str | None) -> Any:
    return APIClient().post(
        f"/api/v1/agents/{agent.pk}/move/", {"team": team}, format="json", **headers
    )


def own_agent(owner: str, handle: str, agent_type: str = "work") -> A1Agent:
    return agent_create(owner_id=owner, name="A", handle=handle, agent_type=agent_type)[0]


def team_agent(handle: str, agent_type: str = "work", team: str = TEAM) -> A1Agent:
    return agent_create(
        owner_id=team, team_id=team, name="T", handle=handle, agent_type=agent_type
    )[0]


def test_an_owner_moves_their_agent_into_their_team_with_everything_under_it(
    world: None, owner_headers: Any
) -> None:
    agent = own_agent("editor", "mine_to_team")
    conversation = ConversationFactory.create(agent=agent)
    IntegrationFactory.create(agent=agent, provider="telegram")

    response = move(agent, owner_headers("editor"), TEAM)

    assert response.status_code == 200, response.content
    assert (response.json()["team"], response.json()["owner_id"]) == (TEAM, TEAM)
    assert conversation.__class__.objects.get(pk=conversation.pk).agent_id == agent.pk
    assert (
        APIClient().get(f"/api/v1/agents/{agent.pk}/", **owner_headers("viewer")).status_code == 200
    )
    entry = AuditEntry.objects.get(action="agent.moved")
    assert (entry.actor_id, entry.owner_id) == ("editor", TEAM)
    assert entry.changes["owner_id"] == {"before": "editor", "after": TEAM}
    assert entry.changes["team_id"] == {"before": None, "after": TEAM}


def test_a_manager_moves_a_teams_agent_to_their_own_account(
    world: None, owner_headers: Any
) -> None:
    agent = team_agent("team_to_mine")
    agent_access_set(agent=agent, access="restricted", members={"manager": "manager"})

    response = move(agent, owner_headers("manager"), None)

    assert response.status_code == 200, response.content
    moved = A1Agent.objects.get(pk=agent.pk)
    assert (moved.owner_id, moved.team_id, moved.access) == ("manager", None, "team")
    assert not AgentMember.objects.exists()
    assert (
        APIClient().get(f"/api/v1/agents/{agent.pk}/", **owner_headers("admin")).status_code == 404
    )


def test_a_teams_agent_moves_to_another_team_of_the_member(world: None) -> None:
    from tests.teams_world import member_add

    member_add(OTHER_TEAM, "manager")
    agent = team_agent("hop")

    moved = agent_move(agent=agent, to_team_id=OTHER_TEAM, member_id="manager")

    assert (moved.owner_id, moved.team_id) == (OTHER_TEAM, OTHER_TEAM)


@pytest.mark.parametrize(
    ("caller", "source", "target", "status", "code"),
    [
        ("editor", "team", None, 403, "permission_denied"),  # taking it out needs manager
        ("viewer", "own", TEAM, 403, "permission_denied"),  # bringing it in needs editor
        ("outsider", "own", TEAM, 404, "not_found"),
        ("removed", "own", TEAM, 404, "not_found"),
        ("editor", "own", "no-such-team", 404, "not_found"),
        ("outsider", "team", None, 404, "not_found"),
    ],
)
def test_a_move_the_caller_may_not_make_is_refused_and_changes_nothing(
    world: None, owner_headers: Any, caller: str, source: str, target: str | None,
    status: int, code: str,
) -> None:  # fmt: skip
    agent = own_agent(caller, "moving") if source == "own" else team_agent("moving")
    before = (agent.owner_id, agent.team_id)

    response = move(agent, owner_headers(caller), target)

    assert (response.status_code, response.json()["code"]) == (status, code)
    agent.refresh_from_db()
    assert (agent.owner_id, agent.team_id) == before
    assert not AuditEntry.objects.filter(action="agent.moved").exists()


def test_moving_into_a_team_at_its_limit_is_refused_but_an_archived_agent_fits(
    world: None, owner_headers: Any
) -> None:
    team_agent("team_work")  # the free plan's one work agent
    agent = own_agent("editor", "one_more")

    refused = move(agent, owner_headers("editor"), TEAM)

    assert (refused.status_code, refused.json()["code"]) == (403, "agent_limit_reached")
    A1Agent.objects.filter(pk=agent.pk).update(status="archived")
    assert move(agent, owner_headers("editor"), TEAM).status_code == 200
    assert UserSubscription.objects.filter(user_id=TEAM).count() == 1


def test_moving_to_where_it_is_changes_nothing(world: None, owner_headers: Any) -> None:
    agent = own_agent("editor", "stay_put")

    response = move(agent, owner_headers("editor"), None)

    assert response.status_code == 200
    assert not AuditEntry.objects.filter(action="agent.moved").exists()


@pytest.mark.django_db(transaction=True)
def test_a_move_into_a_team_at_its_last_slot_races_a_members_create_and_one_wins() -> None:
    for round_number in range(3):
        A1Agent.objects.all().delete()
        if round_number == 0:
            team_world()
        incoming = own_agent("editor", f"incoming_{round_number}")

        def moving(incoming: A1Agent = incoming) -> str:
            try:
                agent_move(agent=incoming, to_team_id=TEAM, member_id="editor")
            except AgentLimitReached:
                return "refused"
            return "moved"

        def creating(round_number: int = round_number) -> str:
            try:
                agent_create(
                    owner_id=TEAM, team_id=TEAM, member_id="manager", name="C",
                    handle=f"created_{round_number}", agent_type="work",
                )  # fmt: skip
            except AgentLimitReached:
                return "refused"
            return "created"

        calls: list[Callable[[], str]] = [moving, creating]
        results = Counter(race(calls))

        assert results["refused"] == 1, results
        assert A1Agent.objects.filter(team_id=TEAM, agent_type="work").count() == 1


# --- a request that read the agent before a move -------------------------------------------
# The view authorised the caller on the copy it read; once the agent is locked, a different
# owner or team is a 409 (`agent_moved`), never a decision made in the old account.


def test_a_resume_that_read_the_agent_before_its_move_cannot_overfill_the_team(
    world: None,
) -> None:
    from agents.errors import AgentMoved
    from agents.models import AgentStatus
    from agents.services import agent_resume

    team_agent("team_work")  # the free plan's one work agent
    mine = own_agent("editor", "mine_one")
    A1Agent.objects.filter(pk=mine.pk).update(status=AgentStatus.ARCHIVED)
    stale = A1Agent.objects.get(pk=mine.pk)  # what a concurrent resume request read
    agent_move(agent=A1Agent.objects.get(pk=mine.pk), to_team_id=TEAM, member_id="editor")

    with pytest.raises(AgentMoved) as refused:
        agent_resume(agent=stale)

    assert (refused.value.status_code, refused.value.code) == (409, "agent_moved")
    active = A1Agent.objects.filter(owner_id=TEAM, agent_type="work").exclude(status="archived")
    assert active.count() == 1


def test_a_retype_that_read_the_agent_before_its_move_cannot_overfill_the_team(
    world: None,
) -> None:
    from agents.errors import AgentMoved
    from agents.services import agent_update

    team_agent("team_work")
    mine = own_agent("editor", "mine_p", agent_type="personal")
    stale = A1Agent.objects.get(pk=mine.pk)
    agent_move(agent=A1Agent.objects.get(pk=mine.pk), to_team_id=TEAM, member_id="editor")

    with pytest.raises(AgentMoved):
        agent_update(agent=stale, agent_type="work")

    assert A1Agent.objects.filter(owner_id=TEAM, agent_type="work").count() == 1


def test_an_access_change_that_read_the_agent_before_its_move_is_refused(world: None) -> None:
    from agents.errors import AgentMoved
    from tests.teams_world import member_add

    member_add(OTHER_TEAM, "manager")  # an editor there: may move an agent in
    moved_out = team_agent("moving_out")
    moved_over = team_agent("moving_over", agent_type="personal")
    stale_out = A1Agent.objects.get(pk=moved_out.pk)  # read by TEAM's admin's requests
    stale_over = A1Agent.objects.get(pk=moved_over.pk)
    agent_move(agent=moved_out, to_team_id=None, member_id="manager")
    agent_move(agent=moved_over, to_team_id=OTHER_TEAM, member_id="manager")

    with pytest.raises(AgentMoved):
        agent_access_set(agent=stale_out, access="team", members={})
    # In OTHER_TEAM, TEAM's admin is nobody: the access set there was decided in TEAM.
    with pytest.raises(AgentMoved):
        agent_access_set(agent=stale_over, access="restricted", members={"outsider": "viewer"})

    assert A1Agent.objects.get(pk=moved_over.pk).access == "team"
    assert not AgentMember.objects.filter(agent_id=moved_over.pk).exists()
