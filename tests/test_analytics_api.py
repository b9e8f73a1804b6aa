"""The analytics API: an agent's metrics per period, the owner's summary, CSV."""

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from agents.models import A1Agent
from analytics.selectors import bucket_seconds, percentile_seconds
from conversations.rollups import response_bucket
from tests.analytics_data import DAY, moment, new_agent, open_at, post_at
from tests.factories import UsageFactory, staff_user

pytestmark = pytest.mark.django_db

Headers = Callable[..., dict[str, str]]
NEXT = DAY + dt.timedelta(days=1)


def analytics(client: APIClient, agent: A1Agent, headers: dict[str, str], **query: Any) -> Any:
    return client.get(f"/api/v1/agents/{agent.pk}/analytics/", query, **headers)


def seconds(wait: float) -> float:
    return round(bucket_seconds(response_bucket(dt.timedelta(seconds=wait))), 3)


@pytest.fixture
def busy_agent() -> A1Agent:
    """Day one: three answers of 10 s (web). Day two: one answer of 1000 s (slack), and a
    conversation nobody answered."""
    agent = new_agent()
    for index in range(3):
        conversation = open_at(agent, moment(DAY, 8 + index), user=f"u{index % 2}")
        post_at(conversation, "user", moment(DAY, 9 + index))
        post_at(conversation, "agent", moment(DAY, 9 + index, 0, 10))
    slow = open_at(agent, moment(NEXT, 8), channel="slack", user="u0")
    post_at(slow, "user", moment(NEXT, 9))
    post_at(slow, "system", moment(NEXT, 9, 1))
    post_at(slow, "agent", moment(NEXT, 9, 16, 40))
    silent = open_at(agent, moment(NEXT, 10), user="u9")
    post_at(silent, "user", moment(NEXT, 10, 1))
    UsageFactory.create(agent=agent, date=DAY, message_count=6, api_calls=2, estimated_cost=1)
    return agent


def test_the_owner_reads_per_day_metrics_and_totals(
    api_client: APIClient, owner_headers: Headers, busy_agent: A1Agent
) -> None:
    response = analytics(
        api_client, busy_agent, owner_headers(), start=DAY.isoformat(), end=NEXT.isoformat()
    )

    assert response.status_code == 200, response.content
    body = response.json()
    first, second = body["periods"]
    assert (first["period_start"], second["period_end"]) == (DAY.isoformat(), NEXT.isoformat())
    assert first["messages"] == {"user": 3, "agent": 3, "system": 0, "tool": 0, "total": 6}
    assert first["response_time"] == {
        "count": 3, "p50_seconds": seconds(10), "p95_seconds": seconds(10),
    }  # fmt: skip
    assert (first["conversations_started"], first["conversations_without_reply"]) == (3, 0)
    assert (first["active_conversations"], first["end_users"]) == (3, 2)
    assert first["usage"]["message_count"] == 6
    assert second["usage"]["message_count"] == 0
    assert second["conversations_without_reply"] == 1
    assert second["first_response_time"]["p50_seconds"] == seconds(1000)
    totals = body["totals"]
    assert totals["messages"]["total"] == 10
    # Percentiles of the merged histogram, not an average of daily medians.
    assert totals["response_time"] == {
        "count": 4, "p50_seconds": seconds(10), "p95_seconds": seconds(1000),
    }  # fmt: skip
    # u0 on the web twice is one end user; u0 on slack is another.
    assert totals["end_users"] == 4
    assert (body["timezone"], body["granularity"], body["channel"]) == ("UTC", "day", None)


