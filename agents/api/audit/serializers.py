"""How an agent's audit trail looks to its owner."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import ActorKind, AuditEntry, TargetType


class AuditActorSerializer(serializers.Serializer[Any]):
    """Who made the change. Staff members are not named to customers (`id` is null)."""

    kind = serializers.ChoiceField(choices=ActorKind.choices)
    id = serializers.CharField(allow_null=True)


class AuditEntrySerializer(serializers.ModelSerializer[AuditEntry]):
    actor = serializers.SerializerMethodField()
    target_type = serializers.ChoiceField(choices=TargetType.choices)
    changes = serializers.SerializerMethodField(
        help_text='`{field: {"before": ..., "after": ...}}`; personal data and secrets read '
        '`"[redacted]"`.'
    )

    class Meta:
        model = AuditEntry
        fields = ("id", "created_at", "actor", "action", "target_type", "target_id", "changes")
        read_only_fields = fields

    @extend_schema_field(AuditActorSerializer)
    def get_actor(self, entry: AuditEntry) -> dict[str, Any]:
        hidden = entry.actor_kind == ActorKind.STAFF
        return {"kind": entry.actor_kind, "id": None if hidden else (entry.actor_id or None)}

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_changes(self, entry: AuditEntry) -> dict[str, Any]:
        return dict(entry.changes or {})
