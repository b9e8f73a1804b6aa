"""Agent templates: versioned, secret-free copies of an agent's configuration, shared
privately, by link or in the marketplace, and the link from a cloned agent to its template.

A template's slug follows the rules of agent handles (`agents.handles`), in its own
namespace. Versions are immutable (the database refuses UPDATE, see migration 0001). Every
foreign key cascades in the database (`core.schema`), except a template's source agent,
which is set to NULL: deleting the agent keeps the templates made from it.
"""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.functions import RandomUUID, TransactionNow
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length, Lower
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual

from agents.models import HANDLE_MAX_LENGTH, HANDLE_MIN_LENGTH, HANDLE_PATTERN
from core.schema import SeedIndex
from teams.models import owning_team, team_is_owner


class Visibility(models.TextChoices):
    PRIVATE = "private"  # the owner's account only
    UNLISTED = "unlisted"  # anyone with the link (the slug)
    PUBLIC = "public"  # listed in the marketplace once staff approve it


class ModerationStatus(models.TextChoices):
    DRAFT = "draft"  # not offered for public listing
    PENDING = "pending"  # public, waiting for staff
    APPROVED = "approved"
    REJECTED = "rejected"
    HIDDEN = "hidden"  # taken down by staff: readable by nobody but its owner


class Category(models.TextChoices):
    SUPPORT = "support"
    SALES = "sales"
    MARKETING = "marketing"
    PRODUCTIVITY = "productivity"
    EDUCATION = "education"
    PERSONAL = "personal"
    OTHER = "other"


