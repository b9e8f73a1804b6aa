"""Which fields an update of a cloned agent changes, and which it keeps.

Three values per field: `base`, what the template gave the agent (the link's `cloned`);
`current`, the agent's value now; `new`, the template's latest version. A field the
template did not change is left alone. One it changed is updated unless the owner edited
it since (`current != base`); the owner may name such fields to overwrite them anyway.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from agent_templates.snapshot import UPDATABLE_FIELDS


@dataclass(frozen=True)
class FieldChange:
    field: str
    current: Any
    new: Any
    edited: bool  # the owner changed it since the clone (or the last applied update)
    applied: bool  # what applying the update does with it


def planned_changes(
    *,
    base: Mapping[str, Any],
    current: Mapping[str, Any],
    new: Mapping[str, Any],
    overwrite: Collection[str] = (),
) -> list[FieldChange]:
    """The fields the latest version changes, each with whether applying would set it."""
    changes = []
    for field in UPDATABLE_FIELDS:
        if base.get(field) == new.get(field):
            continue
        edited = current.get(field) != base.get(field)
        changes.append(
            FieldChange(
                field=field,
                current=current.get(field),
                new=new.get(field),
                edited=edited,
                applied=(not edited or field in overwrite) and current.get(field) != new.get(field),
            )
        )
    return changes


def update_preview(
    agent: Any,
    cloned: Mapping[str, Any],
    snapshot: Mapping[str, Any],
    overwrite: Collection[str] = (),
) -> list[FieldChange]:
    """What bringing the agent from `cloned` to a version's `snapshot` would change."""
    return planned_changes(
        base=cloned,
        current={field: getattr(agent, field) for field in UPDATABLE_FIELDS},
        new={field: snapshot.get(field) for field in UPDATABLE_FIELDS},
        overwrite=overwrite,
    )
