"""The audit trail: who changed which agent, app key, subscription, plan or integration.

One row per change, written by the service that makes the change, in the same transaction
(so a change and its record commit or roll back together). Rows are append-only: the
database refuses UPDATE (see migration 0001), and the admin shows them read-only.

There are deliberately no foreign keys: the trail must outlive what it describes (a deleted
agent's history stays readable by staff), and writing it must never lock the audited rows.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ActorKind(models.TextChoices):
    OWNER = "owner"
    STAFF = "staff"
    APP = "app"
    STRIPE = "stripe", "Stripe"
    STACK_AUTH = "stack-auth", "Stack Auth"
    # Operator commands, the shell and tests: no request behind the change.
    SYSTEM = "system"


class TargetType(models.TextChoices):
    AGENT = "agent"
    APP_KEY = "app_key", "App key"
    SUBSCRIPTION = "subscription"
    PLAN = "plan"
    INTEGRATION = "integration"
    AGENT_TEMPLATE = "agent_template"
    TEMPLATE_REPORT = "template_report"


class AuditEntry(models.Model):
    """One recorded change: actor, action, target, field changes (redacted), time."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)

    actor_kind = models.TextField(choices=ActorKind.choices)
    # Stack Auth user id, Django user id, app id, Stripe event id or Svix message id.
    actor_id = models.TextField(blank=True, default="")
    # A staff member's username (the only actor whose id alone means nothing to a reader).
    actor_name = models.TextField(blank=True, default="")

    # `<target>.<verb>`, e.g. `agent.paused`, `app_key.rotated`, `subscription.plan_changed`.
    action = models.TextField()
    target_type = models.TextField(choices=TargetType.choices)
    target_id = models.TextField()
    # The agent the change belongs to (its trail), and the customer whose data it is.
    agent_id = models.UUIDField(null=True, blank=True)
    owner_id = models.TextField(null=True, blank=True)

    # {field: {"before": ..., "after": ...}}; personal data and secrets are "[redacted]".
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    # Why or through what, e.g. {"stripe_event_type": "invoice.paid", "reason": ...}.
    context = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        db_table = "audit_log"
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=Q(actor_kind__in=ActorKind.values), name="audit_log_valid_actor_kind"
            ),
            models.CheckConstraint(
                condition=Q(target_type__in=TargetType.values), name="audit_log_valid_target_type"
            ),
        ]
        indexes = [
            # An agent's trail, newest first (the agent page and the owners' API).
            models.Index(
                fields=["agent_id", "-created_at", "-id"],
                condition=Q(agent_id__isnull=False),
                name="audit_log_agent_newest",
            ),
            models.Index(
                fields=["owner_id", "-created_at"],
                condition=Q(owner_id__isnull=False),
                name="audit_log_owner_newest",
            ),
            models.Index(fields=["target_id"], name="audit_log_target"),
            models.Index(fields=["actor_id"], name="audit_log_actor"),
            models.Index(fields=["-created_at", "-id"], name="audit_log_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_id} by {self.actor_label}"

    @property
    def actor_label(self) -> str:
        who = self.actor_name or self.actor_id
        return f"{self.actor_kind}:{who}" if who else self.actor_kind
