"""Stack Auth's team, membership and permission webhooks keep the team mirror (docs/teams.md).

The bodies are Stack Auth's own shapes, signed with svix as Stack Auth's Svix sends them.
"""

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from agents.models import A1Agent
from billing.models import SubscriptionStatus, UserSubscription
from teams.models import Team, TeamMemberPermission, TeamMembership
from teams.roles import Role
from teams.selectors import member_role, team_ids_of_member
from tests.concurrency import race
from tests.factories import AgentFactory, SubscriptionFactory
from tests.test_stack_auth_webhook import (
    SECRET,
    URL,
    post_event,
    signed_headers,
    svix_message_id,
    user_event,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_auth")]

TEAM = "2209422a-eef7-4668-967d-be79409972c5"


@pytest.fixture(autouse=True)
def _webhook_secret(settings: SettingsWrapper) -> None:
    settings.STACK_AUTH_WEBHOOK_SECRET = SECRET


def team_event(kind: str, team_id: str = TEAM, **data: Any) -> dict[str, Any]:
    """A team.* event as Stack Auth sends it (the server read shape of a team)."""
    if kind == "deleted":
        return {"type": "team.deleted", "data": {"id": team_id}}
    body: dict[str, Any] = {
        "id": team_id, "display_name": "My Team", "profile_image_url": None,
        "client_metadata": {}, "client_read_only_metadata": {}, "server_metadata": {},
        "created_at_millis": 1_765_000_000_000,
    }  # fmt: skip
    return {"type": f"team.{kind}", "data": {**body, **data}}


def membership_event(kind: str, user_id: str, team_id: str = TEAM) -> dict[str, Any]:
    return {"type": f"team_membership.{kind}", "data": {"team_id": team_id, "user_id": user_id}}


def permission_event(
    kind: str, user_id: str, permission: str, team_id: str = TEAM
) -> dict[str, Any]:
    return {
        "type": f"team_permission.{kind}",
        "data": {"id": permission, "team_id": team_id, "user_id": user_id},
    }


def ids(minutes_apart: int, count: int) -> list[str]:
    """Message ids created one after another, `minutes_apart` each, the last a minute ago."""
    now = dt.datetime.now(dt.UTC)
    return [
        svix_message_id(now - dt.timedelta(minutes=1 + minutes_apart * (count - n)))
        for n in range(count)
    ]


def role(user_id: str, team_id: str = TEAM) -> Role | None:
    return member_role(team_id=team_id, user_id=user_id)


# --- teams ---------------------------------------------------------------------------------


def test_team_created_adds_the_team_to_the_mirror(client: Client) -> None:
    response = post_event(client, team_event("created", profile_image_url="https://i.io/t.png"))

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    team = Team.objects.get(pk=TEAM)
    assert (team.display_name, team.profile_image_url, team.deleted_at) == (
        "My Team", "https://i.io/t.png", None,
    )  # fmt: skip


def test_an_older_team_updated_arriving_late_does_not_overwrite_the_name(client: Client) -> None:
    older, newer = ids(1, 2)
    post_event(client, team_event("updated", display_name="New"), msg_id=newer)

    response = post_event(client, team_event("updated", display_name="Old"), msg_id=older)

    assert response.status_code == 200
    assert Team.objects.get(pk=TEAM).display_name == "New"


def test_a_membership_arriving_before_its_team_makes_a_bare_team_filled_in_later(
    client: Client,
) -> None:
    post_event(client, membership_event("created", "user_1"))
    assert Team.objects.get(pk=TEAM).display_name is None

    post_event(client, team_event("created"))

    assert Team.objects.get(pk=TEAM).display_name == "My Team"
    assert role("user_1") == Role.EDITOR


# --- memberships ---------------------------------------------------------------------------


def test_a_member_has_the_default_role_and_a_removed_one_none(client: Client) -> None:
    post_event(client, team_event("created"))
    post_event(client, membership_event("created", "user_1"))
    post_event(client, membership_event("created", "user_2"))
    assert (role("user_1"), role("user_2")) == (Role.EDITOR, Role.EDITOR)

    response = post_event(client, membership_event("deleted", "user_1"))

    assert response.status_code == 200
    assert (role("user_1"), role("user_2")) == (None, Role.EDITOR)
    assert list(team_ids_of_member("user_1")) == []
    assert [row["team_id"] for row in team_ids_of_member("user_2")] == [TEAM]


def test_a_late_membership_created_does_not_bring_back_a_removed_member(client: Client) -> None:
    added, removed = ids(1, 2)
    post_event(client, membership_event("deleted", "user_1"), msg_id=removed)

    response = post_event(client, membership_event("created", "user_1"), msg_id=added)

    assert response.status_code == 200
    assert role("user_1") is None
    assert TeamMembership.objects.get(user_id="user_1").is_member is False


def test_a_member_removed_and_added_again_is_a_member(client: Client) -> None:
    added, removed, again = ids(1, 3)
    for kind, msg_id in (("created", added), ("deleted", removed), ("created", again)):
        post_event(client, membership_event(kind, "user_1"), msg_id=msg_id)

    assert role("user_1") == Role.EDITOR


# --- permissions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permissions", "expected"),
    [
        (["a1zap:viewer"], Role.VIEWER),
        (["a1zap:editor"], Role.EDITOR),
        (["a1zap:manager"], Role.MANAGER),
        (["a1zap:admin"], Role.ADMIN),
        (["a1zap:viewer", "a1zap:manager"], Role.MANAGER),
        (["team_member"], Role.EDITOR),
        (["team_admin"], Role.ADMIN),
        (["$update_team"], Role.ADMIN),
        (["$read_members", "$invite_members"], Role.EDITOR),
        # Our id decides over Stack Auth's built-in ones.
        (["team_admin", "a1zap:viewer"], Role.VIEWER),
    ],
)
def test_a_members_role_comes_from_their_team_permissions(
    client: Client, permissions: list[str], expected: Role
) -> None:
    post_event(client, membership_event("created", "user_1"))
    for permission in permissions:
        post_event(client, permission_event("created", "user_1", permission))

    assert role("user_1") == expected


