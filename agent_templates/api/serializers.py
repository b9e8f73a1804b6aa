"""What the templates API takes and gives. Nothing here can carry an agent's secrets: the
content of a template is a version's snapshot, built from an allow-list
(`agent_templates.snapshot`)."""

from typing import Any

from rest_framework import serializers

from agent_templates.models import Category, ModerationStatus, Visibility
from agent_templates.snapshot import UPDATABLE_FIELDS
from agents.handles import handle_problem
from agents.models import HANDLE_MAX_LENGTH, AgentType
from core.api_input import StrictFieldsMixin, text_problem

TAG_REGEX = r"^[a-z0-9][a-z0-9-]{0,29}$"
MAX_TAGS = 10
ORDERS = {"popular": ("-clone_count", "-id"), "recent": ("-published_at", "-id")}


class _Text(serializers.CharField):
    """Client text that PostgreSQL can store (no NUL, no lone surrogate)."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        problem = text_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


def _tags_field(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.RegexField(
            TAG_REGEX, error_messages={"invalid": "Tags are 1 to 30 of a-z, 0-9 and -."}
        ),
        max_length=MAX_TAGS,
        **kwargs,
    )


class TemplateCreateSerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    agent = serializers.UUIDField(help_text="Your agent the template is made from.")
    slug = serializers.CharField(max_length=HANDLE_MAX_LENGTH, help_text="Follows handle rules.")
    name = _Text(max_length=200)
    description = _Text(max_length=2000, required=False, allow_blank=True)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    tags = _tags_field(required=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    changelog = _Text(max_length=500, required=False, allow_blank=True)

    def validate_slug(self, value: str) -> str:
        problem = handle_problem(value)
        if problem:
            raise serializers.ValidationError(f"Slugs follow the rules of handles: {problem}")
        return value


class TemplateUpdateSerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    name = _Text(max_length=200, required=False)
    description = _Text(max_length=2000, required=False, allow_blank=True)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    tags = _tags_field(required=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class VersionCreateSerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    changelog = _Text(max_length=500, help_text="One line: what changed.")
    agent = serializers.UUIDField(
        required=False, help_text="Your agent to publish from; the template's own by default."
    )


class CloneSerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    handle = serializers.CharField(max_length=HANDLE_MAX_LENGTH)
    team = serializers.CharField(
        max_length=200,
        required=False,
        allow_null=True,
        help_text="A Stack Auth team you are a member of, with the editor role: the agent is "
        "then the team's and counts against the team's plan, as with `POST /api/v1/agents/`. "
        "Omitted or null: your own.",
    )
    name = _Text(max_length=200, required=False)
    agent_type = serializers.ChoiceField(
        choices=AgentType.choices, required=False, help_text="The template's type by default."
    )

    def validate_handle(self, value: str) -> str:
        problem = handle_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class ReportCreateSerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    reason = _Text(max_length=2000)


class ReportSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class ApplySerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    overwrite = serializers.ListField(
        child=serializers.ChoiceField(choices=UPDATABLE_FIELDS),
        required=False,
        default=list,
        help_text="Fields you edited since cloning to overwrite with the template's anyway.",
    )


class TemplateListQuerySerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    owner = serializers.ChoiceField(
        choices=["me"],
        required=False,
        help_text="`me`: your own templates in every state, newest first (sign in).",
    )
    team = serializers.CharField(
        max_length=200,
        required=False,
        help_text="A team you are a member of: its templates in every state, newest first "
        "(sign in; not with `owner`).",
    )
    q = _Text(max_length=200, required=False, help_text="Words to find in name or description.")
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    tag = serializers.RegexField(TAG_REGEX, required=False)
    featured = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Only templates staff feature."
    )
    order = serializers.ChoiceField(choices=sorted(ORDERS), required=False, default="popular")
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("owner") and attrs.get("team"):
            raise serializers.ValidationError(
                {"team": ["Ask for your own templates (`owner=me`) or a team's, not both."]}
            )
        return attrs


class MarketplaceTemplateSerializer(serializers.Serializer[Any]):
    """A template in the marketplace list (no owner, no moderation notes)."""

    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    category = serializers.ChoiceField(choices=Category.choices)
    tags = serializers.ListField(child=serializers.CharField())
    featured = serializers.BooleanField()
    clone_count = serializers.IntegerField()
    latest_version = serializers.IntegerField()
    published_at = serializers.DateTimeField(allow_null=True)


class TemplateContentSerializer(serializers.Serializer[Any]):
    """What a clone is given (the latest version's snapshot)."""

    description = serializers.CharField(allow_null=True)
    avatar_url = serializers.CharField(allow_null=True)
    onboarding_data = serializers.JSONField(allow_null=True)
    settings = serializers.JSONField(allow_null=True)
    agent_type = serializers.ChoiceField(choices=AgentType.choices)
    integrations = serializers.ListField(
        child=serializers.CharField(), help_text="Providers a clone should connect."
    )


class VersionSerializer(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    changelog = serializers.CharField()
    created_at = serializers.DateTimeField()


class TemplateSerializer(MarketplaceTemplateSerializer):
    """A template; its owner also sees its id, source agent and moderation state."""

    id = serializers.UUIDField(required=False, help_text="The owner's only.")
    visibility = serializers.ChoiceField(
        choices=Visibility.choices, required=False, help_text="The owner's only."
    )
    moderation_status = serializers.ChoiceField(
        choices=ModerationStatus.choices, required=False, help_text="The owner's only."
    )
    moderation_reason = serializers.CharField(
        required=False, help_text="Why staff rejected or hid it; the owner's only."
    )
    source_agent = serializers.UUIDField(
        source="source_agent_id",
        required=False,
        allow_null=True,
        help_text="The agent it is made from; the owner's only (null for others).",
    )
    team = serializers.CharField(
        source="team_id",
        required=False,
        allow_null=True,
        help_text="The team that owns it (its members manage it), or null; the owner's only.",
    )
    created_at = serializers.DateTimeField(required=False, help_text="The owner's only.")
    updated_at = serializers.DateTimeField(required=False, help_text="The owner's only.")


class TemplateDetailSerializer(TemplateSerializer):
    content = TemplateContentSerializer(help_text="The latest version's content.")
    versions = VersionSerializer(many=True, source="version_rows", help_text="Newest first.")


class FieldChangeSerializer(serializers.Serializer[Any]):
    field = serializers.CharField(help_text="One of the fields `overwrite` accepts.")
    current = serializers.JSONField(allow_null=True, help_text="The agent's value now.")
    new = serializers.JSONField(allow_null=True, help_text="The latest version's value.")
    edited = serializers.BooleanField(help_text="You changed it since cloning.")
    applied = serializers.BooleanField(help_text="Applying the update sets it.")


class AgentTemplateStatusSerializer(serializers.Serializer[Any]):
    """The template an agent was cloned from, and what updating it would change."""

    template = MarketplaceTemplateSerializer()
    version = serializers.IntegerField(help_text="The version the agent has.")
    update_available = serializers.BooleanField()
    changes = FieldChangeSerializer(many=True, help_text="What applying the update would do.")
    newer_versions = VersionSerializer(many=True)
    expected_integrations = serializers.ListField(child=serializers.CharField())
    missing_integrations = serializers.ListField(child=serializers.CharField())


class AppliedUpdateSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField()
    changes = FieldChangeSerializer(many=True)
