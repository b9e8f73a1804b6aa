"""Writes to agents and their apps: creation, lifecycle, keys, deletion.

Every rule about agents lives here, so the API, the admin and webhooks share one behaviour.
Plan limits hold under concurrency because every service that can add to an owner's count
first locks the owner's subscription row (creating it if missing), then the agent it changes,
and only then reads the agent's status and type and counts: two requests racing for the last
slot, or a resume racing a change of type, run one after the other and the second decides
from what the first left. Locks are always taken in the same order, subscription first, then
the agent, so two services never wait on each other in a cycle.

Every change is recorded in the audit trail in the same transaction, with the `actor` the
caller passes (the owner, the app, a staff member; `system` when none is given). Contact
details and free-form data are recorded as changed, never with their values.
"""

import uuid
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agents.app_keys import app_key_generate
from agents.errors import (
    AgentLimitReached,
    AgentMoved,
    FieldInvalid,
    InvalidStatusTransition,
    NotATeamAgent,
    OwnerIsATeam,
)
from agents.handles import handle_problem
from agents.locks import agent_lock
from agents.models import A1Agent, AgentAccess, AgentMember, AgentStatus, App
from agents.selectors import agent_access_members, agent_counts_for_owner, agent_role_of
from audit.actors import SYSTEM, Actor
from audit.models import TargetType
from audit.services import AuditedModel, audit_changes, audit_diff, audit_record_many
from billing.models import UserSubscription
from billing.selectors import AgentLimits, agent_limits_for
from billing.services import subscription_lock_for_user
from core.encryption import KeyRotation, lookup_hash
from notifications.events import event_emit
from teams.errors import TeamNotFound, TeamRoleTooLow
from teams.locks import team_hold
from teams.roles import Role
from teams.selectors import current_members, member_role, team_get

# Fields an owner may change with agent_update; status moves only through the lifecycle.
UPDATABLE_FIELDS = frozenset(
    {
        "name", "handle", "description", "avatar_url", "email", "phone_number",
        "whatsapp_number", "base_website", "custom_website", "onboarding_data", "settings",
        "agent_type",
    }
)  # fmt: skip
AUDITED_FIELDS = (*sorted(UPDATABLE_FIELDS), "status", "owner_id", "team_id")
# Personal data and free-form documents: the trail says that they changed, not to what.
REDACTED_FIELDS = frozenset(
    {"email", "phone_number", "whatsapp_number", "onboarding_data", "settings"}
)


AGENT_TRAIL = AuditedModel(TargetType.AGENT, AUDITED_FIELDS, REDACTED_FIELDS)
_snapshot = AGENT_TRAIL.snapshot


def _record(
    agent: A1Agent,
    *,
    actor: Actor,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any] | None = None,
) -> None:
    AGENT_TRAIL.record(
        agent,
        actor=actor,
        action=action,
        before=before,
        after=after,
        agent_id=agent.pk,
        owner_id=agent.owner_id,
    )
    # The owner's webhooks hear of it in the same transaction (an outbox row).
    event_emit(owner_id=agent.owner_id, event_type=action, data=agent_event_data(agent))


# What an agent.* webhook tells the owner of the agent (no contact details, no documents).
AGENT_EVENT_FIELDS = ("id", "owner_id", "name", "handle", "agent_type", "status")


def agent_event_data(agent: A1Agent) -> dict[str, Any]:
    """The `data` of an agent.* event."""
    return {field: getattr(agent, field) for field in AGENT_EVENT_FIELDS}


def _ensure_room_for(
    subscription: UserSubscription,
    *,
    agent_type: str,
    excluding_agent_id: uuid.UUID | None = None,
) -> None:
    """Refuse if one more agent of this type won't fit in the plan of the locked subscription.

    `excluding_agent_id` is the agent being resumed or retyped: it is counted as the new one.
    The caller holds the subscription's lock (and that agent's), so the count cannot move.
    """
    limits = agent_limits_for(subscription)
    counts = agent_counts_for_owner(subscription.user_id, excluding_agent_id=excluding_agent_id)
    for scope, limit in ((agent_type, limits.for_type(agent_type)), ("total", limits.total)):
        if not AgentLimits.allows(limit, counts[scope] + 1):
            kind = "agents in total" if scope == "total" else f"{scope} agents"
            raise AgentLimitReached(
                f"The {subscription.plan_id} plan allows {limit} {kind} that are not archived;"
                f" you have {counts[scope]}.",
                limit=limit,
                count=counts[scope],
                scope=scope,
                plan=subscription.plan_id,
            )


