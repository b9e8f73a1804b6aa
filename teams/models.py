"""Team, TeamMembership, TeamMemberPermission: a mirror of Stack Auth's teams.

Stack Auth is the source of truth; these rows are what its webhooks last told us, written
only by `teams.services`. Nothing is ever deleted: a deleted team, a removed member and a
revoked permission are rows marked so, which keeps a late message from bringing them back.
Each row keeps the message that last set it (when Stack Auth created it and its Svix id),
so an older message arriving late is not applied over a newer one (see docs/teams.md).
"""

import uuid

from django.contrib.postgres.functions import RandomUUID, TransactionNow
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from core.constraints import both_or_neither


class Team(models.Model):
    """A Stack Auth team as its last webhook described it; a tombstone once deleted."""

    # Stack Auth's team id; also the `owner_id` of the team's agents and the `user_id` of
    # its subscription (docs/teams.md).
    id = models.TextField(primary_key=True)
    # Null until a team.created/updated arrives (a membership may come first).
    display_name = models.TextField(null=True, blank=True)
    profile_image_url = models.TextField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())
    deleted_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_event_id = models.TextField(null=True, blank=True, db_collation="C")

    class Meta:
        db_table = "teams"
        constraints = [
            both_or_neither("teams_last_event_complete", "last_event_at", "last_event_id")
        ]
        # Staff find a team by its name in any case (console).
        indexes = [models.Index(Lower("display_name"), name="idx_teams_name_lower")]

    def __str__(self) -> str:
        return self.display_name or self.id


def owning_team() -> "models.ForeignKey[Team | None, Team | None]":
    """The `team` column of a row a user or a team owns (an agent, a template): set when
    the owner is a team, whose id is then the row's `owner_id` (team_is_owner holds it;
    docs/teams.md). A team's row is never deleted (a tombstone), so no cascade is needed."""
    return models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_column="team_id",
        related_name="+",
        db_index=False,
    )


def team_is_owner(name: str) -> models.CheckConstraint:
    """A team's row is owned by the team: everything keyed by the owner (limits, the
    subscription, usage, the close) is then the team's."""
    return models.CheckConstraint(
        condition=Q(team__isnull=True) | Q(owner_id=F("team_id")), name=name
    )


class TeamMembership(models.Model):
    """A user's membership of a team; `is_member` false once they were removed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    team = models.ForeignKey(
        Team, on_delete=models.DO_NOTHING, db_column="team_id", related_name="memberships"
    )
    user_id = models.TextField()
    is_member = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())
    last_event_at = models.DateTimeField()
    last_event_id = models.TextField(db_collation="C")
    # The message of the last removal (a team_membership.deleted, or the user's deletion),
    # kept after they are added back: a permission message older than it belongs to an
    # earlier membership and is refused.
    removed_event_at = models.DateTimeField(null=True, blank=True)
    removed_event_id = models.TextField(null=True, blank=True, db_collation="C")

    class Meta:
        db_table = "team_memberships"
        constraints = [
            models.UniqueConstraint(
                fields=["team", "user_id"], name="team_memberships_team_user_key"
            ),
            both_or_neither(
                "team_memberships_removed_event_complete", "removed_event_at", "removed_event_id"
            ),
        ]
        indexes = [
            # The teams of a caller, read on every request that lists or names an agent.
            models.Index(
                fields=["user_id", "team"],
                condition=Q(is_member=True),
                name="idx_team_memberships_member",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.team_id}"


class TeamMemberPermission(models.Model):
    """A team permission (Stack Auth's id) of one member; `granted` false once revoked."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    team = models.ForeignKey(
        Team, on_delete=models.DO_NOTHING, db_column="team_id", related_name="permissions"
    )
    user_id = models.TextField()
    permission_id = models.TextField()
    granted = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())
    last_event_at = models.DateTimeField()
    last_event_id = models.TextField(db_collation="C")

    class Meta:
        db_table = "team_member_permissions"
        constraints = [
            # Its index also serves reading one member's permissions (team_id, user_id).
            models.UniqueConstraint(
                fields=["team", "user_id", "permission_id"],
                name="team_member_permissions_key",
            ),
            models.CheckConstraint(
                condition=~Q(permission_id=""), name="team_member_permissions_id_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.permission_id} of {self.user_id} in {self.team_id}"
