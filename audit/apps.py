from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _staff_groups_up_to_date(sender: AppConfig, **kwargs: Any) -> None:
    """After every migrate (and every test flush), give the roles new models' permissions."""
    from audit.roles import staff_groups_sync

    staff_groups_sync(kwargs.get("apps") or sender.apps)


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        post_migrate.connect(
            _staff_groups_up_to_date, sender=self, dispatch_uid="audit-staff-groups"
        )
