"""Put the catalogue's templates (`agent_templates.catalogue`) in the marketplace.

Idempotent: run it after every deploy; a template already as the catalogue has it is left
alone, a changed one gets a new version.
"""

from typing import Any

from django.core.management.base import BaseCommand

from agent_templates.catalogue import CATALOGUE, CATALOGUE_OWNER_ID
from agent_templates.services import template_seed


class Command(BaseCommand):
    help = "Create or update the marketplace's catalogue templates (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        for entry in CATALOGUE:
            outcome = template_seed(owner_id=CATALOGUE_OWNER_ID, **entry)
            self.stdout.write(f"{entry['slug']}: {outcome}")