def _check_handle(handle: str) -> None:
    problem = handle_problem(handle)
    if problem:
        raise FieldInvalid("handle", problem)


def _save_catching_taken_handle(agent: A1Agent, **save_kwargs: Any) -> None:
    """Save, turning a unique-handle violation (a race or a case clash) into a 400."""
    try:
        with transaction.atomic():
            agent.save(**save_kwargs)
    except IntegrityError as error:
        if "handle" in str(error):
            raise FieldInvalid("handle", "This handle is already taken.") from None
        if "a1_agents_owner_not_a_team" in str(error):  # the trigger, behind agent_create's check
            raise OwnerIsATeam() from None
        raise


@transaction.atomic
def agent_create(
    *,
    owner_id: str,
    name: str,
    handle: str,
    agent_type: str,
    team_id: str | None = None,
    member_id: str | None = None,
    actor: Actor = SYSTEM,
    **fields: Any,
) -> tuple[A1Agent, str]:
    """Create the agent and its app in one transaction; return the agent and the app key.

    With `team_id` the agent is the team's (`owner_id` must be the team's id) and counts
    against the team's plan; `member_id`, the user creating it, must be a member with the
    editor role; an `owner_id` that is a team's id without `team_id` is refused
    (OwnerIsATeam; the database's trigger says the same). The team's row is share-locked
    first, so a removal or the team's deletion (which lock it FOR UPDATE) comes wholly before
    or after. The key is returned here only;
    just its hash and a short prefix are stored.
    """
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"agent_create() got unexpected fields: {sorted(unknown)}")
    if team_id is not None and owner_id != team_id:
        raise TypeError("agent_create(): a team's agent is owned by the team (owner_id=team_id)")
    _check_handle(handle)
    if team_id is None and team_get(owner_id) is not None:
        raise OwnerIsATeam()
    if team_id is not None:
        if not team_hold(team_id):
            raise TeamNotFound()
        if member_id is not None:
            role = member_role(team_id=team_id, user_id=member_id)
            if role is None:
                raise TeamNotFound()
            if role < Role.EDITOR:
                raise TeamRoleTooLow("Creating a team's agent needs the editor role in the team.")
    subscription = subscription_lock_for_user(user_id=owner_id, actor=actor)
    _ensure_room_for(subscription, agent_type=agent_type)

    key = app_key_generate()
    agent_id = uuid.uuid4()
    # The two rows point at each other; the foreign keys are deferred to commit time.
    app = App.objects.create(
        agent_id=agent_id, key_prefix=key.prefix, key_hash=key.hash, key_created_at=timezone.now()
    )
    agent = A1Agent(
        id=agent_id,
        owner_id=owner_id,
        team_id=team_id,
        app=app,
        name=name,
        handle=handle,
        agent_type=agent_type,
        **fields,
    )
    agent.email_hash = lookup_hash(agent.email)
    _save_catching_taken_handle(agent, force_insert=True)
    _record(
        agent,
        actor=actor,
        action="agent.created",
        before={},
        after={**_snapshot(agent), "app_id": app.pk, "app_key_prefix": key.prefix},
    )
    return agent, key.plaintext


def _locked(agent: A1Agent) -> A1Agent:
    """Lock the agent and read it afresh; AgentMoved (409) if its owner or team is no longer
    the caller's copy's. The caller was authorised on that copy (the view's role check, the
    subscription locked for its owner): a move in between would have the decision made in
    the account the agent has left. Retrying with the new owner would need the caller's
    role there, which only a new request checks."""
    fresh = agent_lock(agent.pk)
    if (fresh.owner_id, fresh.team_id) != (agent.owner_id, agent.team_id):
        raise AgentMoved()
    return fresh


