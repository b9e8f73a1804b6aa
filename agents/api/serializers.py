import datetime as dt
from typing import Any

from rest_framework import serializers

from agents.handles import handle_problem
from agents.models import (
    HANDLE_MAX_LENGTH,
    A1Agent,
    AgentAccess,
    AgentMemberRole,
    AgentType,
    App,
)
from core.api_input import BoundedJSONField, StrictFieldsMixin
from core.api_output import iso_datetime

PHONE_REGEX = r"^\+?[0-9][0-9 ().-]{5,24}$"


class AppSerializer(serializers.ModelSerializer[App]):
    class Meta:
        model = App
        fields = ("id", "status", "key_prefix", "key_created_at")
        read_only_fields = fields


class AgentSerializer(serializers.ModelSerializer[A1Agent]):
    """An agent as its owner (or staff) sees it, contact details decrypted."""

    app = AppSerializer(read_only=True)
    team = serializers.CharField(
        source="team_id",
        read_only=True,
        allow_null=True,
        help_text="The Stack Auth team that owns the agent (then `owner_id` is the team's "
        "id too); null for your own agent.",
    )

    class Meta:
        model = A1Agent
        fields: tuple[str, ...] = (
            "id", "owner_id", "team", "name", "handle", "description", "avatar_url", "email",
            "phone_number", "whatsapp_number", "base_website", "custom_website",
            "onboarding_data", "settings", "status", "agent_type", "app", "created_at",
            "updated_at",
        )  # fmt: skip
        read_only_fields: tuple[str, ...] = fields


# The agents list reads `agents.selectors.AGENT_LIST_ROWS` with one SELECT and writes each
# row with agent_list_item: what AgentSerializer writes for the agent
# (tests/test_list_bodies.py), without DRF's fields built per request and walked per value.
def agent_list_item(row: dict[str, Any], zone: dt.tzinfo) -> dict[str, Any]:
    """An agent of the list, from its AGENT_LIST_ROWS, in AgentSerializer's field order;
    times in `zone` (the current time zone, as DRF writes them)."""
    return {
        "id": str(row["id"]),
        "owner_id": row["owner_id"],
        "team": row["team_id"],
        "name": row["name"],
        "handle": row["handle"],
        "description": row["description"],
        "avatar_url": row["avatar_url"],
        "email": row["email"],
        "phone_number": row["phone_number"],
        "whatsapp_number": row["whatsapp_number"],
        "base_website": row["base_website"],
        "custom_website": row["custom_website"],
        "onboarding_data": row["onboarding_data"],
        "settings": row["settings"],
        "status": row["status"],
        "agent_type": row["agent_type"],
        "app": {
            "id": str(row["app__id"]),
            "status": row["app__status"],
            "key_prefix": row["app__key_prefix"],
            "key_created_at": iso_datetime(row["app__key_created_at"], zone),
        },
        "created_at": iso_datetime(row["created_at"], zone),
        "updated_at": iso_datetime(row["updated_at"], zone),
    }


class AgentCreatedSerializer(AgentSerializer):
    """The answer to a create or a key rotation: the agent plus its app key, shown once."""

    app_key = serializers.CharField(
        read_only=True, help_text="The app's key. It is shown only now; store it safely."
    )

    class Meta(AgentSerializer.Meta):
        fields = (*AgentSerializer.Meta.fields, "app_key")
        read_only_fields = fields


class AgentWriteSerializer(StrictFieldsMixin, serializers.Serializer[A1Agent]):
    """What an owner may set on create (all) and update (any subset)."""

    name = serializers.CharField(max_length=200)
    handle = serializers.CharField(max_length=HANDLE_MAX_LENGTH)
    agent_type = serializers.ChoiceField(choices=AgentType.choices)
    description = serializers.CharField(
        max_length=5000, required=False, allow_null=True, allow_blank=True
    )
    avatar_url = serializers.URLField(max_length=2048, required=False, allow_null=True)
    email = serializers.EmailField(max_length=254, required=False, allow_null=True)
    phone_number = serializers.RegexField(
        PHONE_REGEX, max_length=25, required=False, allow_null=True
    )
    whatsapp_number = serializers.RegexField(
        PHONE_REGEX, max_length=25, required=False, allow_null=True
    )
    base_website = serializers.URLField(max_length=2048, required=False, allow_null=True)
    custom_website = serializers.URLField(max_length=2048, required=False, allow_null=True)
    onboarding_data = BoundedJSONField(required=False, allow_null=True)
    settings = BoundedJSONField(required=False, require_object=True)

    def validate_handle(self, value: str) -> str:
        problem = handle_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # An empty string means "no value" for optional text: store NULL, not "".
        return {key: (None if value == "" else value) for key, value in attrs.items()}


class AgentCreateSerializer(AgentWriteSerializer):
    """What an owner may set on create: the agent's fields and, for a team's agent, the team."""

    team = serializers.CharField(
        max_length=200,
        required=False,
        allow_null=True,
        help_text="A Stack Auth team you are a member of, with the editor role: the agent is "
        "then the team's and counts against the team's plan. Omitted or null: your own.",
    )


class PublicAgentSerializer(serializers.ModelSerializer[A1Agent]):
    """What anyone may see of an active agent: no contact details, owner or settings."""

    class Meta:
        model = A1Agent
        fields = (
            "id", "name", "handle", "description", "avatar_url", "agent_type",
            "base_website", "custom_website", "created_at",
        )  # fmt: skip
        read_only_fields = fields


class HandleAvailabilitySerializer(serializers.Serializer[Any]):
    handle = serializers.CharField()
    available = serializers.BooleanField()
    reason = serializers.ChoiceField(
        choices=["invalid", "reserved", "taken"],
        allow_null=True,
        help_text="Why the handle cannot be used; null when it is available.",
    )
    detail = serializers.CharField(allow_null=True)


class AgentMemberSerializer(serializers.Serializer[Any]):
    user_id = serializers.CharField(max_length=200, help_text="A Stack Auth user id.")
    role = serializers.ChoiceField(choices=AgentMemberRole.choices)


class AgentAccessSerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    """Who of its team may reach a team's agent."""

    access = serializers.ChoiceField(
        choices=AgentAccess.choices,
        help_text="`team`: every member, with their team role. `restricted`: the team's "
        "admins and the `members` listed, each with the lower of the role given here and "
        "their team role.",
    )
    members = serializers.ListField(child=AgentMemberSerializer(), required=False, max_length=500)

    def validate_members(self, value: list[dict[str, str]]) -> list[dict[str, str]]:
        user_ids = [member["user_id"] for member in value]
        if len(set(user_ids)) != len(user_ids):
            raise serializers.ValidationError("A member is listed twice.")
        return value


class AgentMoveSerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    team = serializers.CharField(
        max_length=200,
        allow_null=True,
        help_text="The team to move the agent to (you need the editor role there), or null "
        "to make it your own.",
    )
