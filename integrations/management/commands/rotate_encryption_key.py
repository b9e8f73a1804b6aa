"""Re-encrypt every encrypted value under the newest key of FIELD_ENCRYPTION_KEYS.

Rotation: put the new key first (`FIELD_ENCRYPTION_KEYS=new,old`) on every server, run
this command, then drop the old key. Until the command has finished, the old key keeps
decrypting what it encrypted.

Rows are read in keyset batches by id, each batch locked (FOR NO KEY UPDATE) and rewritten in
its own transaction, so the command can be interrupted and run again: values already under the
newest key are recognised (the newest key alone opens them) and left alone.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from tqdm import tqdm

from core.encryption import DecryptionError, is_ciphertext, reencrypt

AGENT_COLUMNS = ("email", "phone_number", "whatsapp_number")
# Keyset batches by id; the first batch has no last id.
AGENTS_BATCH = """
SELECT id, email, phone_number, whatsapp_number FROM a1_agents
WHERE %(last)s::uuid IS NULL OR id > %(last)s::uuid
ORDER BY id LIMIT %(limit)s
"""
INTEGRATIONS_BATCH = """
SELECT id, config FROM agent_integrations
WHERE %(last)s::uuid IS NULL OR id > %(last)s::uuid
ORDER BY id LIMIT %(limit)s
"""


@dataclass
class Tally:
    rotated: int = 0
    current: int = 0
    unreadable: list[str] = field(default_factory=list)


class Rotation:
    """Decide, value by value, whether it needs the newest key, and count what happened."""

    def __init__(self, tally: Tally) -> None:
        keys = settings.FIELD_ENCRYPTION_KEYS
        if not keys:
            raise CommandError("FIELD_ENCRYPTION_KEYS is empty: nothing can be re-encrypted.")
        self.newest = Fernet(keys[0].strip().encode())
        self.tally = tally

    def rotated(self, value: Any, where: str) -> str | None:
        """Return the value under the newest key, or None when it needs no change."""
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not is_ciphertext(value):
            self.tally.unreadable.append(where)
            return None
        try:
            self.newest.decrypt(value.encode())
        except InvalidToken:
            pass
        else:
            self.tally.current += 1
            return None
        try:
            new_value = reencrypt(value)
        except DecryptionError:
            self.tally.unreadable.append(where)
            return None
        self.tally.rotated += 1
        return new_value


class Command(BaseCommand):
    help = (
        "Re-encrypt agents' contact fields and integration secrets under the newest key of "
        "FIELD_ENCRYPTION_KEYS, in batches; safe to interrupt and run again."
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
        # The batch's rows stay locked until their new values commit. NO KEY UPDATE, like the
        # UPDATE itself: rows of other tables may still reference the agents meanwhile.
        self.lock = "" if dry_run else "FOR NO KEY UPDATE"
        agents, secrets = Tally(), Tally()
        self._rotate_agents(Rotation(agents), batch_size=batch_size, dry_run=dry_run)
        self._rotate_integrations(Rotation(secrets), batch_size=batch_size, dry_run=dry_run)

        verb = "Would re-encrypt" if dry_run else "Re-encrypted"
        unreadable = agents.unreadable + secrets.unreadable
        self.stdout.write(
            f"{verb} {agents.rotated} agent contact values and {secrets.rotated} integration "
            f"secrets; {agents.current + secrets.current} already under the newest key; "
            f"{len(unreadable)} unreadable."
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

    def _rotate_agents(self, rotation: Rotation, *, batch_size: int, dry_run: bool) -> None:
        last_id = None
        with self._progress("a1_agents", "agents") as progress:
            while True:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(AGENTS_BATCH + self.lock, {"last": last_id, "limit": batch_size})
                    rows = cursor.fetchall()
                    changes = []
                    for agent_id, *values in rows:
                        new_values = [
                            rotation.rotated(value, f"a1_agents.{column} of {agent_id}")
                            for column, value in zip(AGENT_COLUMNS, values, strict=True)
                        ]
                        if any(value is not None for value in new_values):
                            changes.append((agent_id, *new_values))
                    if changes and not dry_run:
                        # COALESCE keeps the columns that needed no change.
                        cursor.executemany(
                            """
                            UPDATE a1_agents SET email = COALESCE(%s, email),
                                phone_number = COALESCE(%s, phone_number),
                                whatsapp_number = COALESCE(%s, whatsapp_number)
                            WHERE id = %s
                            """,
                            [(*new_values, agent_id) for agent_id, *new_values in changes],
                        )
                progress.update(len(rows))
                if len(rows) < batch_size:
                    return
                last_id = rows[-1][0]

    def _rotate_integrations(self, rotation: Rotation, *, batch_size: int, dry_run: bool) -> None:
        last_id = None
        with self._progress("agent_integrations", "integrations") as progress:
            while True:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        INTEGRATIONS_BATCH + self.lock, {"last": last_id, "limit": batch_size}
                    )
                    rows = cursor.fetchall()
                    changes = []
                    for integration_id, raw_config in rows:
                        config = (
                            json.loads(raw_config) if isinstance(raw_config, str) else raw_config
                        )
                        secrets = config.get("secrets") if isinstance(config, dict) else None
                        if not isinstance(secrets, dict):
                            continue
                        changed = False
                        for name, ciphertext in secrets.items():
                            new_value = rotation.rotated(
                                ciphertext,
                                f"agent_integrations.config.secrets.{name} of {integration_id}",
                            )
                            if new_value is not None:
                                secrets[name] = new_value
                                changed = True
                        if changed:
                            changes.append((json.dumps(config), integration_id))
                    if changes and not dry_run:
                        cursor.executemany(
                            "UPDATE agent_integrations SET config = %s::jsonb WHERE id = %s",
                            changes,
                        )
                progress.update(len(rows))
                if len(rows) < batch_size:
                    return
                last_id = rows[-1][0]
