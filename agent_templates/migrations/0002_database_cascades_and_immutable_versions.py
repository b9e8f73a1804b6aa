"""Cascades in the database, like the other apps' (core.schema), and versions that cannot
be changed once published (UPDATE is refused by a trigger, like the audit trail's)."""

from django.db import migrations

from core.schema import CascadeOnDelete, SetNullOnDelete

VERSIONS_IMMUTABLE = """
CREATE FUNCTION agent_template_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'agent_template_versions rows are immutable';
END;
$$;
CREATE TRIGGER agent_template_versions_immutable BEFORE UPDATE ON agent_template_versions
    FOR EACH ROW EXECUTE FUNCTION agent_template_versions_immutable();
"""
DROP_VERSIONS_IMMUTABLE = """
DROP TRIGGER IF EXISTS agent_template_versions_immutable ON agent_template_versions;
DROP FUNCTION IF EXISTS agent_template_versions_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("agent_templates", "0001_initial"), ("agents", "0004_staff_permissions")]

    operations = [
        SetNullOnDelete("agent_templates", "source_agent_id", "a1_agents"),
        CascadeOnDelete("agent_template_versions", "template_id", "agent_templates"),
        CascadeOnDelete("agent_template_reports", "template_id", "agent_templates"),
        CascadeOnDelete("agent_template_links", "agent_id", "a1_agents"),
        CascadeOnDelete("agent_template_links", "template_id", "agent_templates"),
        migrations.RunSQL(VERSIONS_IMMUTABLE, DROP_VERSIONS_IMMUTABLE),
    ]