def test_a_revoked_permission_no_longer_counts(client: Client) -> None:
    post_event(client, membership_event("created", "user_1"))
    post_event(client, permission_event("created", "user_1", "a1zap:viewer"))
    post_event(client, permission_event("created", "user_1", "team_admin"))
    assert role("user_1") == Role.VIEWER

    post_event(client, permission_event("deleted", "user_1", "a1zap:viewer"))

    assert role("user_1") == Role.ADMIN


def test_permissions_are_per_team(client: Client) -> None:
    other = "7f1b6c1e-0000-4000-8000-000000000002"
    for team_id in (TEAM, other):
        post_event(client, membership_event("created", "user_1", team_id))
    post_event(client, permission_event("created", "user_1", "a1zap:viewer", other))

    assert (role("user_1", TEAM), role("user_1", other)) == (Role.EDITOR, Role.VIEWER)


def test_an_older_permission_message_does_not_undo_a_newer_one(client: Client) -> None:
    granted, revoked = ids(1, 2)
    post_event(client, membership_event("created", "user_1"))
    post_event(client, permission_event("deleted", "user_1", "a1zap:viewer"), msg_id=revoked)

    post_event(client, permission_event("created", "user_1", "a1zap:viewer"), msg_id=granted)

    assert role("user_1") == Role.EDITOR


def test_a_permission_granted_before_a_removal_and_delivered_after_it_stays_revoked(
    client: Client,
) -> None:
    added, admin_granted, viewer_granted, removed, added_again = ids(1, 5)
    post_event(client, membership_event("created", "user_1"), msg_id=added)
    post_event(client, permission_event("created", "user_1", "a1zap:viewer"), msg_id=viewer_granted)
    post_event(client, membership_event("deleted", "user_1"), msg_id=removed)
    # Delivered late: granted before the removal.
    post_event(client, permission_event("created", "user_1", "a1zap:admin"), msg_id=admin_granted)

    post_event(client, membership_event("created", "user_1"), msg_id=added_again)

    # Back as a plain member: neither permission from before the removal counts.
    assert role("user_1") == Role.EDITOR
    assert not TeamMemberPermission.objects.filter(granted=True).exists()


