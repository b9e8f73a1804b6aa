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
from teams.roles import Role
from teams.selectors import member_role, team_ids_of_member

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


def readable_by_account(account_id: str) -> Q:
    """The templates an account may read: its own in any state, for a user those of every
    team they are a member of now (a team's template is owned by the team), and anyone's
    that is listed, or unlisted and not hidden."""
    return Q(owner_id=account_id) | Q(team_id__in=team_ids_of_member(account_id)) | READABLE_BY_LINK


def template_readable_by(slug: str, *, owner_id: str | None) -> AgentTemplate | None:
    """The template with this slug if the caller (`owner_id`, or None when anonymous) may
    read it (`readable_by_account`)."""
    visible = READABLE_BY_LINK if owner_id is None else readable_by_account(owner_id)
    return AgentTemplate.objects.filter(slug_is(slug)).filter(visible).first()


def template_by_slug(slug: str) -> AgentTemplate | None:
    return AgentTemplate.objects.filter(slug_is(slug)).first()


def template_role_of(user_id: str, template: AgentTemplate) -> Role | None:
    """A signed-in user's role on a template: owner of their own; for a team's, their role
    in the team while they are a member of it (`teams.selectors.member_role`, the rule that
    decides on the team's agents); None for anyone else's."""
    if template.team_id is None:
        return Role.OWNER if template.owner_id == user_id else None
    return member_role(team_id=template.team_id, user_id=user_id)


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
    """Whether the account (a user or a team) may read the template (`readable_by_account`)."""
    return (
        template.owner_id == owner_id
        or AgentTemplate.objects.filter(pk=template.pk)
        .filter(readable_by_account(owner_id))
        .exists()
    )


def versions_of(template_id: Any) -> QuerySet[AgentTemplateVersion]:
    """Newest first, through the unique (template, number) index."""
    return AgentTemplateVersion.objects.filter(template_id=template_id).order_by("-number")


def version_of(template_id: Any, number: int) -> AgentTemplateVersion | None:
    return AgentTemplateVersion.objects.filter(template_id=template_id, number=number).first()


def link_of_agent(agent_id: Any) -> AgentTemplateLink | None:
    return AgentTemplateLink.objects.select_related("template").filter(agent_id=agent_id).first()


def owned_agent(agent_id: Any, *, owner_id: str) -> A1Agent | None:
    """The owner's agent (a user's or a team's), with only the fields a snapshot reads."""
    return agent_to_snapshot(agent_id, owner_id=owner_id)


def agent_to_snapshot(agent_id: Any, *, owner_id: str | None = None) -> A1Agent | None:
    """The agent (the owner's only, given `owner_id`), with only the fields a snapshot and
    an update's preview read."""
    agents = A1Agent.objects.filter(pk=agent_id)
    if owner_id is not None:
        agents = agents.filter(owner_id=owner_id)
    return agents.only("id", "owner_id", "team_id", *AGENT_FIELDS).first()


def providers_of(agent_id: Any) -> list[str]:
    return list(integrations_of_agent(agent_id).values_list("provider", flat=True))
