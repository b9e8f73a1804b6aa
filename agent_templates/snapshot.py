"""What a template copies from an agent: an ALLOW-list, never a deny-list.

A field is in a template only if it is named here. Contact details (email, phone, WhatsApp),
the app and its key, websites, integrations' settings and secrets and every conversation
stay with the agent; of its integrations only the providers are kept, so a clone knows which
ones to connect.
"""

from collections.abc import Iterable, Mapping
from typing import Any

# Fields a clone takes, and an update may change, on the agent (agents.services.agent_update).
UPDATABLE_FIELDS = ("description", "avatar_url", "onboarding_data", "settings")
# Read from the agent into a version; `agent_type` is the clone's default type only.
AGENT_FIELDS = (*UPDATABLE_FIELDS, "agent_type")
# The snapshot's keys: the agent's fields above, and the providers of its integrations.
SNAPSHOT_KEYS = (*AGENT_FIELDS, "integrations")


def snapshot_of(agent: Any, providers: Iterable[str]) -> dict[str, Any]:
    """The document a version keeps of an agent: allow-listed fields and provider names."""
    document = {field: getattr(agent, field) for field in AGENT_FIELDS}
    document["integrations"] = sorted(set(providers))
    return document


def updatable_values(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The values a clone is given (and an update compares), from a version's snapshot."""
    return {field: snapshot.get(field) for field in UPDATABLE_FIELDS}
