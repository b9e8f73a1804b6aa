"""What staff may do, in one place: each operation on each resource names one Django permission.

The admin (`console.admin_base.StaffPermissionsAdmin` and the agents' lifecycle buttons) and the API
(`core.permissions`) both ask `staff_may(user, resource, operation)`, which is
`user.has_perm(...)` of the permission named here, so what a staff member may do through the
admin and through the API cannot disagree. `None` means no staff member may (superusers
neither): the operation belongs to the owner or the app, or the data is read-only.

The two roles (`audit.roles`) are derived from this map: `support` holds the permissions of
`SUPPORT_OPERATIONS` (read, pause, resume), `admin` every permission named here.

This module knows resources and permissions by name only; it imports no domain app.
"""

from typing import Any

# resource -> operation -> "app_label.codename" (or None: no staff member may)
STAFF_PERMISSIONS: dict[str, dict[str, str | None]] = {
    "agent": {
        "view": "agents.view_a1agent",
        # The admin creates agents for an owner; the API's create is the signed-in owner's.
        "add": "agents.add_a1agent",
        "change": "agents.change_a1agent",
        "delete": "agents.delete_a1agent",
        "pause": "agents.pause_agent",
        "resume": "agents.pause_agent",
        "archive": "agents.archive_agent",
        "rotate_key": "agents.rotate_app_key",
    },
    # Keys are rotated from the agent; apps themselves are read-only.
    "app": {"view": "agents.view_app", "add": None, "change": None, "delete": None},
    "integration": {
        "view": "integrations.view_agentintegration",
        # Settings need validating and encrypting: only the owner, through the API, adds them.
        "add": None,
        "change": "integrations.change_agentintegration",
        "delete": "integrations.delete_agentintegration",
    },
    # Conversations and messages are the customers' record: staff only read them.
    "conversation": {
        "view": "conversations.view_agentconversation",
        "add": None,
        "change": None,
        "delete": None,
        "archive": None,
    },
    "message": {"view": "conversations.view_message", "add": None, "change": None, "delete": None},
    "usage": {"view": "usage.view_agentusage", "add": None, "change": None, "delete": None},
    # Alerts are written by ingestion and sent by jobs; staff read them.
    "usage_alert": {"view": "usage.view_usagealert", "add": None, "change": None, "delete": None},
    "audit_entry": {"view": "audit.view_auditentry", "add": None, "change": None, "delete": None},
    "subscription": {
        "view": "billing.view_usersubscription",
        "add": "billing.add_usersubscription",
        "change": "billing.change_usersubscription",
        # The ledger points at subscriptions; cancelling is Stripe's or the user's.
        "delete": None,
    },
    "plan": {
        "view": "billing.view_subscriptionplan",
        "add": "billing.add_subscriptionplan",
        "change": "billing.change_subscriptionplan",
        # Subscriptions name their plan by id; a plan is retired with `is_active`.
        "delete": None,
    },
    "billing_event": {
        "view": "billing.view_billingevent",
        "add": None,
        "change": None,
        "delete": None,
    },
    # Cancellations waiting for Stripe: the retry command works them off; staff watch.
    "stripe_cancellation": {
        "view": "billing.view_stripependingcancellation",
        "add": None,
        "change": None,
        "delete": None,
    },
    # Background jobs that failed for good: support sees them and their errors, admins send
    # them again. Their rows are the worker's record: nobody edits or deletes them.
    "failed_job": {
        "view": "jobs.view_failedjob",
        "add": None,
        "change": None,
        "delete": None,
        "retry": "jobs.retry_failedjob",
    },
    # Runs of scheduled jobs, one per job and day or month: written by the jobs themselves.
    "scheduled_run": {
        "view": "jobs.view_scheduledrun",
        "add": None,
        "change": None,
        "delete": None,
    },
    # Owners' webhook receivers are theirs to change (through the API); staff read them.
    "webhook_endpoint": {
        "view": "notifications.view_webhookendpoint",
        "add": None,
        "change": None,
        "delete": None,
    },
    # What an owner chose to be told: theirs to change, through the API.
    "notification_settings": {
        "view": "notifications.view_notificationsettings",
        "add": None,
        "change": None,
        "delete": None,
    },
    # Deliveries are the worker's record; admins may send one again.
    "webhook_delivery": {
        "view": "notifications.view_webhookdelivery",
        "add": None,
        "change": None,
        "delete": None,
        "replay": "notifications.replay_webhookdelivery",
    },
    # Owners write their templates through the API; staff moderate the public listing.
    "agent_template": {
        "view": "agent_templates.view_agenttemplate",
        "add": None,
        "change": None,
        "delete": None,
        "moderate": "agent_templates.moderate_agenttemplate",
    },
    "template_report": {
        "view": "agent_templates.view_templatereport",
        "add": None,
        "change": None,
        "delete": None,
        "moderate": "agent_templates.moderate_agenttemplate",
    },
    # The team mirror follows Stack Auth too.
    "team": {"view": "teams.view_team", "add": None, "change": None, "delete": None},
    # The user mirror follows Stack Auth; deleting a user is Stack Auth's call.
    "stack_user": {"view": "accounts.view_stackuser", "add": None, "change": None, "delete": None},
}

SUPPORT_OPERATIONS = frozenset({"view", "pause", "resume"})


def staff_permission(resource: str, operation: str) -> str | None:
    """The permission an operation on a resource takes, or None if no staff member may."""
    return STAFF_PERMISSIONS.get(resource, {}).get(operation)


def staff_account(user: Any) -> bool:
    """Tell whether the caller is an active Django staff account (one that may log into the
    admin). Owners and apps are not Django users and never are."""
    return bool(getattr(user, "is_staff", False) and getattr(user, "is_active", False))


def staff_may(user: Any, resource: str, operation: str) -> bool:
    """Tell whether a staff member may do `operation` on `resource` (False for anyone else)."""
    permission = staff_permission(resource, operation)
    return permission is not None and staff_account(user) and bool(user.has_perm(permission))


def all_staff_permissions() -> frozenset[str]:
    """Every permission the map names: the `admin` role's share of it."""
    return frozenset(
        permission
        for operations in STAFF_PERMISSIONS.values()
        for permission in operations.values()
        if permission is not None
    )


def support_permissions() -> frozenset[str]:
    """The permissions of the operations support may do: reading, pausing, resuming."""
    return frozenset(
        permission
        for operations in STAFF_PERMISSIONS.values()
        for operation, permission in operations.items()
        if permission is not None and operation in SUPPORT_OPERATIONS
    )


def is_staff_member(user: Any) -> bool:
    """Tell whether the caller is staff with a role: an active staff account holding any
    permission of the map (the `support` or `admin` group, or a superuser)."""
    if not staff_account(user):
        return False
    if getattr(user, "is_superuser", False):
        return True
    granted: set[str] = user.get_all_permissions()
    return not granted.isdisjoint(all_staff_permissions())
