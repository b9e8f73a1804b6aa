"""Writes to templates: publish, version, update, delete, clone, apply updates, moderate,
report.

A clone is made by `agents.services.agent_create`, inside this transaction, so the plan's
limits, the handle rules, the races between creations and the agent's audit trail are the
ones every agent creation has. Locks: for a clone into a team, the team's row (FOR SHARE,
`teams.locks.team_hold`, which the team's deletion locks FOR UPDATE before deleting its
templates); the template (FOR NO KEY UPDATE, so that clones of one template and its new
versions take turns); then whatever `agent_create` or `agent_update` take (the owner's
subscription, the agent). Every change is recorded in the audit trail in the same
transaction.

A template is owned by the account of the agent it is made from: a user, or a team
(`team_id`, then `owner_id` is the team's id, as on agents). Who of a team may do what with
its templates is decided by the API (`selectors.template_role_of`, docs/teams.md).
"""

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from agent_templates import selectors
from agent_templates.errors import ModerationRefused, TemplateNotFound, TemplateUpToDate
from agent_templates.models import (
    AgentTemplate,
    AgentTemplateLink,
    AgentTemplateVersion,
    ModerationStatus,
    ReportStatus,
    TemplateReport,
    Visibility,
)
from agent_templates.snapshot import SNAPSHOT_KEYS, snapshot_of, updatable_values
from agent_templates.updates import FieldChange, update_preview
from agents.errors import FieldInvalid
from agents.handles import handle_problem
from agents.locks import agent_lock
from agents.models import A1Agent
from agents.services import agent_create, agent_update
from audit.actors import SYSTEM, Actor
from audit.models import TargetType
from audit.services import AuditedModel, audit_record
from teams.errors import TeamNotFound
from teams.locks import team_hold

# Fields an owner may change on a template (its content changes only by a new version).
TEMPLATE_UPDATABLE_FIELDS = frozenset({"name", "description", "category", "tags", "visibility"})
TEMPLATE_TRAIL = AuditedModel(
    TargetType.AGENT_TEMPLATE,
    (
        "slug", "owner_id", "team_id", "name", "description", "category", "tags", "visibility",
        "moderation_status", "moderation_reason", "featured", "latest_version",
    ),
)  # fmt: skip
REPORT_TRAIL = AuditedModel(TargetType.TEMPLATE_REPORT, ("template_id", "status", "staff_note"))


def _check_slug(slug: str) -> None:
    problem = handle_problem(slug)
    if problem:
        raise FieldInvalid("slug", f"Slugs follow the rules of handles: {problem}")


def _record(
    template: AgentTemplate,
    *,
    actor: Actor,
    action: str,
    before: dict[str, Any],
    context: dict[str, Any] | None = None,
) -> None:
    TEMPLATE_TRAIL.record(
        template,
        actor=actor,
        action=action,
        before=before,
        owner_id=template.owner_id,
        context=context,
    )


def _locked(template: AgentTemplate) -> AgentTemplate:
    locked = AgentTemplate.objects.select_for_update(no_key=True).filter(pk=template.pk).first()
    if locked is None:
        raise TemplateNotFound()
    return locked


def _source_agent(owner_id: str, agent_id: Any) -> A1Agent:
    agent = selectors.owned_agent(agent_id, owner_id=owner_id) if agent_id else None
    if agent is None:
        raise FieldInvalid("agent", "No such agent of yours.")
    return agent


def _publish(template: AgentTemplate, agent: A1Agent, *, changelog: str) -> AgentTemplateVersion:
    """Add the next version, a snapshot of the agent, to the locked (or new) template."""
    version = AgentTemplateVersion.objects.create(
        template=template,
        number=template.latest_version + 1,
        snapshot=snapshot_of(agent, selectors.providers_of(agent.pk)),
        changelog=changelog,
    )
    template.latest_version = version.number
    template.published_at = version.created_at
    template.save(update_fields=["latest_version", "published_at", "updated_at"])
    return version


def _moderation_after_visibility(template: AgentTemplate, visibility: str) -> None:
    """Entering the public listing asks staff; leaving it withdraws the request. A hidden
    template stays hidden whatever its owner does."""
    if template.moderation_status == ModerationStatus.HIDDEN:
        template.visibility = visibility
        return
    if visibility == Visibility.PUBLIC and (
        template.visibility != Visibility.PUBLIC
        or template.moderation_status == ModerationStatus.REJECTED
    ):
        template.moderation_status = ModerationStatus.PENDING
        template.moderation_reason = ""
    elif visibility != Visibility.PUBLIC:
        template.moderation_status = ModerationStatus.DRAFT
        template.moderation_reason = ""
        template.featured = False
    template.visibility = visibility


