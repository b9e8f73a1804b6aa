"""Reads about templates: the marketplace, what a caller may read, an agent's template."""

from typing import Any

from django.contrib.postgres.search import SearchQuery
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.db.models.lookups import Exact

from agent_templates.models import (
    LISTED,
    READABLE_BY_LINK,
    SEARCH_VECTOR,
    AgentTemplate,
    AgentTemplateLink,
    AgentTemplateVersion,
)
from agent_templates.snapshot import AGENT_FIELDS
from agents.models import A1Agent
from integrations.selectors import integrations_of_agent

# What the marketplace list shows of each template (no owner, no moderation notes).
MARKETPLACE_COLUMNS = (
    "slug", "name", "description", "category", "tags", "featured", "clone_count",
    "latest_version", "published_at", "created_at",
)  # fmt: skip


def slug_is(slug: str) -> Exact:
    """The slug is this one without regard to case, through the `lower(slug)` unique index."""
    return Exact(Lower("slug"), slug.lower())


def marketplace_templates(
    *,
    q: str | None = None,
    category: str | None = None,
    tag: str | None = None,
    featured: bool | None = None,
) -> QuerySet[AgentTemplate]:
    """Listed templates (public and approved), filtered; each filter has its partial index."""
    templates = AgentTemplate.objects.filter(LISTED)
    if featured is not None:
        templates = templates.filter(featured=featured)
    if category:
        templates = templates.filter(category=category)
    if tag:
        templates = templates.filter(tags__contains=[tag])
    if q:
        templates = templates.annotate(search=SEARCH_VECTOR).filter(
            search=SearchQuery(q, config="simple", search_type="websearch")
        )
    return templates


def template_readable_by(slug: str, *, owner_id: str | None) -> AgentTemplate | None:
    """The template with this slug if the caller may read it: their own in any state,
    anyone's that is listed, or unlisted and not hidden."""
    visible = READABLE_BY_LINK
    if owner_id is not None:
        visible |= Q(owner_id=owner_id)
    return AgentTemplate.objects.filter(slug_is(slug)).filter(visible).first()


def template_of_owner(slug: str, *, owner_id: str) -> AgentTemplate | None:
    return AgentTemplate.objects.filter(slug_is(slug), owner_id=owner_id).first()


def templates_of_owner(
    owner_id: str,
    *,
    q: str | None = None,
    category: str | None = None,
    tag: str | None = None,
    featured: bool | None = None,
) -> QuerySet[AgentTemplate]:
    """An owner's templates in every state (few: the owner index finds them, then filters)."""
    templates = AgentTemplate.objects.filter(owner_id=owner_id)
    if category:
        templates = templates.filter(category=category)
    if tag:
        templates = templates.filter(tags__contains=[tag])
    if featured is not None:
        templates = templates.filter(featured=featured)
    if q:
        templates = templates.annotate(search=SEARCH_VECTOR).filter(
            search=SearchQuery(q, config="simple", search_type="websearch")
        )
    return templates


def template_is_readable_by(template: AgentTemplate, *, owner_id: str) -> bool:
    return (
        template.owner_id == owner_id
        or AgentTemplate.objects.filter(pk=template.pk).filter(READABLE_BY_LINK).exists()
    )


def versions_of(template_id: Any) -> QuerySet[AgentTemplateVersion]:
    """Newest first, through the unique (template, number) index."""
    return AgentTemplateVersion.objects.filter(template_id=template_id).order_by("-number")


def version_of(template_id: Any, number: int) -> AgentTemplateVersion | None:
    return AgentTemplateVersion.objects.filter(template_id=template_id, number=number).first()


def link_of_agent(agent_id: Any) -> AgentTemplateLink | None:
    return AgentTemplateLink.objects.select_related("template").filter(agent_id=agent_id).first()


def owned_agent(agent_id: Any, *, owner_id: str) -> A1Agent | None:
    """The owner's agent, with only the fields a snapshot reads."""
    return (
        A1Agent.objects.filter(pk=agent_id, owner_id=owner_id)
        .only("id", "owner_id", *AGENT_FIELDS)
        .first()
    )


def providers_of(agent_id: Any) -> list[str]:
    return list(integrations_of_agent(agent_id).values_list("provider", flat=True))
