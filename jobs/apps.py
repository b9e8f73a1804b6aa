"""Background jobs: what every task shares (retries, failures staff can see, schedules that
run once however many schedulers send them). No domain imports: just above `core`."""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "jobs"
    verbose_name = "Background jobs"