def _save_catching_taken_slug(template: AgentTemplate) -> None:
    try:
        with transaction.atomic():
            template.save(force_insert=True)
    except IntegrityError as error:
        if "slug" in str(error):
            raise FieldInvalid("slug", "This slug is already taken.") from None
        raise


@transaction.atomic
def template_create(
    *,
    owner_id: str,
    agent_id: Any,
    slug: str,
    name: str,
    description: str = "",
    category: str = "other",
    tags: Iterable[str] = (),
    visibility: str = Visibility.PRIVATE,
    changelog: str = "",
    actor: Actor = SYSTEM,
) -> AgentTemplate:
    """Make a template, and its version 1, from one of the owner's agents (a team's agent's
    template is the team's)."""
    _check_slug(slug)
    agent = _source_agent(owner_id, agent_id)
    template = AgentTemplate(
        owner_id=owner_id,
        team_id=agent.team_id,
        source_agent_id=agent.pk,
        slug=slug,
        name=name,
        description=description,
        category=category,
        tags=sorted(set(tags)),
    )
    _moderation_after_visibility(template, visibility)
    _save_catching_taken_slug(template)
    _publish(template, agent, changelog=changelog)
    _record(template, actor=actor, action="agent_template.created", before={})
    return template


@transaction.atomic
def template_publish_version(
    *, template: AgentTemplate, changelog: str, agent_id: Any = None, actor: Actor = SYSTEM
) -> AgentTemplateVersion:
    """Publish a new, immutable version from the template's agent (or another of the
    owner's agents); clones see it as an update available."""
    template = _locked(template)
    agent = _source_agent(template.owner_id, agent_id or template.source_agent_id)
    before = TEMPLATE_TRAIL.snapshot(template)
    if agent.pk != template.source_agent_id:
        template.source_agent_id = agent.pk
        template.save(update_fields=["source_agent", "updated_at"])
    version = _publish(template, agent, changelog=changelog)
    _record(
        template,
        actor=actor,
        action="agent_template.version_published",
        before=before,
        context={"version": version.number},
    )
    return version


@transaction.atomic
def template_update(
    *, template: AgentTemplate, actor: Actor = SYSTEM, **changes: Any
) -> AgentTemplate:
    """Change a template's listing details or visibility (public asks staff again)."""
    unknown = set(changes) - TEMPLATE_UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"template_update() got unexpected fields: {sorted(unknown)}")
    template = _locked(template)
    before = TEMPLATE_TRAIL.snapshot(template)
    visibility = changes.pop("visibility", template.visibility)
    if "tags" in changes:
        changes["tags"] = sorted(set(changes["tags"]))
    for field, value in changes.items():
        setattr(template, field, value)
    _moderation_after_visibility(template, visibility)
    template.save()
    _record(template, actor=actor, action="agent_template.updated", before=before)
    return template


@transaction.atomic
def template_delete(*, template: AgentTemplate, actor: Actor = SYSTEM) -> None:
    """Delete the template with its versions, reports and clones' links (the database
    cascades); the clones stay, as agents of their owners."""
    template = _locked(template)
    before = TEMPLATE_TRAIL.snapshot(template)
    audit_record(
        actor=actor,
        action="agent_template.deleted",
        target_type=TargetType.AGENT_TEMPLATE,
        target_id=template.pk,
        owner_id=template.owner_id,
        changes={field: {"before": value, "after": None} for field, value in before.items()},
    )
    AgentTemplate.objects.filter(pk=template.pk).delete()


def template_delete_all_for_owner(*, owner_id: str, actor: Actor = SYSTEM) -> int:
    """Delete every template of an owner (a deleted user or team); return how many."""
    templates = list(selectors.templates_of_owner(owner_id).order_by("pk"))
    for template in templates:
        template_delete(template=template, actor=actor)
    return len(templates)


