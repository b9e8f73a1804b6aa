"""The templates API: the marketplace (anonymous, throttled), owners' templates, clones and
their updates, and what nobody but the owner may see."""

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from agent_templates import services
from agent_templates.models import AgentTemplate, AgentTemplateVersion
from agents.models import A1Agent
from agents.services import agent_create, agent_update
from tests.test_templates import secret_agent

pytestmark = pytest.mark.django_db

Headers = Callable[..., dict[str, str]]
MARKET = "/api/v1/templates/"


def listed(agent: A1Agent, slug: str, **fields: Any) -> AgentTemplate:
    """A public template, approved by staff."""
    fields.setdefault("name", slug.replace("_", " "))
    template = services.template_create(
        owner_id=agent.owner_id, agent_id=agent.pk, slug=slug, visibility="public", **fields
    )
    return services.template_moderate(template=template, decision="approve")


def slugs(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["slug"] for row in response.json()["results"]]


def test_publishing_through_the_api_leaks_no_secret_anywhere_it_is_shown(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent, leaks = secret_agent()
    body = {"agent": str(agent.pk), "slug": "support_kit", "name": "Support kit",
            "category": "support", "tags": ["helpdesk"], "visibility": "public",
            "changelog": "first"}  # fmt: skip

    created = api_client.post("/api/v1/templates/", body, format="json", **owner_headers("author"))

    assert created.status_code == 201, created.content
    assert created.json()["moderation_status"] == "pending"
    services.template_moderate(
        template=AgentTemplate.objects.get(slug="support_kit"), decision="approve"
    )
    shown = [
        created,
        APIClient().get(MARKET),
        APIClient().get(MARKET + "support_kit/"),
        api_client.get("/api/v1/templates/support_kit/", **owner_headers("author")),
        api_client.get("/api/v1/templates/?owner=me", **owner_headers("author")),
    ]
    text = " ".join(response.content.decode() for response in shown)
    assert [leak for leak in leaks if leak in text] == []
    detail = shown[2].json()
    assert detail["content"]["integrations"] == ["slack", "telegram"]
    assert detail["versions"][0]["changelog"] == "first"
    public = shown[1].content.decode() + shown[2].content.decode()
    assert "owner_id" not in detail
    assert detail["source_agent"] is None  # the owner's only, like the moderation state
    assert "moderation_reason" not in detail
    assert "id" not in detail
    assert "author" not in public  # the owner's id is not shown to the public


def test_the_marketplace_lists_only_approved_public_templates_and_filters_them() -> None:
    agent, _ = secret_agent()
    listed(agent, "helpdesk_pro", category="support", tags=["helpdesk"],
           description="Answers customer tickets")  # fmt: skip
    listed(agent, "sales_coach", category="sales", tags=["crm"], description="Coaches sellers")
    for visibility in ("private", "unlisted", "public"):  # pending, private, unlisted: unlisted
        services.template_create(
            owner_id="author", agent_id=agent.pk, slug=f"not_{visibility}", name="Hidden one",
            visibility=visibility, description="customer tickets",
        )  # fmt: skip
    rejected = services.template_create(
        owner_id="author", agent_id=agent.pk, slug="rejected_one", name="R", visibility="public"
    )
    services.template_moderate(template=rejected, decision="reject", reason="spam")

    client = APIClient()
    assert sorted(slugs(client.get(MARKET))) == ["helpdesk_pro", "sales_coach"]
    assert slugs(client.get(MARKET, {"category": "sales"})) == ["sales_coach"]
    assert slugs(client.get(MARKET, {"tag": "helpdesk"})) == ["helpdesk_pro"]
    assert slugs(client.get(MARKET, {"q": "customer tickets"})) == ["helpdesk_pro"]
    assert slugs(client.get(MARKET, {"q": "nothing matches"})) == []
    services.template_moderate(
        template=AgentTemplate.objects.get(slug="sales_coach"), decision="feature"
    )
    assert slugs(client.get(MARKET, {"featured": "true"})) == ["sales_coach"]


def test_the_marketplace_orders_by_popularity_or_recency_with_cursor_pages() -> None:
    agent, _ = secret_agent()
    first, second, third = (listed(agent, f"template_{n}") for n in range(3))
    AgentTemplate.objects.filter(pk=second.pk).update(clone_count=9)
    AgentTemplate.objects.filter(pk=first.pk).update(clone_count=5)
    client = APIClient()

    assert slugs(client.get(MARKET)) == ["template_1", "template_0", "template_2"]
    assert slugs(client.get(MARKET, {"order": "recent"})) == [
        "template_2", "template_1", "template_0",
    ]  # fmt: skip
    page = client.get(MARKET, {"page_size": 2}).json()
    assert [row["slug"] for row in page["results"]] == ["template_1", "template_0"]
    rest = client.get(page["next"]).json()
    assert [row["slug"] for row in rest["results"]] == ["template_2"]
    assert rest["next"] is None
    del third


def test_a_private_hidden_rejected_or_pending_template_is_404_to_others(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent, _ = secret_agent()
    unlisted = services.template_create(
        owner_id="author", agent_id=agent.pk, slug="by_link", name="L", visibility="unlisted"
    )
    private = services.template_create(
        owner_id="author", agent_id=agent.pk, slug="mine_only", name="P"
    )
    pending = services.template_create(
        owner_id="author", agent_id=agent.pk, slug="waiting", name="W", visibility="public"
    )
    hidden = listed(agent, "taken_down")
    services.template_moderate(template=hidden, decision="hide", reason="abuse")
    rejected = services.template_create(
        owner_id="author", agent_id=agent.pk, slug="refused", name="R", visibility="public"
    )
    services.template_moderate(template=rejected, decision="reject", reason="spam")
    other = owner_headers("someone")

    assert APIClient().get(MARKET + "BY_LINK/").status_code == 200
    for template in (private, pending, hidden, rejected):
        slug = template.slug
        assert APIClient().get(MARKET + f"{slug}/").status_code == 404
        for route in ("clone", "reports"):
            response = api_client.post(
                f"/api/v1/templates/{slug}/{route}/",
                {"handle": "my_clone"} if route == "clone" else {"reason": "x"},
                format="json",
                **other,
            )
            assert (response.status_code, response.json()["code"]) == (404, "not_found")
        assert api_client.get(f"/api/v1/templates/{slug}/", **other).status_code == 404
        assert (
            api_client.get(f"/api/v1/templates/{slug}/", **owner_headers("author")).status_code
            == 200
        )
    assert (
        api_client.patch(
            f"/api/v1/templates/{unlisted.slug}/", {"name": "x"}, format="json", **other
        ).status_code
        == 404
    )
    assert api_client.delete(f"/api/v1/templates/{unlisted.slug}/", **other).status_code == 404
    assert AgentTemplate.objects.filter(pk=unlisted.pk, name="L").exists()


def test_the_marketplace_list_runs_a_constant_number_of_queries(
    django_assert_max_num_queries: Any,
) -> None:
    agent, _ = secret_agent()
    for n in range(40):
        template = listed(agent, f"many_{n}", tags=["a", f"t{n}"])
        for _ in range(3):
            services.template_publish_version(template=template, changelog="again")

    with django_assert_max_num_queries(1):
        response = APIClient().get(MARKET, {"page_size": 100, "tag": "a"})

    assert len(response.json()["results"]) == 40
    assert {row["latest_version"] for row in response.json()["results"]} == {4}
    assert AgentTemplateVersion.objects.count() == 160


def test_the_detail_of_a_template_reads_a_constant_number_of_queries(
    django_assert_max_num_queries: Any,
) -> None:
    agent, _ = secret_agent()
    template = listed(agent, "versioned")
    for n in range(20):
        services.template_publish_version(template=template, changelog=f"change {n}")

    with django_assert_max_num_queries(3):
        body = APIClient().get(MARKET + "versioned/").json()

    assert [v["number"] for v in body["versions"]] == list(range(21, 0, -1))


def test_the_marketplace_is_throttled_per_address_like_the_public_endpoints(
    settings: Any,
) -> None:
    settings.ANON_REQUESTS_PER_MINUTE = 3
    client = APIClient(REMOTE_ADDR="203.0.113.9")

    statuses = [client.get(MARKET).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    assert client.get(MARKET + "anything/").json()["code"] == "throttled"


@pytest.mark.parametrize(
    ("query", "field"),
    [({"order": "worst"}, "order"), ({"category": "spam"}, "category"), ({"tag": "Bad Tag"}, "tag"),
     ({"page_size": 0}, "page_size"), ({"color": "red"}, "color"), ({"q": "x" * 201}, "q")],
)  # fmt: skip
def test_bad_marketplace_queries_answer_400_naming_the_parameter(
    query: dict[str, Any], field: str
) -> None:
    response = APIClient().get(MARKET, query)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["errors"]) == [field]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"slug": "ab"}, "slug"), ({"slug": "admin"}, "slug"), ({"tags": ["UPPER"]}, "tags"),
     ({"tags": [f"t{n}" for n in range(11)]}, "tags"), ({"visibility": "secret"}, "visibility"),
     ({"agent": "not-a-uuid"}, "agent"), ({"name": ""}, "name"), ({"email": "x@y.z"}, "email"),
     ({"category": "spam"}, "category")],
)  # fmt: skip
def test_bad_template_input_answers_400_naming_the_field(
    api_client: APIClient, owner_headers: Headers, change: dict[str, Any], field: str
) -> None:
    agent, _ = secret_agent()
    body = {"agent": str(agent.pk), "slug": "fine_slug", "name": "Fine", **change}

    response = api_client.post("/api/v1/templates/", body, format="json", **owner_headers("author"))

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["errors"]) == [field]


