"""Schema pieces Django 5.2 lacks for a faithful PostgreSQL schema.

`SeedIndex` allows PostgreSQL's 63-character index names (Django caps names at 30 for
Oracle's sake), so indexes keep the names the seed gives them.

`CascadeOnDelete` puts `ON DELETE CASCADE` into the database. Django 5.2 enforces
`on_delete` in Python only. The seed's cascades must hold for plain SQL too (`DELETE FROM
apps` removes the agent and everything under it), so the models declare `DO_NOTHING` and a
migration rewrites the constraint with this operation. The constraint keeps
the name Django gave it, so later schema changes by Django still find it.
"""

from django.db import migrations, models


class SeedIndex(models.Index):
    """An index whose name may be as long as PostgreSQL allows."""

    max_name_length = 63


def _rewrite_sql(table: str, column: str, target: str, on_delete: str) -> str:
    # Identifiers come from our own migrations, never from input.
    return f"""
DO $$
DECLARE fk record;
BEGIN
    FOR fk IN
        SELECT con.conname
        FROM pg_constraint con
        JOIN pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = con.conkey[1]
        WHERE con.conrelid = '{table}'::regclass AND con.contype = 'f'
          AND array_length(con.conkey, 1) = 1 AND att.attname = '{column}'
    LOOP
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', '{table}', fk.conname);
        EXECUTE format(
            'ALTER TABLE %I ADD CONSTRAINT %I FOREIGN KEY (%I) REFERENCES %I (id) '
            '{on_delete} DEFERRABLE INITIALLY DEFERRED',
            '{table}', fk.conname, '{column}', '{target}'
        );
    END LOOP;
END $$;
"""  # noqa: S608


def CascadeOnDelete(table: str, column: str, target: str) -> migrations.RunSQL:  # noqa: N802
    """Make `table.column -> target(id)` cascade on delete in the database (reversible)."""
    return migrations.RunSQL(
        sql=_rewrite_sql(table, column, target, "ON DELETE CASCADE"),
        reverse_sql=_rewrite_sql(table, column, target, "ON DELETE NO ACTION"),
    )


def SetNullOnDelete(table: str, column: str, target: str) -> migrations.RunSQL:  # noqa: N802
    """Make `table.column -> target(id)` set NULL on delete in the database (reversible)."""
    return migrations.RunSQL(
        sql=_rewrite_sql(table, column, target, "ON DELETE SET NULL"),
        reverse_sql=_rewrite_sql(table, column, target, "ON DELETE NO ACTION"),
    )
