"""Cloning holds the plan's limits when requests race: each thread has its own connection."""

from collections import Counter
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from agent_templates import services
from agent_templates.models import AgentTemplate, AgentTemplateLink
from agents.models import A1Agent
from agents.services import agent_create
from billing.models import UserSubscription
from tests.concurrency import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_plans")]

Headers = Callable[..., dict[str, str]]


def test_two_clones_at_the_plan_limit_create_exactly_one_agent(owner_headers: Headers) -> None:
    source, _ = agent_create(owner_id="author", name="S", handle="source_agent", agent_type="work")
    template = services.template_create(
        owner_id="author", agent_id=source.pk, slug="raced_kit", name="Kit", visibility="unlisted"
    )
    UserSubscription.objects.create(
        user_id="racer", max_personal_agents=5, max_work_agents=1, max_total_agents=5
    )
    headers = owner_headers("racer")

    def cloner(handle: str) -> Callable[[], int]:
        return lambda: int(
            APIClient()
            .post(
                "/api/v1/templates/raced_kit/clone/", {"handle": handle}, format="json", **headers
            )
            .status_code
        )

    statuses = Counter(race([cloner("racer_one"), cloner("racer_two")]))

    assert statuses == Counter({201: 1, 403: 1})
    assert A1Agent.objects.filter(owner_id="racer").count() == 1
    assert AgentTemplateLink.objects.filter(template=template).count() == 1
    assert AgentTemplate.objects.get(pk=template.pk).clone_count == 1


def test_racing_clones_of_one_template_by_many_owners_count_every_clone(
    owner_headers: Headers,
) -> None:
    source, _ = agent_create(owner_id="author", name="S", handle="source_agent", agent_type="work")
    template = services.template_create(
        owner_id="author", agent_id=source.pk, slug="popular_kit", name="Kit", visibility="unlisted"
    )

    def cloner(n: int) -> Callable[[], int]:
        headers = owner_headers(f"fan_{n}")
        return lambda: int(
            APIClient()
            .post(
                "/api/v1/templates/popular_kit/clone/",
                {"handle": f"fan_clone_{n}"},
                format="json",
                **headers,
            )
            .status_code
        )

    statuses = Counter(race([cloner(n) for n in range(6)]))

    assert statuses == Counter({201: 6})
    assert AgentTemplate.objects.get(pk=template.pk).clone_count == 6