@transaction.atomic
def template_clone(
    *,
    template: AgentTemplate,
    owner_id: str,
    handle: str,
    name: str | None = None,
    agent_type: str | None = None,
    team_id: str | None = None,
    member_id: str | None = None,
    actor: Actor = SYSTEM,
) -> tuple[A1Agent, str]:
    """Create an agent for `owner_id` from the template's latest version; return it and its
    app key. The agent remembers the template and version in `agent_template_links`.

    With `team_id` (and `owner_id` the team's id) the agent is the team's, made by
    `agent_create` as any team agent is: `member_id` needs the role that creates the team's
    agents, and the team's limits apply. The account must be able to read the template
    (a user's private one cannot go into a team). The team's row is held before the
    template is locked, in the order the team's deletion takes them."""
    if team_id is not None and not team_hold(team_id):
        raise TeamNotFound()
    template = _locked(template)
    if not selectors.template_is_readable_by(template, owner_id=owner_id):
        raise TemplateNotFound()
    version = selectors.version_of(template.pk, template.latest_version)
    if version is None:
        raise TemplateNotFound("The template has no published version.")
    values = updatable_values(version.snapshot)
    agent, app_key = agent_create(
        owner_id=owner_id,
        name=name or template.name,
        handle=handle,
        agent_type=agent_type or version.snapshot.get("agent_type") or "personal",
        team_id=team_id,
        member_id=member_id,
        actor=actor,
        **values,
    )
    AgentTemplateLink.objects.create(
        agent=agent, template=template, version_number=version.number, cloned=values
    )
    AgentTemplate.objects.filter(pk=template.pk).update(clone_count=F("clone_count") + 1)
    audit_record(
        actor=actor,
        action="agent_template.cloned",
        target_type=TargetType.AGENT_TEMPLATE,
        target_id=template.pk,
        agent_id=agent.pk,
        owner_id=owner_id,
        context={"template": template.slug, "version": version.number, "team": team_id},
    )
    return agent, app_key


@transaction.atomic
def template_update_apply(
    *, agent_id: Any, overwrite: Collection[str] = (), actor: Actor = SYSTEM
) -> tuple[A1Agent, list[FieldChange]]:
    """Bring the agent to its template's latest version: fields the owner edited since the
    clone are kept unless named in `overwrite`. Return the agent and the planned changes."""
    agent = agent_lock(agent_id)
    link = (
        AgentTemplateLink.objects.select_for_update(of=("self",))
        .select_related("template")
        .filter(agent_id=agent.pk)
        .first()
    )
    if link is None or not selectors.template_is_readable_by(
        link.template, owner_id=agent.owner_id
    ):
        raise TemplateNotFound("This agent follows no template.")
    template = link.template
    if link.version_number >= template.latest_version:
        raise TemplateUpToDate()
    version = selectors.version_of(template.pk, template.latest_version)
    if version is None:
        raise TemplateNotFound("The template has no published version.")
    changes = update_preview(agent, link.cloned, version.snapshot, overwrite)
    applied = {change.field: change.new for change in changes if change.applied}
    if applied:
        agent = agent_update(agent=agent, actor=actor, **applied)
    from_version = link.version_number
    link.version_number = version.number
    link.cloned = updatable_values(version.snapshot)
    link.save(update_fields=["version_number", "cloned", "updated_at"])
    audit_record(
        actor=actor,
        action="agent_template.update_applied",
        target_type=TargetType.AGENT_TEMPLATE,
        target_id=template.pk,
        agent_id=agent.pk,
        owner_id=agent.owner_id,
        context={
            "from_version": from_version,
            "to_version": version.number,
            "applied": sorted(applied),
            "kept": sorted(change.field for change in changes if not change.applied),
        },
    )
    return agent, changes


# --- the catalogue ------------------------------------------------------------------------


@transaction.atomic
def template_seed(
    *,
    owner_id: str,
    slug: str,
    name: str,
    description: str,
    category: str,
    tags: Iterable[str],
    content: Mapping[str, Any],
    changelog: str,
    actor: Actor = SYSTEM,
) -> str:
    """Make sure a catalogue template exists, public and approved, with `content` as its
    latest version; return "created", "updated" (a new version) or "unchanged".

    Idempotent: run again, it changes nothing; with new content, it publishes a version,
    which clones see as an update. A slug an owner has taken is left alone ("taken").
    """
    _check_slug(slug)
    snapshot = {key: content.get(key) for key in SNAPSHOT_KEYS}  # the allow-list again
    template = (
        AgentTemplate.objects.select_for_update(no_key=True).filter(selectors.slug_is(slug)).first()
    )
    if template is not None and template.owner_id != owner_id:
        return "taken"
    if template is None:
        template = AgentTemplate(
            owner_id=owner_id,
            slug=slug,
            name=name,
            description=description,
            category=category,
            tags=sorted(set(tags)),
            visibility=Visibility.PUBLIC,
            moderation_status=ModerationStatus.APPROVED,
        )
        _save_catching_taken_slug(template)
        before: dict[str, Any] = {}
        outcome = "created"
    else:
        latest = selectors.version_of(template.pk, template.latest_version)
        if latest is not None and latest.snapshot == snapshot:
            return "unchanged"
        before = TEMPLATE_TRAIL.snapshot(template)
        outcome = "updated"
    version = AgentTemplateVersion.objects.create(
        template=template,
        number=template.latest_version + 1,
        snapshot=snapshot,
        changelog=changelog,
    )
    template.latest_version = version.number
    template.published_at = version.created_at
    template.save(update_fields=["latest_version", "published_at", "updated_at"])
    _record(
        template,
        actor=actor,
        action="agent_template.created"
        if outcome == "created"
        else "agent_template.version_published",
        before=before,
        context={"version": version.number, "catalogue": True},
    )
    return outcome