def test_an_end_user_on_several_days_is_one_end_user_of_the_range(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent = new_agent()
    for day in (DAY, NEXT):
        conversation = open_at(agent, moment(day, 8), user="same")
        post_at(conversation, "user", moment(day, 9))

    body = analytics(
        api_client, agent, owner_headers(), start=DAY.isoformat(), end=NEXT.isoformat()
    ).json()
    weeks = analytics(
        api_client, agent, owner_headers(), start=DAY.isoformat(), end=NEXT.isoformat(),
        granularity="week",
    ).json()  # fmt: skip

    assert [p["end_users"] for p in body["periods"]] == [1, 1]
    assert body["totals"]["end_users"] == 1
    assert [p["end_users"] for p in weeks["periods"]] == [1]


def test_a_channel_narrows_the_rows_and_leaves_usage_out(
    api_client: APIClient, owner_headers: Headers, busy_agent: A1Agent
) -> None:
    body = analytics(
        api_client, busy_agent, owner_headers(), start=DAY.isoformat(), end=NEXT.isoformat(),
        channel="slack",
    ).json()  # fmt: skip

    assert body["totals"]["messages"]["total"] == 3
    assert body["totals"]["response_time"]["count"] == 1
    assert body["totals"]["usage"] is None


@pytest.mark.parametrize(
    ("granularity", "periods"),
    [
        (
            "week",
            [
                ("2031-03-01", "2031-03-02"),
                ("2031-03-03", "2031-03-09"),
                ("2031-03-10", "2031-03-16"),
                ("2031-03-17", "2031-03-20"),
            ],
        ),
        ("month", [("2031-03-01", "2031-03-20")]),
    ],
)
def test_weeks_start_on_monday_and_months_on_the_first_cut_to_the_range(
    api_client: APIClient,
    owner_headers: Headers,
    busy_agent: A1Agent,
    granularity: str,
    periods: list[tuple[str, str]],
) -> None:
    body = analytics(
        api_client, busy_agent, owner_headers(), start="2031-03-01", end="2031-03-20",
        granularity=granularity,
    ).json()  # fmt: skip

    assert [(p["period_start"], p["period_end"]) for p in body["periods"]] == periods
    assert sum(p["messages"]["total"] for p in body["periods"]) == 10
    assert sum(p["end_users"] for p in body["periods"]) == 4


def test_csv_has_one_row_per_period(
    api_client: APIClient, owner_headers: Headers, busy_agent: A1Agent
) -> None:
    by_format = analytics(
        api_client, busy_agent, owner_headers(), start=DAY.isoformat(), end=NEXT.isoformat(),
        format="csv",
    )  # fmt: skip
    by_accept = api_client.get(
        f"/api/v1/agents/{busy_agent.pk}/analytics/",
        {"start": DAY.isoformat(), "end": NEXT.isoformat()},
        HTTP_ACCEPT="text/csv",
        **owner_headers(),
    )

    assert by_format.status_code == 200
    assert by_format["Content-Type"].startswith("text/csv")
    assert "attachment" in by_format["Content-Disposition"]
    assert by_accept.content == by_format.content
    rows = list(csv.DictReader(io.StringIO(by_format.content.decode())))
    assert [row["period_start"] for row in rows] == [DAY.isoformat(), NEXT.isoformat()]
    assert rows[0]["messages_total"] == "6"
    assert rows[1]["response_p50_seconds"] == str(seconds(1000))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2031-02-30"}, "start"),
        ({"end": "yesterday"}, "end"),
        ({"start": "2031-03-02", "end": "2031-03-01"}, "start"),
        ({"start": "2030-01-01", "end": "2031-03-01"}, "start"),
        ({"granularity": "hour"}, "granularity"),
        ({"channel": "fax"}, "channel"),
        ({"tz": "Europe/Paris"}, "tz"),
        ({"tz": "Not/AZone"}, "tz"),
        ({"format": "xml"}, "format"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_queries_are_400_naming_the_field(
    api_client: APIClient, owner_headers: Headers, query: dict[str, str], field: str
) -> None:
    agent = new_agent()

    response = analytics(api_client, agent, owner_headers(), **query)

    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["errors"]


def test_utc_aliases_are_accepted(api_client: APIClient, owner_headers: Headers) -> None:
    agent = new_agent()

    assert analytics(api_client, agent, owner_headers(), tz="Etc/UTC").status_code == 200


def test_another_owners_agent_is_404_and_staff_may_read(
    api_client: APIClient, owner_headers: Headers, busy_agent: A1Agent
) -> None:
    assert analytics(api_client, busy_agent, owner_headers("user_2")).status_code == 404

    staff = APIClient()
    staff.force_login(staff_user("support"))
    response = analytics(staff, busy_agent, {}, start=DAY.isoformat(), end=NEXT.isoformat())
    assert response.status_code == 200
    assert response.json()["totals"]["messages"]["total"] == 10


def test_a_year_costs_the_same_queries_as_a_day(
    api_client: APIClient, owner_headers: Headers, busy_agent: A1Agent
) -> None:
    def queries_for(**query: Any) -> int:
        with CaptureQueriesContext(connection) as context:
            assert analytics(api_client, busy_agent, owner_headers(), **query).status_code == 200
        return len(context.captured_queries)

    queries_for()  # the owner's token is verified and cached once
    assert queries_for(start=DAY.isoformat(), end=DAY.isoformat()) == queries_for(
        start=(DAY - dt.timedelta(days=399)).isoformat(), end=DAY.isoformat()
    )


def test_the_summary_totals_each_agent_and_all_of_them(
    api_client: APIClient, owner_headers: Headers, busy_agent: A1Agent
) -> None:
    other = new_agent("second_bot")
    conversation = open_at(other, moment(DAY, 12), user="u0")
    post_at(conversation, "user", moment(DAY, 12, 1))
    new_agent("not_mine", owner="user_2")

    response = api_client.get(
        "/api/v1/analytics/summary/",
        {"start": DAY.isoformat(), "end": NEXT.isoformat()},
        **owner_headers(),
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert [a["handle"] for a in body["agents"]] == ["second_bot", "stats_bot"]
    assert [a["messages"]["total"] for a in body["agents"]] == [1, 10]
    assert body["totals"]["messages"]["total"] == 11
    # u0 of two agents is two end users.
    assert body["totals"]["end_users"] == 5
    assert body["totals"]["response_time"]["count"] == 4


def test_the_summary_runs_a_constant_number_of_queries(
    api_client: APIClient, owner_headers: Headers
) -> None:
    def queries_with(agents: int) -> int:
        for index in range(agents):
            open_at(new_agent(f"bot_{agents}_{index}"), moment(DAY, 9))
        with CaptureQueriesContext(connection) as context:
            response = api_client.get("/api/v1/analytics/summary/", **owner_headers())
        assert response.status_code == 200
        return len(context.captured_queries)

    queries_with(0)  # the owner's token is verified and cached once
    assert queries_with(1) == queries_with(6)


def test_the_summary_as_csv_has_one_row_per_agent(
    api_client: APIClient, owner_headers: Headers, busy_agent: A1Agent
) -> None:
    response = api_client.get("/api/v1/analytics/summary/", {"format": "csv"}, **owner_headers())

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["handle"] for row in rows] == ["stats_bot"]


def test_percentiles_use_nearest_rank() -> None:
    buckets = [0] * 96
    buckets[3], buckets[40] = 19, 1

    assert percentile_seconds(buckets, 0.95) == round(bucket_seconds(3), 3)
    assert percentile_seconds(buckets, 0.951) == round(bucket_seconds(40), 3)
    assert percentile_seconds([0] * 96, 0.5) is None


def test_options_asking_for_csv_answers_json(api_client: APIClient, owner_headers: Headers) -> None:
    response = api_client.options(
        "/api/v1/analytics/summary/", HTTP_ACCEPT="text/csv", **owner_headers()
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["name"]


def test_the_summary_covers_the_callers_teams_and_filters_by_team(
    api_client: APIClient, owner_headers: Headers
) -> None:
    from agents.services import agent_create
    from tests.teams_world import member_add, team_make

    team_make("team-stats")
    member_add("team-stats", "user_1", ["a1zap:viewer"])
    mine = new_agent("mine_bot")
    theirs, _ = agent_create(owner_id="team-stats", team_id="team-stats", name="Team",
                             handle="team_bot", agent_type="work")  # fmt: skip
    for agent in (mine, theirs):
        post_at(open_at(agent, moment(DAY, 12)), "user", moment(DAY, 12, 1))
    new_agent("not_mine", owner="user_2")
    query = {"start": DAY.isoformat(), "end": NEXT.isoformat()}

    def handles(**extra: str) -> Any:
        response = api_client.get("/api/v1/analytics/summary/", {**query, **extra},
                                  **owner_headers())  # fmt: skip
        assert response.status_code == 200, response.content
        return [agent["handle"] for agent in response.json()["agents"]]

    assert handles() == ["mine_bot", "team_bot"]
    assert handles(team="team-stats") == ["team_bot"]
    assert handles(team="none") == ["mine_bot"]
    assert handles(team="team-unknown") == []
    other = api_client.get("/api/v1/analytics/summary/", {**query, "team": "team-stats"},
                           **owner_headers("user_2"))  # fmt: skip
    assert other.json()["agents"] == []


def test_a_range_is_at_most_400_days(api_client: APIClient, owner_headers: Headers) -> None:
    agent = new_agent()
    end = dt.date(2026, 12, 1)

    def status(days: int) -> int:
        start = end - dt.timedelta(days=days - 1)
        return int(
            analytics(
                api_client, agent, owner_headers(), start=start.isoformat(), end=end.isoformat()
            ).status_code
        )

    assert (status(400), status(401)) == (200, 400)


def test_a_summary_without_agents_as_csv_is_a_csv_file_with_its_header(
    api_client: APIClient, owner_headers: Headers
) -> None:
    """Found by the fuzz test: an owner with no agents got a 200 with an empty body and no
    Content-Type (DRF drops it for an empty body)."""
    response = api_client.get(
        "/api/v1/analytics/summary/", {"format": "csv"}, **owner_headers("nobody")
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    header = response.content.decode().splitlines()
    assert header[0].startswith("agent,handle,name,conversations_started,")
    assert len(header) == 1