def test_a_permission_of_an_earlier_membership_delivered_after_the_member_is_back_is_refused(
    client: Client,
) -> None:
    added, admin_granted, removed, added_again, viewer_granted = ids(1, 5)
    post_event(client, membership_event("created", "user_1"), msg_id=added)
    post_event(client, membership_event("deleted", "user_1"), msg_id=removed)
    post_event(client, membership_event("created", "user_1"), msg_id=added_again)
    # Delivered after the member is back: granted during the first membership.
    late = post_event(
        client, permission_event("created", "user_1", "a1zap:admin"), msg_id=admin_granted
    )
    # Granted in the new membership: it counts.
    post_event(client, permission_event("created", "user_1", "a1zap:viewer"), msg_id=viewer_granted)

    assert late.json() == {"status": "ok"}
    assert role("user_1") == Role.VIEWER
    membership = TeamMembership.objects.get(user_id="user_1")
    assert (membership.removed_event_id, membership.is_member) == (removed, True)


def test_a_removal_delivered_after_the_member_is_back_still_ends_the_earlier_permissions(
    client: Client,
) -> None:
    added, admin_granted, removed, added_again = ids(1, 4)
    post_event(client, membership_event("created", "user_1"), msg_id=added)
    post_event(client, permission_event("created", "user_1", "a1zap:admin"), msg_id=admin_granted)
    post_event(client, membership_event("created", "user_1"), msg_id=added_again)

    post_event(client, membership_event("deleted", "user_1"), msg_id=removed)  # late

    # Still a member (the newer message says so), without the earlier membership's admin.
    assert role("user_1") == Role.EDITOR
    assert TeamMembership.objects.get(user_id="user_1").removed_event_id == removed


# --- team.deleted and user.deleted ----------------------------------------------------------


def test_team_deleted_deletes_its_agents_ends_its_subscription_and_memberships(
    client: Client,
) -> None:
    post_event(client, team_event("created"))
    post_event(client, membership_event("created", "user_1"))
    doomed = AgentFactory.create(owner_id=TEAM, team_id=TEAM)
    own = AgentFactory.create(owner_id="user_1")
    SubscriptionFactory.create(user_id=TEAM, plan_id="pro")

    response = post_event(client, team_event("deleted"))

    assert response.status_code == 200
    assert not A1Agent.objects.filter(pk=doomed.pk).exists()
    assert A1Agent.objects.filter(pk=own.pk).exists()
    subscription = UserSubscription.objects.get(user_id=TEAM)
    assert (subscription.status, subscription.plan_id) == (SubscriptionStatus.CANCELLED, "free")
    assert Team.objects.get(pk=TEAM).deleted_at is not None
    assert role("user_1") is None


def test_after_team_deleted_no_late_message_brings_anything_back(client: Client) -> None:
    early = ids(1, 3)
    post_event(client, team_event("deleted"))

    post_event(client, team_event("updated", display_name="Back"), msg_id=early[0])
    post_event(client, membership_event("created", "user_1"), msg_id=early[1])
    post_event(client, permission_event("created", "user_1", "a1zap:admin"), msg_id=early[2])

    team = Team.objects.get(pk=TEAM)
    assert (team.display_name, team.deleted_at is not None) == (None, True)
    assert role("user_1") is None
    assert not TeamMembership.objects.exists()
    assert not TeamMemberPermission.objects.exists()


def test_a_replayed_team_deleted_answers_duplicate(client: Client) -> None:
    payload = json.dumps(team_event("deleted"))
    headers = signed_headers(payload)
    first = client.post(URL, data=payload, content_type="application/json", **headers)

    second = client.post(URL, data=payload, content_type="application/json", **headers)

    assert (first.json(), second.json()) == ({"status": "ok"}, {"status": "duplicate"})


def test_user_deleted_ends_their_memberships_and_keeps_the_teams_agents(client: Client) -> None:
    post_event(client, membership_event("created", "user_1"))
    team_agent = AgentFactory.create(owner_id=TEAM, team_id=TEAM)

    post_event(client, user_event("deleted", "user_1", teams=[{"id": TEAM}]))

    assert role("user_1") is None
    assert A1Agent.objects.filter(pk=team_agent.pk).exists()


