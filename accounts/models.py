"""StackUser: a local mirror of the Stack Auth users we have seen.

Stack Auth is the source of truth for users. The mirror lets staff find an owner by email
and see when they were last active; it is written only by `accounts.services`, from access
tokens (at most every few minutes) and from Stack Auth's webhooks.
"""

from django.contrib.postgres.functions import TransactionNow
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from core.constraints import both_or_neither


class StackUser(models.Model):
    """A Stack Auth user as last seen in a token or a webhook; a tombstone once deleted."""

    # Stack Auth's user id, the `sub` of its tokens and the `owner_id` of our rows.
    id = models.TextField(primary_key=True)
    email = models.TextField(null=True, blank=True)
    display_name = models.TextField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now, db_default=TransactionNow())
    last_seen_at = models.DateTimeField(default=timezone.now, db_default=TransactionNow())
    # Set on `user.deleted`; the row stays so that a late `user.updated` cannot bring it back.
    deleted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())
    # The webhook message that last set email and name: when Stack Auth created it and its
    # Svix id (which breaks ties, compared byte by byte). An older message is not applied.
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_event_id = models.TextField(null=True, blank=True, db_collation="C")

    class Meta:
        db_table = "stack_users"
        verbose_name = "Stack Auth user"
        indexes = [models.Index(Lower("email"), name="idx_stack_users_email_lower")]
        constraints = [
            both_or_neither("stack_users_last_event_complete", "last_event_at", "last_event_id")
        ]

    def __str__(self) -> str:
        return self.email or self.id


class StackAuthWebhookMessage(models.Model):
    """A Stack Auth webhook message (its Svix id) that was applied: never applied twice.

    Inserted in the transaction that applies the message, so a message is either applied and
    remembered or neither. `prune_webhook_messages` forgets ids once Svix can no longer send
    them again; the order kept on `stack_users` still refuses such a message after that.
    """

    svix_id = models.TextField(primary_key=True)
    received_at = models.DateTimeField(default=timezone.now, db_default=TransactionNow())

    class Meta:
        db_table = "stack_auth_webhook_messages"
        verbose_name = "Stack Auth webhook message"
        indexes = [models.Index(fields=["received_at"], name="idx_webhook_msgs_received")]

    def __str__(self) -> str:
        return self.svix_id
