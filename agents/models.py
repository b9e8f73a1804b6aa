"""A1Agent and its App: the seed's `a1_agents` and the existing `apps` table.

The two rows point at each other (`a1_agents.app_id`, `apps.agent_id`, both unique) and
cascade both ways in the database, so deleting either removes the pair and everything under
the agent. Django's `on_delete` is `DO_NOTHING` on purpose: PostgreSQL does the cascade in
one statement (see `a1zap.db_cascade`).
"""

import uuid

from django.contrib.postgres.functions import RandomUUID, TransactionNow
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length, Lower
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual

from core.encryption import EncryptedTextField
from teams.models import owning_team, team_is_owner


class AgentStatus(models.TextChoices):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class AgentType(models.TextChoices):
    PERSONAL = "personal"
    WORK = "work"


class AgentAccess(models.TextChoices):
    """Who of a team may reach a team's agent (docs/teams.md)."""

    TEAM = "team"  # every member, with their team role
    RESTRICTED = "restricted"  # the team's admins and the members listed in agent_members


class AgentMemberRole(models.TextChoices):
    VIEWER = "viewer"
    EDITOR = "editor"
    MANAGER = "manager"


class AppStatus(models.TextChoices):
    ACTIVE = "active"
    SUSPENDED = "suspended"


HANDLE_PATTERN = r"^[a-zA-Z0-9_]+$"
HANDLE_MIN_LENGTH = 3
HANDLE_MAX_LENGTH = 30


class App(models.Model):
    """The server that runs one agent. It authenticates with a key of which only a hash is kept."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    agent = models.OneToOneField(
        "agents.A1Agent",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_column="agent_id",
        related_name="+",
    )
    status = models.TextField(
        choices=AppStatus.choices, default=AppStatus.ACTIVE, db_default=AppStatus.ACTIVE
    )
    # The first characters of the key, shown to owners and staff to tell keys apart.
    key_prefix = models.TextField(blank=True, default="", db_default="")
    # SHA-256 of the whole key; keys are long random strings, so a fast hash is enough.
    key_hash = models.TextField(null=True, blank=True)
    key_created_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())

    class Meta:
        db_table = "apps"
        constraints = [
            models.UniqueConstraint(fields=["key_hash"], name="apps_key_hash_key"),
            models.CheckConstraint(
                condition=Q(status__in=AppStatus.values), name="apps_valid_status"
            ),
        ]

    def __str__(self) -> str:
        return f"app {self.key_prefix or self.id}"


class A1Agent(models.Model):
    """An AI agent with a public @handle, owned by a Stack Auth user or a Stack Auth team."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    # The account that owns the agent: a user's id, or for a team's agent the team's id.
    owner_id = models.TextField()
    # Beyond the seed: the owning team, if a team owns it (teams.models.owning_team); the
    # partial index below serves it, as most agents have no team.
    team = owning_team()
    app = models.OneToOneField(
        App, on_delete=models.DO_NOTHING, db_column="app_id", related_name="+"
    )

    name = models.TextField()
    handle = models.TextField()
    description = models.TextField(null=True, blank=True)
    avatar_url = models.TextField(null=True, blank=True)

    # Contact details are Fernet ciphertext at rest (see core.encryption); `email_hash` is
    # a keyed hash of the normalised email so staff can find an agent by exact email.
    email = EncryptedTextField(null=True, blank=True)
    phone_number = EncryptedTextField(null=True, blank=True)
    whatsapp_number = EncryptedTextField(null=True, blank=True)
    email_hash = models.TextField(null=True, blank=True, editable=False)

    base_website = models.TextField(null=True, blank=True)
    custom_website = models.TextField(null=True, blank=True)

    # Beyond the seed: a team's agent may be restricted to chosen members (agent_members).
    access = models.TextField(
        choices=AgentAccess.choices, default=AgentAccess.TEAM, db_default=AgentAccess.TEAM
    )

    onboarding_data = models.JSONField(null=True, blank=True)
    settings = models.JSONField(null=True, blank=True, default=dict, db_default={})

    status = models.TextField(
        null=True,
        choices=AgentStatus.choices,
        default=AgentStatus.ACTIVE,
        db_default=AgentStatus.ACTIVE,
    )
    agent_type = models.TextField(choices=AgentType.choices)

    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())

    class Meta:
        db_table = "a1_agents"
        verbose_name = "agent"
        # Staff actions beyond add/change/delete/view (checked by the admin; see audit.roles).
        permissions = [
            ("pause_agent", "Can pause and resume agents"),
            ("archive_agent", "Can archive agents"),
            ("rotate_app_key", "Can rotate an agent's app key"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(agent_type__in=AgentType.values), name="valid_agent_type"
            ),
            models.CheckConstraint(condition=Q(status__in=AgentStatus.values), name="valid_status"),
            models.CheckConstraint(condition=Q(handle__regex=HANDLE_PATTERN), name="valid_handle"),
            models.CheckConstraint(
                condition=Q(
                    GreaterThanOrEqual(Length("handle"), HANDLE_MIN_LENGTH),
                    LessThanOrEqual(Length("handle"), HANDLE_MAX_LENGTH),
                ),
                name="valid_handle_length",
            ),
            # A plain UNIQUE constraint, not `unique=True`, which would add a redundant
            # text_pattern_ops index.
            models.UniqueConstraint(fields=["handle"], name="a1_agents_handle_key"),
            # Handles are unique without regard to case; this index also serves lookups.
            models.UniqueConstraint(Lower("handle"), name="a1_agents_handle_lower_key"),
            team_is_owner("a1_agents_team_is_owner"),
            # Only a team's agent is restricted to some of its members.
            models.CheckConstraint(
                condition=Q(access=AgentAccess.TEAM)
                | Q(access=AgentAccess.RESTRICTED, team__isnull=False),
                name="a1_agents_valid_access",
            ),
        ]
        indexes = [
            models.Index(fields=["owner_id"], name="idx_a1_agents_owner_id"),
            models.Index(fields=["handle"], name="idx_a1_agents_handle"),
            models.Index(fields=["status"], name="idx_a1_agents_status"),
            models.Index(fields=["email_hash"], name="idx_a1_agents_email_hash"),
            models.Index(
                fields=["team"], condition=Q(team__isnull=False), name="idx_a1_agents_team_id"
            ),
        ]

    def __str__(self) -> str:
        return f"@{self.handle}"


class AgentMember(models.Model):
    """A member of a restricted team agent's team who may reach it, with a role on it.

    Their role on the agent is the lower of this one and their team role; the team's admins
    reach every agent of the team whatever this table says (docs/teams.md).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    agent = models.ForeignKey(
        A1Agent,
        on_delete=models.DO_NOTHING,  # the database cascades
        db_column="agent_id",
        related_name="members",
        db_index=False,  # the unique (agent, user_id) index serves it
    )
    user_id = models.TextField()
    role = models.TextField(choices=AgentMemberRole.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())

    class Meta:
        db_table = "agent_members"
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "user_id"], name="agent_members_agent_user_key"
            ),
            models.CheckConstraint(
                condition=Q(role__in=AgentMemberRole.values), name="agent_members_valid_role"
            ),
        ]
        indexes = [
            # The restricted agents a user is listed on, read by every list they make.
            models.Index(fields=["user_id", "agent"], name="idx_agent_members_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.agent_id} as {self.role}"