def test_user_deleted_records_the_removal_on_each_membership(client: Client) -> None:
    added, granted, deleted = ids(1, 3)
    post_event(client, membership_event("created", "user_1"), msg_id=added)
    post_event(client, permission_event("created", "user_1", "a1zap:admin"), msg_id=granted)

    post_event(client, user_event("deleted", "user_1"), msg_id=deleted)

    membership = TeamMembership.objects.get(user_id="user_1")
    assert (membership.is_member, membership.last_event_id) == (False, deleted)
    assert membership.removed_event_id == deleted
    assert not TeamMemberPermission.objects.filter(granted=True).exists()


def test_no_membership_or_permission_message_brings_a_deleted_user_back(client: Client) -> None:
    """The user's tombstone in `stack_users` refuses them, whether the message was created
    before the deletion and delivered late, or after it (a team they never were in)."""
    before = ids(1, 2)
    post_event(client, user_event("deleted", "user_1"))

    post_event(client, membership_event("created", "user_1"), msg_id=before[0])
    post_event(client, permission_event("created", "user_1", "a1zap:admin"), msg_id=before[1])
    post_event(client, membership_event("created", "user_1", team_id="another-team"))
    late = post_event(client, permission_event("created", "user_1", "a1zap:viewer"))

    assert late.json() == {"status": "ok"}
    assert role("user_1") is None
    assert role("user_1", "another-team") is None
    assert not TeamMembership.objects.filter(user_id="user_1").exists()
    assert not TeamMemberPermission.objects.filter(user_id="user_1").exists()


# --- refused bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"type": "team.created", "data": {"display_name": "No id"}},
        {"type": "team.deleted", "data": {"id": ""}},
        {"type": "team.updated", "data": {"id": TEAM, "display_name": 5}},
        {"type": "team_membership.created", "data": {"team_id": TEAM}},
        {"type": "team_membership.deleted", "data": {"user_id": "u"}},
        {"type": "team_permission.created", "data": {"team_id": TEAM, "user_id": "u"}},
        {
            "type": "team_permission.deleted",
            "data": {"id": "x\x00", "team_id": TEAM, "user_id": "u"},
        },
        {"type": "team_membership.created", "data": None},
    ],
)
def test_a_signed_team_event_of_the_wrong_shape_is_refused(
    client: Client, event: dict[str, Any]
) -> None:
    response = post_event(client, event)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert not Team.objects.exists()


# --- races ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_membership_messages_leave_the_newest() -> None:
    for round_number in range(3):
        user_id = f"user_{round_number}"
        messages = ids(1, 6)

        def deliver(msg_id: str, kind: str, user_id: str = user_id) -> Callable[[], int]:
            payload = json.dumps(membership_event(kind, user_id))
            headers = signed_headers(payload, msg_id=msg_id)
            return lambda: (
                (
                    Client().post(URL, data=payload, content_type="application/json", **headers)
                ).status_code
            )

        # The newest one removes the member.
        kinds = ["created", "deleted"] * 3
        results = race(
            [deliver(m, k) for m, k in reversed(list(zip(messages, kinds, strict=True)))]
        )

        assert results == [200] * 6
        assert role(user_id) is None


# --- end to end ----------------------------------------------------------------------------


def test_a_member_removed_by_a_signed_webhook_loses_the_teams_agent_on_the_next_request(
    client: Client, owner_headers: Any
) -> None:
    from rest_framework.test import APIClient

    from agents.services import agent_create

    post_event(client, team_event("created"))
    post_event(client, membership_event("created", "user_1"))
    post_event(client, permission_event("created", "user_1", "a1zap:manager"))
    agent, _ = agent_create(
        owner_id=TEAM, team_id=TEAM, name="T", handle="t_e2e", agent_type="work"
    )
    detail = f"/api/v1/agents/{agent.pk}/"
    assert APIClient().get(detail, **owner_headers("user_1")).status_code == 200

    post_event(client, membership_event("deleted", "user_1"))

    assert APIClient().get(detail, **owner_headers("user_1")).status_code == 404
    post_event(client, team_event("deleted"))
    assert not A1Agent.objects.filter(pk=agent.pk).exists()