class ReportStatus(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"  # staff acted on it
    DISMISSED = "dismissed"


# The marketplace lists these; the partial indexes below serve exactly this condition.
LISTED = Q(visibility=Visibility.PUBLIC, moderation_status=ModerationStatus.APPROVED)
# Readable by anyone who has the slug (the owner reads their own whatever its state).
READABLE_BY_LINK = LISTED | (
    Q(visibility=Visibility.UNLISTED) & ~Q(moderation_status=ModerationStatus.HIDDEN)
)
# The text the marketplace's `q` searches; the GIN index is on this very expression.
SEARCH_VECTOR = SearchVector("name", "description", config="simple")


class AgentTemplate(models.Model):
    """A template an owner made from one of their agents; its content is in its versions."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    slug = models.TextField()
    # The account that owns the template: a user's id, or for a team's template the team's
    # id, like an agent's (`a1_agents.owner_id`): the account of the agent it was made from.
    owner_id = models.TextField()
    # The owning team, if a team owns it (teams.models.owning_team); the owner index
    # finds a team's templates.
    team = owning_team()
    source_agent = models.ForeignKey(
        "agents.A1Agent",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_column="source_agent_id",
        related_name="+",
    )
    name = models.TextField()
    description = models.TextField(blank=True, default="", db_default="")
    category = models.TextField(
        choices=Category.choices, default=Category.OTHER, db_default=Category.OTHER
    )
    tags = ArrayField(models.TextField(), default=list, db_default=[], blank=True)
    visibility = models.TextField(
        choices=Visibility.choices, default=Visibility.PRIVATE, db_default=Visibility.PRIVATE
    )
    moderation_status = models.TextField(
        choices=ModerationStatus.choices,
        default=ModerationStatus.DRAFT,
        db_default=ModerationStatus.DRAFT,
    )
    moderation_reason = models.TextField(blank=True, default="", db_default="")
    featured = models.BooleanField(default=False, db_default=False)
    clone_count = models.IntegerField(default=0, db_default=0)
    latest_version = models.IntegerField(default=0, db_default=0)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())

    class Meta:
        db_table = "agent_templates"
        verbose_name = "agent template"
        permissions = [("moderate_agenttemplate", "Can moderate agent templates")]
        constraints = [
            models.UniqueConstraint(Lower("slug"), name="agent_templates_slug_lower_key"),
            models.CheckConstraint(
                condition=Q(slug__regex=HANDLE_PATTERN), name="agent_templates_valid_slug"
            ),
            models.CheckConstraint(
                condition=Q(
                    GreaterThanOrEqual(Length("slug"), HANDLE_MIN_LENGTH),
                    LessThanOrEqual(Length("slug"), HANDLE_MAX_LENGTH),
                ),
                name="agent_templates_valid_slug_length",
            ),
            models.CheckConstraint(
                condition=Q(visibility__in=Visibility.values),
                name="agent_templates_valid_visibility",
            ),
            models.CheckConstraint(
                condition=Q(moderation_status__in=ModerationStatus.values),
                name="agent_templates_valid_moderation_status",
            ),
            models.CheckConstraint(
                condition=Q(category__in=Category.values), name="agent_templates_valid_category"
            ),
            models.CheckConstraint(
                condition=Q(clone_count__gte=0), name="agent_templates_clone_count_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(latest_version__gte=0),
                name="agent_templates_latest_version_not_negative",
            ),
            team_is_owner("agent_templates_team_is_owner"),
            # Only a listed template can be featured.
            models.CheckConstraint(
                condition=Q(featured=False) | LISTED, name="agent_templates_featured_is_listed"
            ),
            # A refusal says why.
            models.CheckConstraint(
                condition=~Q(
                    moderation_status__in=[ModerationStatus.REJECTED, ModerationStatus.HIDDEN]
                )
                | ~Q(moderation_reason=""),
                name="agent_templates_refusal_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(name__regex=r"\S") & Q(LessThanOrEqual(Length("name"), 200)),
                name="agent_templates_valid_name",
            ),
        ]
        indexes = [
            SeedIndex(fields=["owner_id", "-created_at", "-id"], name="agent_templates_owner"),
            # The marketplace: popular and recent, whole and per category.
            SeedIndex(
                F("clone_count").desc(), F("id").desc(),
                condition=LISTED, name="agent_templates_listed_popular",
            ),
            SeedIndex(
                F("published_at").desc(), F("id").desc(),
                condition=LISTED, name="agent_templates_listed_recent",
            ),
            SeedIndex(
                "category", F("clone_count").desc(), F("id").desc(),
                condition=LISTED, name="agent_templates_listed_category",
            ),
            SeedIndex(
                F("clone_count").desc(), F("id").desc(),
                condition=Q(featured=True), name="agent_templates_featured_popular",
            ),
            GinIndex(fields=["tags"], condition=LISTED, name="agent_templates_listed_tags"),
            GinIndex(SEARCH_VECTOR, condition=LISTED, name="agent_templates_listed_search"),
            SeedIndex(
                fields=["created_at"],
                condition=Q(moderation_status=ModerationStatus.PENDING),
                name="agent_templates_pending_queue",
            ),
            SeedIndex(
                fields=["moderation_status", "-created_at"], name="agent_templates_moderation"
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return self.slug


class AgentTemplateVersion(models.Model):
    """One published state of a template: an immutable snapshot of allow-listed fields."""

    id = models.BigAutoField(primary_key=True)
    template = models.ForeignKey(
        AgentTemplate,
        on_delete=models.DO_NOTHING,
        db_column="template_id",
        db_index=False,  # the unique (template, number) index serves it
        related_name="versions",
    )
    number = models.IntegerField()
    snapshot = models.JSONField()
    changelog = models.TextField(blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())

    class Meta:
        db_table = "agent_template_versions"
        verbose_name = "template version"
        constraints = [
            models.UniqueConstraint(
                fields=["template", "number"], name="agent_template_versions_number_key"
            ),
            models.CheckConstraint(
                condition=Q(number__gte=1), name="agent_template_versions_number_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.number}"


class TemplateReport(models.Model):
    """A user's report of an abusive template, for staff to resolve or dismiss."""

    id = models.BigAutoField(primary_key=True)
    template = models.ForeignKey(
        AgentTemplate,
        on_delete=models.DO_NOTHING,
        db_column="template_id",
        related_name="reports",
    )
    reporter_id = models.TextField()
    reason = models.TextField()
    status = models.TextField(
        choices=ReportStatus.choices, default=ReportStatus.OPEN, db_default=ReportStatus.OPEN
    )
    staff_note = models.TextField(blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "agent_template_reports"
        verbose_name = "template report"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ReportStatus.values),
                name="agent_template_reports_valid_status",
            ),
            models.CheckConstraint(
                condition=Q(reason__regex=r"\S"), name="agent_template_reports_reason_given"
            ),
            models.CheckConstraint(
                condition=Q(status=ReportStatus.OPEN, resolved_at__isnull=True)
                | (~Q(status=ReportStatus.OPEN) & Q(resolved_at__isnull=False)),
                name="agent_template_reports_resolved_at",
            ),
            # One open report per user and template: reporting again changes nothing.
            models.UniqueConstraint(
                fields=["template", "reporter_id"],
                condition=Q(status=ReportStatus.OPEN),
                name="agent_template_reports_one_open_per_reporter",
            ),
        ]
        indexes = [
            SeedIndex(fields=["status", "-created_at"], name="agent_template_reports_status"),
        ]

    def __str__(self) -> str:
        return f"report {self.pk} on {self.template_id}"


class AgentTemplateLink(models.Model):
    """The template (and version) an agent was cloned from, and the values it was given.

    `cloned` holds the template's values of the updatable fields as of `version_number`:
    a field whose current value differs from it is one the owner edited since.
    """

    agent = models.OneToOneField(
        "agents.A1Agent",
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_column="agent_id",
        related_name="+",
    )
    template = models.ForeignKey(
        AgentTemplate,
        on_delete=models.DO_NOTHING,
        db_column="template_id",
        db_index=False,  # agent_template_links_template
        related_name="links",
    )
    version_number = models.IntegerField()
    cloned = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())

    class Meta:
        db_table = "agent_template_links"
        verbose_name = "agent's template"
        constraints = [
            models.CheckConstraint(
                condition=Q(version_number__gte=1),
                name="agent_template_links_version_positive",
            ),
        ]
        indexes = [SeedIndex(fields=["template"], name="agent_template_links_template")]

    def __str__(self) -> str:
        return f"{self.agent_id} from {self.template_id} v{self.version_number}"


class TemplateModerationQueue(AgentTemplate):
    """The admin's queue: public templates waiting for a decision."""

    class Meta:
        proxy = True
        verbose_name = "template awaiting moderation"
        verbose_name_plural = "moderation queue"