def _locked_with_subscription(agent: A1Agent, *, actor: Actor) -> tuple[UserSubscription, A1Agent]:
    """Lock the owner's subscription, then the agent; return both, the agent read afresh.

    Whatever the caller read before (the view's copy of the agent) may be stale by now:
    decisions about status and type are made from the agent returned here, and an agent
    moved to another account meanwhile is AgentMoved (409), since the subscription locked
    and counted would be the account it left.
    """
    subscription = subscription_lock_for_user(user_id=agent.owner_id, actor=actor)
    return subscription, _locked(agent)


@transaction.atomic
def agent_update(*, agent: A1Agent, actor: Actor = SYSTEM, **changes: Any) -> A1Agent:
    """Change an agent's details; a new handle or type is checked like a new agent's."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"agent_update() got unexpected fields: {sorted(unknown)}")
    new_type = changes.get("agent_type")
    if new_type is None:
        agent = _locked(agent)
    else:
        subscription, agent = _locked_with_subscription(agent, actor=actor)
        if new_type != agent.agent_type and agent.status != AgentStatus.ARCHIVED:
            _ensure_room_for(subscription, agent_type=new_type, excluding_agent_id=agent.pk)
    if "handle" in changes and changes["handle"] != agent.handle:
        _check_handle(changes["handle"])
    before = _snapshot(agent)
    for field, value in changes.items():
        setattr(agent, field, value)
    if "email" in changes:
        agent.email_hash = lookup_hash(agent.email)
    _save_catching_taken_handle(agent)
    _record(agent, actor=actor, action="agent.updated", before=before)
    return agent


def _move_status(agent: A1Agent, *, to: str, action: str, actor: Actor) -> A1Agent:
    """Move the locked agent to status `to`, saved and recorded in the audit trail; an agent
    already there is returned as it is. The caller has locked it and checked the move."""
    if agent.status == to:
        return agent
    before = _snapshot(agent)
    agent.status = to
    agent.save(update_fields=["status", "updated_at"])
    _record(agent, actor=actor, action=action, before=before)
    return agent


@transaction.atomic
def agent_pause(*, agent: A1Agent, actor: Actor = SYSTEM) -> A1Agent:
    """Stop the agent: its app's usage and messages are refused and it accrues no billing."""
    agent = _locked(agent)
    if agent.status == AgentStatus.ARCHIVED:
        raise InvalidStatusTransition("An archived agent cannot be paused; resume it first.")
    return _move_status(agent, to=AgentStatus.PAUSED, action="agent.paused", actor=actor)


@transaction.atomic
def agent_resume(*, agent: A1Agent, actor: Actor = SYSTEM) -> A1Agent:
    """Make a paused or archived agent active again, if the owner's plan has room for it."""
    subscription, agent = _locked_with_subscription(agent, actor=actor)
    if agent.status != AgentStatus.ACTIVE:
        _ensure_room_for(subscription, agent_type=agent.agent_type, excluding_agent_id=agent.pk)
    return _move_status(agent, to=AgentStatus.ACTIVE, action="agent.resumed", actor=actor)


@transaction.atomic
def agent_archive(*, agent: A1Agent, actor: Actor = SYSTEM) -> A1Agent:
    """Archive the agent: it keeps its data, stops working and frees its slot in the plan."""
    return _move_status(
        _locked(agent), to=AgentStatus.ARCHIVED, action="agent.archived", actor=actor
    )


@transaction.atomic
def agent_rotate_key(*, agent: A1Agent, actor: Actor = SYSTEM) -> tuple[A1Agent, str]:
    """Give the agent's app a new key; the old one stops working when this commits."""
    agent = _locked(agent)
    previous_prefix = agent.app.key_prefix
    key = app_key_generate()
    App.objects.filter(pk=agent.app_id).update(
        key_prefix=key.prefix,
        key_hash=key.hash,
        key_created_at=timezone.now(),
        updated_at=timezone.now(),
    )
    agent.app.refresh_from_db()
    audit_diff(
        actor=actor,
        action="app_key.rotated",
        target_type=TargetType.APP_KEY,
        target_id=agent.app_id,
        # The prefix tells keys apart; the hash and the key itself are never recorded.
        before={"key_prefix": previous_prefix},
        after={"key_prefix": key.prefix},
        agent_id=agent.pk,
        owner_id=agent.owner_id,
    )
    return agent, key.plaintext


