from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from a1zap.database_server import DatabaseServerUnreachableError, ensure_database_exists


class Command(BaseCommand):
    help = "Create the database named in DATABASE_URL if it is missing."

    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="Only check that the server answers."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            created = ensure_database_exists(create=not options["check"])
        except DatabaseServerUnreachableError as error:
            raise CommandError(str(error)) from None
        if created:
            self.stdout.write(self.style.SUCCESS("Created the database named in DATABASE_URL."))
