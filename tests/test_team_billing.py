"""A team's own subscription and Stripe billing, managed by its admins (docs/teams.md)."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from billing.models import BillingEvent, UserSubscription
from tests.stripe_fake import StripeFake
from tests.teams_world import TEAM, team_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> None:
    team_world()
    UserSubscription.objects.create(user_id=TEAM, plan_id="pro")
    BillingEvent.objects.create(user_id=TEAM, event_type="plan_changed", description="team's")
    BillingEvent.objects.create(user_id="admin", event_type="plan_changed", description="own")


def call(method: str, path: str, headers: dict[str, str]) -> Any:
    """Call a billing route about TEAM (a GET's data would replace its query string)."""
    client, url = APIClient(), f"{path}?team={TEAM}"
    if method == "get":
        return client.get(url, **headers)
    return client.post(url, {"plan": "pro", "interval": "month"}, format="json", **headers)


def test_a_member_reads_the_teams_plan_and_their_own_without_team(
    world: None, owner_headers: Any
) -> None:
    team = APIClient().get(f"/api/v1/subscription/?team={TEAM}", **owner_headers("viewer"))
    own = APIClient().get("/api/v1/subscription/", **owner_headers("viewer"))

    assert (team.status_code, team.json()["plan"]["id"]) == (200, "pro")
    assert (own.status_code, own.json()["plan"]["id"]) == (200, "free")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/subscription/"),
        ("get", "/api/v1/billing/events/"),
        ("post", "/api/v1/billing/portal/"),
        ("post", "/api/v1/billing/checkout/"),
    ],
)
@pytest.mark.parametrize("caller", ["removed", "outsider"])
def test_someone_not_in_the_team_gets_404_on_its_billing(
    world: None, owner_headers: Any, method: str, path: str, caller: str
) -> None:
    response = call(method, path, owner_headers(caller))

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/billing/events/"),
        ("post", "/api/v1/billing/portal/"),
        ("post", "/api/v1/billing/checkout/"),
    ],
)
def test_only_the_teams_admins_manage_its_billing(
    world: None, owner_headers: Any, method: str, path: str
) -> None:
    response = call(method, path, owner_headers("manager"))

    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_an_admin_reads_the_teams_billing_events_only(world: None, owner_headers: Any) -> None:
    response = APIClient().get(f"/api/v1/billing/events/?team={TEAM}", **owner_headers("admin"))

    assert [event["description"] for event in response.json()["results"]] == ["team's"]


def test_an_admin_starts_a_checkout_for_the_team_on_the_teams_own_stripe_customer(
    fake: StripeFake, owner_headers: Any
) -> None:
    team_world()

    response = APIClient().post(
        f"/api/v1/billing/checkout/?team={TEAM}", {"plan": "pro", "interval": "month"},
        format="json", **owner_headers("admin"),
    )  # fmt: skip

    assert response.status_code == 200, response.json()
    (create_customer,) = fake.requests_to("POST", "/v1/customers")
    assert create_customer.params["metadata"] == {"user_id": TEAM}
    session = fake.requests_to("POST", "/v1/checkout/sessions")[0]
    assert session.params["client_reference_id"] == TEAM
    assert (
        UserSubscription.objects.get(user_id=TEAM).stripe_customer_id
        == (fake.created("customer")[0]["id"])
    )
    assert not UserSubscription.objects.filter(user_id="admin").exists()


def test_a_member_reads_the_teams_usage_month_and_an_outsider_gets_404(
    world: None, owner_headers: Any
) -> None:
    from agents.services import agent_create
    from tests.factories import UsageFactory

    agent, _ = agent_create(
        owner_id=TEAM, team_id=TEAM, name="T", handle="t_use", agent_type="work"
    )
    UsageFactory.create(agent=agent, message_count=7)

    team = APIClient().get(f"/api/v1/usage/summary/?team={TEAM}", **owner_headers("viewer"))
    own = APIClient().get("/api/v1/usage/summary/", **owner_headers("viewer"))
    outsider = APIClient().get(f"/api/v1/usage/summary/?team={TEAM}", **owner_headers("outsider"))

    assert team.status_code == 200, team.content
    assert team.json()["totals"]["messages"] == 7
    assert own.json()["totals"]["messages"] == 0
    assert (outsider.status_code, outsider.json()["code"]) == (404, "not_found")


def test_the_team_parameter_is_checked_with_the_month(world: None, owner_headers: Any) -> None:
    response = APIClient().get(
        f"/api/v1/usage/summary/?team={TEAM}&month=2026-13", **owner_headers("viewer")
    )

    assert (response.status_code, response.json()["code"]) == (400, "validation_error")


def test_the_close_bills_an_agents_messages_to_the_account_that_owned_it_when_they_were_counted(
    world: None,
) -> None:
    """Given a user's agent with September messages before its move into TEAM and more after
    it (both accounts on pro: 50,000 included, 0.002 per message over), when September
    closes, then each account is billed for the messages counted while it owned the agent;
    `agents` counts the agents an account owns at the close that have usage that month."""
    import datetime as dt
    from decimal import Decimal

    from agents.services import agent_create, agent_move
    from billing.models import BillingEventType
    from invoicing.closing import close_period_record
    from tests.factories import messages_ingested

    UserSubscription.objects.create(user_id="editor", plan_id="pro")
    agent, _ = agent_create(owner_id="editor", name="M", handle="moves_midmonth", agent_type="work")
    messages_ingested(agent, day=dt.date(2026, 9, 10), messages=51_000)
    agent_move(agent=agent, to_team_id=TEAM, member_id="editor")
    messages_ingested(agent, day=dt.date(2026, 9, 20), messages=52_000)

    close_period_record(dt.date(2026, 9, 1))

    billed = {
        row.user_id: (
            (row.metadata or {})["messages"], (row.metadata or {})["overage_messages"],
            row.amount, (row.metadata or {})["agents"],
        )
        for row in BillingEvent.objects.filter(event_type=BillingEventType.USAGE_PERIOD_CLOSED)
    }  # fmt: skip
    assert billed == {
        "editor": (51_000, 1_000, Decimal("2.00"), 0),
        TEAM: (52_000, 2_000, Decimal("4.00"), 1),
    }