@transaction.atomic
def agent_access_set(
    *, agent: A1Agent, access: str, members: dict[str, str], actor: Actor = SYSTEM
) -> A1Agent:
    """Set who of its team may reach a team's agent: every member (`team`, no `members`), or
    only the team's admins and `members` (user id -> viewer, editor or manager), each with
    the lower of that role and their team role (`restricted`). Recorded in the audit trail.

    Everyone listed must be a member of the team now. A member removed from the team later
    loses the agent with the team; listed again if they come back.
    """
    if agent.team_id is None:
        raise NotATeamAgent()
    # The caller's admin role was checked in the copy's team: moved out or to another team
    # meanwhile, the agent is AgentMoved (409) rather than changed by the old team's admin.
    agent = _locked(agent)
    if access == AgentAccess.TEAM and members:
        raise FieldInvalid("members", "Only a restricted agent lists members.")
    assert agent.team_id is not None
    outsiders = sorted(set(members) - current_members(agent.team_id, members))
    if outsiders:
        raise FieldInvalid("members", f"Not members of the agent's team: {', '.join(outsiders)}.")
    before = {"access": agent.access, "members": {
        row["user_id"]: row["role"] for row in agent_access_members(agent.pk)
    }}  # fmt: skip
    AgentMember.objects.filter(agent_id=agent.pk).delete()
    AgentMember.objects.bulk_create(
        AgentMember(agent_id=agent.pk, user_id=user_id, role=role)
        for user_id, role in sorted(members.items())
    )
    agent.access = access
    agent.save(update_fields=["access", "updated_at"])
    audit_diff(
        actor=actor,
        action="agent.access_changed",
        target_type=TargetType.AGENT,
        target_id=agent.pk,
        before=before,
        after={"access": access, "members": dict(sorted(members.items()))},
        agent_id=agent.pk,
        owner_id=agent.owner_id,
    )
    return agent


def _team_role_at_least(team_id: str, user_id: str, needs: Role, what: str) -> None:
    role = member_role(team_id=team_id, user_id=user_id)
    if role is None:
        raise TeamNotFound()
    if role < needs:
        raise TeamRoleTooLow(f"{what} needs the {needs.name.lower()} role in the team.")


@transaction.atomic
def agent_move(
    *, agent: A1Agent, to_team_id: str | None, member_id: str, actor: Actor = SYSTEM
) -> A1Agent:
    """Move the agent to a team (`to_team_id`) or to `member_id`'s own account (None).

    `member_id` must own the agent, or have the manager role on a team's agent; moving into
    a team needs the editor role there. Under the locks creation takes, in its order (the
    teams' rows, the receiving account's subscription, the agent), the receiving account
    must have room for the agent (an archived one always fits). Everything under the agent
    goes with it; its daily usage rows stay on it, the months already closed stay billed to
    whoever was billed, and the monthly counters stay with the account that counted them
    (the close bills those counters: the month in progress is split at the move).
    Access rules are a team's: the agent arrives open to all (`team`). Recorded in the
    audit trail as `agent.moved`.
    """
    source_owner, source_team = agent.owner_id, agent.team_id
    target_owner = to_team_id or member_id
    if target_owner == source_owner:
        return agent
    for team_id in sorted(team for team in (source_team, to_team_id) if team is not None):
        if not team_hold(team_id) and team_id == to_team_id:
            raise TeamNotFound()
    role = agent_role_of(member_id, agent)
    if role is None:
        raise TeamNotFound("No such agent.")
    if role < Role.MANAGER:
        raise TeamRoleTooLow("Moving a team's agent out needs the manager role in the team.")
    if to_team_id is not None:
        _team_role_at_least(to_team_id, member_id, Role.EDITOR, "Moving an agent into a team")
    subscription = subscription_lock_for_user(user_id=target_owner, actor=actor)
    agent = _locked(agent)  # AgentMoved if another move came first
    if agent.status != AgentStatus.ARCHIVED:
        _ensure_room_for(subscription, agent_type=agent.agent_type)
    before = _snapshot(agent)
    agent.owner_id, agent.team_id = target_owner, to_team_id
    agent.access = AgentAccess.TEAM
    AgentMember.objects.filter(agent_id=agent.pk).delete()
    agent.save(update_fields=["owner_id", "team", "access", "updated_at"])
    AGENT_TRAIL.record(
        agent, actor=actor, action="agent.moved", before=before, agent_id=agent.pk,
        owner_id=agent.owner_id,
    )  # fmt: skip
    # The receiving account's webhooks hear of it as a change of the agent (its owner_id).
    event_emit(owner_id=agent.owner_id, event_type="agent.updated", data=agent_event_data(agent))
    return agent


