import datetime as dt
from typing import Any

from rest_framework import serializers

from conversations.models import AgentConversation, Channel, Message, MessageRole
from core.api_input import BoundedJSONField, StrictFieldsMixin
from core.api_output import iso_datetime, uuid_text

# The identifiers sit in B-tree indexes, whose entries must stay well under 2,704 bytes.
EXTERNAL_USER_ID_MAX_LENGTH = 255
THREAD_ID_MAX_LENGTH = 512
CLIENT_MESSAGE_ID_MAX_LENGTH = 255
MAX_CONTENT_BYTES = 32 * 1024


class ConversationSerializer(serializers.ModelSerializer[AgentConversation]):
    class Meta:
        model = AgentConversation
        fields = (
            "id", "agent", "external_user_id", "channel", "thread_id", "status", "started_at",
            "last_message_at", "ended_at", "metadata",
        )  # fmt: skip
        read_only_fields = fields


class ConversationCreateSerializer(StrictFieldsMixin, serializers.Serializer[AgentConversation]):
    agent = serializers.UUIDField(
        required=False, help_text="The agent; an app key may leave it out (its own agent)."
    )
    channel = serializers.ChoiceField(choices=Channel.choices)
    external_user_id = serializers.CharField(
        max_length=EXTERNAL_USER_ID_MAX_LENGTH, required=False, allow_null=True
    )
    thread_id = serializers.CharField(
        max_length=THREAD_ID_MAX_LENGTH,
        required=False,
        allow_null=True,
        help_text="The channel's thread id. A second open of the same thread on the same "
        "channel returns the existing conversation (200) instead of creating one (201).",
    )
    metadata = BoundedJSONField(require_object=True, required=False)


class ConversationUpdateSerializer(StrictFieldsMixin, serializers.Serializer[AgentConversation]):
    external_user_id = serializers.CharField(
        max_length=EXTERNAL_USER_ID_MAX_LENGTH, required=False, allow_null=True
    )
    metadata = BoundedJSONField(
        require_object=True, required=False, help_text="Replaces the stored metadata."
    )


class MessageSerializer(serializers.ModelSerializer[Message]):
    class Meta:
        model = Message
        fields = (
            "id", "conversation", "agent", "role", "content", "metadata", "client_message_id",
            "created_at",
        )  # fmt: skip
        read_only_fields = fields


# A conversation's page of messages reads `conversations.selectors.MESSAGE_LIST_ROWS` with
# one SELECT and writes each row with message_list_item: what MessageSerializer writes
# (tests/test_list_bodies.py), without DRF's fields built per request and walked per value.
def message_list_item(row: dict[str, Any], zone: dt.tzinfo) -> dict[str, Any]:
    """A message of the page, from its MESSAGE_LIST_ROWS, in MessageSerializer's order;
    times in `zone` (the current time zone, as DRF writes them)."""
    return {
        "id": str(row["id"]),
        "conversation": uuid_text(row["conversation_id"]),
        "agent": uuid_text(row["agent_id"]),
        "role": row["role"],
        "content": row["content"],
        "metadata": row["metadata"],
        "client_message_id": row["client_message_id"],
        "created_at": iso_datetime(row["created_at"], zone),
    }


class MessageCreateSerializer(StrictFieldsMixin, serializers.Serializer[Message]):
    role = serializers.ChoiceField(choices=MessageRole.choices)
    # Content is stored exactly as sent: no trimming.
    content = serializers.CharField(
        trim_whitespace=False, help_text="Text of at most 32 KiB once UTF-8 encoded."
    )
    metadata = BoundedJSONField(require_object=True, required=False)
    client_message_id = serializers.CharField(
        max_length=CLIENT_MESSAGE_ID_MAX_LENGTH,
        required=False,
        allow_null=True,
        help_text="The app's id for this message. A retry with the same id returns the stored "
        "message (200) and is not counted again.",
    )

    def validate_content(self, value: str) -> str:
        if len(value.encode("utf-8", errors="surrogatepass")) > MAX_CONTENT_BYTES:
            raise serializers.ValidationError(
                f"Longer than {MAX_CONTENT_BYTES // 1024} KiB ({MAX_CONTENT_BYTES} bytes) "
                "once UTF-8 encoded."
            )
        return value


class ExportQuerySerializer(serializers.Serializer[Any]):
    format = serializers.ChoiceField(choices=["jsonl", "csv"])
