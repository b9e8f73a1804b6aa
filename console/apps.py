"""The support console: the Django admin, built from the apps' selectors and services."""

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "console"