# Keyset batches by id, the stored ciphertext as it is (the model's fields decrypt on read).
CONTACTS_BATCH = """
SELECT id, email, phone_number, whatsapp_number FROM a1_agents
WHERE %(last)s::uuid IS NULL OR id > %(last)s::uuid
ORDER BY id LIMIT %(limit)s
"""
CONTACT_COLUMNS = ("email", "phone_number", "whatsapp_number")


@transaction.atomic
def agent_contacts_reencrypt(
    *, after_id: uuid.UUID | None, limit: int, rotation: KeyRotation, dry_run: bool = False
) -> list[uuid.UUID]:
    """Move one batch of agents' contact fields (ids after `after_id`) to the newest key, in
    its own transaction; return the ids of the batch, in order.

    The batch stays locked until its new values commit, FOR NO KEY UPDATE like the UPDATE
    itself: rows of other tables may still reference the agents meanwhile.
    """
    lock = "" if dry_run else " FOR NO KEY UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(CONTACTS_BATCH + lock, {"last": after_id, "limit": limit})
        rows = cursor.fetchall()
        changes = []
        for agent_id, *values in rows:
            new_values = [
                rotation.rotated(value, f"a1_agents.{column} of {agent_id}")
                for column, value in zip(CONTACT_COLUMNS, values, strict=True)
            ]
            if any(value is not None for value in new_values):
                changes.append((*new_values, agent_id))
        if changes and not dry_run:
            # COALESCE keeps the columns that needed no change.
            cursor.executemany(
                """
                UPDATE a1_agents SET email = COALESCE(%s, email),
                    phone_number = COALESCE(%s, phone_number),
                    whatsapp_number = COALESCE(%s, whatsapp_number)
                WHERE id = %s
                """,
                changes,
            )
    return [row[0] for row in rows]


# What the trail keeps of a deleted agent (no personal data).
DELETED_SNAPSHOT_COLUMNS = ("id", "owner_id", "handle", "name", "agent_type", "status")


def _delete_returning(where: str, params: list[Any]) -> list[dict[str, Any]]:
    """Delete agents in one statement (the database cascades to everything under them) and
    return what the audit trail keeps of each."""
    columns = ", ".join(DELETED_SNAPSHOT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM a1_agents WHERE {where} RETURNING {columns}", params)  # noqa: S608
        return [dict(zip(DELETED_SNAPSHOT_COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def _record_deleted(deleted: list[dict[str, Any]], *, actor: Actor) -> None:
    audit_record_many(
        {
            "actor": actor,
            "action": "agent.deleted",
            "target_type": TargetType.AGENT,
            "target_id": row["id"],
            "agent_id": row["id"],
            "owner_id": row["owner_id"],
            "changes": audit_changes(
                {field: row[field] for field in ("handle", "name", "agent_type", "status")}, {}
            ),
        }
        for row in deleted
    )
    for row in deleted:
        event_emit(
            owner_id=row["owner_id"],
            event_type="agent.deleted",
            data={field: row[field] for field in AGENT_EVENT_FIELDS},
        )


@transaction.atomic
def agent_delete(*, agent: A1Agent, actor: Actor = SYSTEM) -> None:
    """Delete the agent, its app and all its data in one statement (the database cascades)."""
    _record_deleted(_delete_returning("id = %s", [agent.pk]), actor=actor)


@transaction.atomic
def agent_delete_all_for_owner(*, owner_id: str, actor: Actor = SYSTEM) -> int:
    """Delete every agent of an owner with its app and all its data; return how many."""
    deleted = _delete_returning("owner_id = %s", [owner_id])
    _record_deleted(deleted, actor=actor)
    return len(deleted)
