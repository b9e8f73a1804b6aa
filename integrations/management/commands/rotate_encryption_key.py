"""Re-encrypt every encrypted value under the newest key of FIELD_ENCRYPTION_KEYS.

Rotation: put the new key first (`FIELD_ENCRYPTION_KEYS=new,old`) on every server, run
this command, then drop the old key. Until the command has finished, the old key keeps
decrypting what it encrypted.

Rows are read in keyset batches by id, each batch locked (FOR NO KEY UPDATE) and rewritten in
its own transaction, so the command can be interrupted and run again: values already under the
newest key are recognised (the newest key alone opens them) and left alone.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from tqdm import tqdm

from agents.services import agent_contacts_reencrypt
from core.encryption import KeyRotation, Tally
from integrations.services import integration_secrets_reencrypt
from notifications.services import endpoint_secrets_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt agents' contact fields, integration secrets and webhook signing secrets "
        "under the newest key of FIELD_ENCRYPTION_KEYS, in batches; safe to interrupt and run "
        "again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per transaction.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would change; write nothing."
        )

    def handle(self, *args: Any, batch_size: int, dry_run: bool, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        self.progress_enabled = options.get("verbosity", 1) > 0
        agents, secrets, signing = Tally(), Tally(), Tally()
        if not settings.FIELD_ENCRYPTION_KEYS:
            raise CommandError("FIELD_ENCRYPTION_KEYS is empty: nothing can be re-encrypted.")
        # Each app rewrites its own rows, one batch per transaction.
        for rewrite_batch, tally, table, description in (
            (agent_contacts_reencrypt, agents, "a1_agents", "agents"),
            (integration_secrets_reencrypt, secrets, "agent_integrations", "integrations"),
            (endpoint_secrets_reencrypt, signing, "webhook_endpoints", "webhook endpoints"),
        ):
            rotation = KeyRotation(tally)
            with self._progress(table, description) as progress:
                last_id = None
                while True:
                    ids = rewrite_batch(
                        after_id=last_id, limit=batch_size, rotation=rotation, dry_run=dry_run
                    )
                    progress.update(len(ids))
                    if len(ids) < batch_size:
                        break
                    last_id = ids[-1]

        verb = "Would re-encrypt" if dry_run else "Re-encrypted"
        unreadable = agents.unreadable + secrets.unreadable + signing.unreadable
        current = agents.current + secrets.current + signing.current
        self.stdout.write(
            f"{verb} {agents.rotated} agent contact values, {secrets.rotated} integration "
            f"secrets and {signing.rotated} webhook signing secrets; {current} already under "
            f"the newest key; {len(unreadable)} unreadable."
        )
        if unreadable:
            shown = ", ".join(unreadable[:20]) + (" …" if len(unreadable) > 20 else "")
            raise CommandError(
                f"{len(unreadable)} values are not ciphertext any configured key opens and were "
                f"left as they are: {shown}"
            )

    def _progress(self, table: str, description: str) -> tqdm:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - a constant
            (total,) = cursor.fetchone() or (0,)
        return tqdm(
            total=total,
            desc=description,
            unit="row",
            file=self.stderr._out,
            disable=not self.progress_enabled,
        )
