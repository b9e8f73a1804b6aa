"""Write the audit trail. Called by the services that change what is audited, inside their
transaction, never by views or signals."""

import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from django.db import connection

from audit.actors import Actor
from audit.models import AuditEntry

REDACTED = "[redacted]"

FieldChanges = dict[str, dict[str, Any]]


def _redact(value: Any) -> Any:
    # Whether a value is set is worth knowing; what it is, for personal data, is not.
    return None if value in (None, "", {}, []) else REDACTED


def audit_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], *, redacted: Collection[str] = ()
) -> FieldChanges:
    """Return `{field: {"before", "after"}}` for each field whose value differs.

    A field in `redacted` (contact details, secrets, free-form personal data) is recorded as
    changed, with `"[redacted]"` in place of each value that is set.
    """
    changes: FieldChanges = {}
    for field in sorted({*before, *after}):
        old, new = before.get(field), after.get(field)
        # A form that saves "" where NULL was (or back) changes nothing a reader cares about.
        if old == new or (old in (None, "") and new in (None, "")):
            continue
        if field in redacted:
            old, new = _redact(old), _redact(new)
            if old is None and new is None:  # empty to empty, e.g. NULL to {}
                continue
        changes[field] = {"before": old, "after": new}
    return changes


class EntryContext(TypedDict, total=False):
    """Where a change belongs beside its target: the agent, the owner, and free context
    (the reason, the request)."""

    agent_id: uuid.UUID | str | None
    owner_id: str | None
    context: Mapping[str, Any] | None


def _entry(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: Any,
    changes: FieldChanges | None = None,
    **where: Unpack[EntryContext],
) -> AuditEntry:
    return AuditEntry(
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        agent_id=where.get("agent_id"),
        owner_id=where.get("owner_id"),
        changes=changes or {},
        context=dict(where.get("context") or {}),
    )


def _require_transaction() -> None:
    if not connection.in_atomic_block:
        raise RuntimeError(
            "The audit trail is written in the transaction of the change it records; "
            "call it inside transaction.atomic()."
        )


def audit_record(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: Any,
    changes: FieldChanges | None = None,
    **where: Unpack[EntryContext],
) -> AuditEntry:
    """Record one change, in the caller's transaction."""
    _require_transaction()
    entry = _entry(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        changes=changes,
        **where,
    )
    entry.save(force_insert=True)
    return entry


def audit_diff(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: Any,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    redacted: Collection[str] = (),
    **where: Unpack[EntryContext],
) -> AuditEntry | None:
    """Record what changed from `before` to `after` (see `audit_changes`), in the caller's
    transaction; record nothing, and return None, when nothing did."""
    changes = audit_changes(before, after, redacted=redacted)
    if not changes:
        return None
    return audit_record(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        changes=changes,
        **where,
    )


@dataclass(frozen=True)
class AuditedModel:
    """What the trail compares of one kind of row: its target type, the fields snapshot
    before and after a change, and those recorded only as changed (personal data)."""

    target_type: str
    fields: tuple[str, ...]
    redacted: frozenset[str] = frozenset()

    def snapshot(self, row: Any) -> dict[str, Any]:
        return {field: getattr(row, field) for field in self.fields}

    def record(
        self,
        row: Any,
        *,
        actor: Actor,
        action: str,
        before: Mapping[str, Any],
        after: Mapping[str, Any] | None = None,
        **where: Unpack[EntryContext],
    ) -> AuditEntry | None:
        """Record what changed in `row` since the snapshot `before` (to `after`, by default
        its snapshot now), in the caller's transaction; nothing when nothing did."""
        return audit_diff(
            actor=actor,
            action=action,
            target_type=self.target_type,
            target_id=row.pk,
            before=before,
            after=self.snapshot(row) if after is None else after,
            redacted=self.redacted,
            **where,
        )


def audit_record_many(entries: Iterable[Mapping[str, Any]]) -> int:
    """Record several changes in one INSERT (e.g. every agent of a deleted user)."""
    _require_transaction()
    rows = [_entry(**entry) for entry in entries]
    AuditEntry.objects.bulk_create(rows)
    return len(rows)