# --- moderation (staff) -------------------------------------------------------------------

# decision -> the audit trail's action
DECISIONS = {
    "approve": "agent_template.approved",
    "reject": "agent_template.rejected",
    "hide": "agent_template.hidden",
    "feature": "agent_template.featured",
    "unfeature": "agent_template.unfeatured",
}


@transaction.atomic
def template_moderate(
    *, template: AgentTemplate, decision: str, reason: str = "", actor: Actor = SYSTEM
) -> AgentTemplate:
    """Apply a staff decision: approve (list it; or lift a hiding), reject with a reason,
    hide with a reason, feature or unfeature a listed template."""
    if decision not in DECISIONS:
        raise ValueError(f"Unknown decision {decision!r}")
    reason = reason.strip()
    template = _locked(template)
    before = TEMPLATE_TRAIL.snapshot(template)
    status = template.moderation_status
    public = template.visibility == Visibility.PUBLIC
    if decision in ("reject", "hide") and not reason:
        raise ModerationRefused("Give a reason.", errors={"reason": ["A reason is required."]})
    if decision == "approve":
        if status == ModerationStatus.APPROVED or (
            not public and status != ModerationStatus.HIDDEN
        ):
            raise ModerationRefused(
                "Only a public template waiting for review, rejected or hidden can be approved."
            )
        template.moderation_status = ModerationStatus.APPROVED if public else ModerationStatus.DRAFT
        template.moderation_reason = ""
    elif decision == "reject":
        if not public or status not in (ModerationStatus.PENDING, ModerationStatus.APPROVED):
            raise ModerationRefused(
                "Only a public template waiting for review or listed can be rejected."
            )
        template.moderation_status = ModerationStatus.REJECTED
        template.moderation_reason = reason
        template.featured = False
    elif decision == "hide":
        if status == ModerationStatus.HIDDEN:
            raise ModerationRefused("The template is already hidden.")
        template.moderation_status = ModerationStatus.HIDDEN
        template.moderation_reason = reason
        template.featured = False
    else:
        if not (public and status == ModerationStatus.APPROVED):
            raise ModerationRefused("Only a listed template can be featured.")
        template.featured = decision == "feature"
    template.save(
        update_fields=["moderation_status", "moderation_reason", "featured", "updated_at"]
    )
    _record(
        template,
        actor=actor,
        action=DECISIONS[decision],
        before=before,
        context={"reason": reason} if reason else None,
    )
    return template


@transaction.atomic
def report_create(
    *, template: AgentTemplate, reporter_id: str, reason: str, actor: Actor = SYSTEM
) -> TemplateReport:
    """Report a template to staff; a user's open report on it is returned as it is."""
    report = TemplateReport(template=template, reporter_id=reporter_id, reason=reason)
    try:
        with transaction.atomic():
            report.save(force_insert=True)
    except IntegrityError as error:
        if "one_open_per_reporter" not in str(error):
            raise
        return TemplateReport.objects.get(
            template=template, reporter_id=reporter_id, status=ReportStatus.OPEN
        )
    REPORT_TRAIL.record(
        report, actor=actor, action="template_report.created", before={}, owner_id=reporter_id
    )
    return report


@transaction.atomic
def report_close(
    *, report: TemplateReport, status: str, note: str = "", actor: Actor = SYSTEM
) -> TemplateReport:
    """Mark an open report resolved (staff acted) or dismissed."""
    if status not in (ReportStatus.RESOLVED, ReportStatus.DISMISSED):
        raise ValueError(f"Reports are closed as resolved or dismissed, not {status!r}")
    report = TemplateReport.objects.select_for_update().get(pk=report.pk)
    if report.status != ReportStatus.OPEN:
        raise ModerationRefused("The report is already closed.")
    before = REPORT_TRAIL.snapshot(report)
    report.status = status
    report.staff_note = note
    report.resolved_at = timezone.now()
    report.save(update_fields=["status", "staff_note", "resolved_at"])
    REPORT_TRAIL.record(
        report, actor=actor, action=f"template_report.{status}", before=before,
        owner_id=report.reporter_id,
    )  # fmt: skip
    return report