def test_another_owners_agent_cannot_be_published(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent, _ = secret_agent()
    body = {"agent": str(agent.pk), "slug": "stolen_kit", "name": "Stolen"}

    response = api_client.post("/api/v1/templates/", body, format="json", **owner_headers("thief"))

    assert (response.status_code, list(response.json()["errors"])) == (400, ["agent"])
    assert not AgentTemplate.objects.exists()


def test_a_clone_follows_its_templates_updates(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent, _ = secret_agent()
    listed(agent, "support_kit")
    cloner = owner_headers("cloner")

    cloned = api_client.post(
        "/api/v1/templates/support_kit/clone/",
        {"handle": "my_support", "name": "My support"},
        format="json",
        **cloner,
    )
    assert cloned.status_code == 201, cloned.content
    assert cloned.json()["app_key"].startswith("a1app_")
    clone_id = cloned.json()["id"]
    status_url = f"/api/v1/agents/{clone_id}/template/"
    first = api_client.get(status_url, **cloner).json()
    assert (first["version"], first["update_available"], first["changes"]) == (1, False, [])
    assert first["missing_integrations"] == ["slack", "telegram"]
    assert first["template"]["clone_count"] == 1

    api_client.patch(
        f"/api/v1/agents/{clone_id}/", {"description": "Mine now."}, format="json", **cloner
    )
    agent_update(agent=agent, description="Improved.", settings={"tone": "warm"})
    services.template_publish_version(
        template=AgentTemplate.objects.get(slug="support_kit"), changelog="warmer"
    )
    preview = api_client.get(status_url, **cloner).json()
    assert preview["update_available"] is True
    assert [v["changelog"] for v in preview["newer_versions"]] == ["warmer"]
    assert {c["field"]: (c["edited"], c["applied"]) for c in preview["changes"]} == {
        "description": (True, False),
        "settings": (False, True),
    }

    applied = api_client.post(status_url + "apply/", {}, format="json", **cloner)
    assert applied.status_code == 200, applied.content
    assert applied.json()["version"] == 2
    clone = A1Agent.objects.get(pk=clone_id)
    assert (clone.description, clone.settings) == ("Mine now.", {"tone": "warm"})
    again = api_client.post(status_url + "apply/", {}, format="json", **cloner)
    assert (again.status_code, again.json()["code"]) == (409, "template_up_to_date")


def test_apply_refuses_unknown_fields_and_agents_without_a_template(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent, _ = agent_create(owner_id="owner", name="N", handle="plain_agent", agent_type="work")
    headers = owner_headers("owner")
    url = f"/api/v1/agents/{agent.pk}/template/"

    bad = api_client.post(url + "apply/", {"overwrite": ["email"]}, format="json", **headers)
    assert (bad.status_code, list(bad.json()["errors"])) == (400, ["overwrite"])
    assert api_client.get(url, **headers).status_code == 404
    assert api_client.post(url + "apply/", {}, format="json", **headers).status_code == 404
    assert api_client.get(url, **owner_headers("other")).status_code == 404


def test_an_owner_versions_updates_and_deletes_their_template(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent, _ = secret_agent()
    headers = owner_headers("author")
    body = {"agent": str(agent.pk), "slug": "my_kit", "name": "Kit"}
    assert api_client.post("/api/v1/templates/", body, format="json", **headers).status_code == 201

    version = api_client.post(
        "/api/v1/templates/my_kit/versions/", {"changelog": "tweaks"}, format="json", **headers
    )
    changed = api_client.patch(
        "/api/v1/templates/my_kit/", {"visibility": "public", "tags": ["b", "a"]},
        format="json", **headers,
    )  # fmt: skip
    deleted = api_client.delete("/api/v1/templates/my_kit/", **headers)

    assert (version.status_code, version.json()["number"]) == (201, 2)
    assert changed.json()["moderation_status"] == "pending"
    assert changed.json()["tags"] == ["a", "b"]
    assert deleted.status_code == 204
    assert not AgentTemplate.objects.exists()


def test_an_owner_reads_their_private_template_with_its_versions(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent, leaks = secret_agent()
    template = services.template_create(
        owner_id="author", agent_id=agent.pk, slug="private_kit", name="Kit", changelog="one"
    )
    services.template_publish_version(template=template, changelog="two")

    response = api_client.get("/api/v1/templates/PRIVATE_KIT/", **owner_headers("author"))

    body = response.json()
    assert [v["changelog"] for v in body["versions"]] == ["two", "one"]
    assert body["content"]["integrations"] == ["slack", "telegram"]
    assert (body["visibility"], body["moderation_status"]) == ("private", "draft")
    assert [leak for leak in leaks if leak in response.content.decode()] == []


def test_an_owners_template_list_runs_a_constant_number_of_queries(
    api_client: APIClient, owner_headers: Headers, django_assert_max_num_queries: Any
) -> None:
    agent, _ = secret_agent()
    for n in range(30):
        services.template_create(owner_id="author", agent_id=agent.pk, slug=f"own_{n}", name="K")
    headers = owner_headers("author")
    api_client.get("/api/v1/templates/?owner=me", **headers)  # signing keys, the owner's rates

    with django_assert_max_num_queries(2):
        response = api_client.get("/api/v1/templates/?owner=me&page_size=100", **headers)

    assert len(response.json()["results"]) == 30


@pytest.mark.parametrize(
    ("filters", "order", "index"),
    [({}, "popular", "agent_templates_listed_popular"),
     ({}, "recent", "agent_templates_listed_recent"),
     ({"category": "sales"}, "popular", "agent_templates_listed_category"),
     ({"tag": "tag7"}, "popular", "agent_templates_listed_tags"),
     ({"featured": True}, "popular", "agent_templates_featured_popular"),
     ({"q": "words 7"}, "popular", "agent_templates_listed_search")],
)  # fmt: skip
def test_each_marketplace_filter_and_order_is_served_by_an_index(
    filters: dict[str, Any], order: str, index: str
) -> None:
    """With many listed templates, a few of them in the category, with the tag or words."""
    from django.db import connection

    from agent_templates.api.serializers import ORDERS
    from agent_templates.selectors import marketplace_templates

    AgentTemplate.objects.bulk_create(
        AgentTemplate(
            slug=f"bulk_{n}", owner_id="bulk", name=f"Template {n}", description=f"words {n}",
            category="sales" if n % 100 == 0 else "other", tags=[f"tag{n}"],
            visibility="public", moderation_status="approved", clone_count=n,
            featured=n % 500 == 0,
        )
        for n in range(2000)
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE agent_templates")
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = marketplace_templates(**filters).order_by(*ORDERS[order])[:25].explain()

    assert index in plan
