"""An agent owned by a team's id must be the team's (team_id = owner_id): a trigger, since a
CHECK cannot look at `teams`. Without the team, the agent would be owned by the team's
account (billed, counted) yet reach none of its members by their role, and the reach rule
once let it reach all of them (docs/teams.md). Rows older than the trigger are not checked:
the reach rule shows them to no member (staff still see them, and can move or delete them)."""

from django.db import migrations

OWNER_NOT_A_TEAM = """
CREATE FUNCTION a1_agents_owner_not_a_team() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.team_id IS NULL AND EXISTS (SELECT 1 FROM teams WHERE id = NEW.owner_id) THEN
        RAISE EXCEPTION 'a1_agents_owner_not_a_team: owner_id % is a team; a team''s agent has'
            ' team_id = owner_id', NEW.owner_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'a1_agents_owner_not_a_team';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER a1_agents_owner_not_a_team BEFORE INSERT OR UPDATE OF owner_id, team_id
    ON a1_agents FOR EACH ROW EXECUTE FUNCTION a1_agents_owner_not_a_team();
"""
DROP_OWNER_NOT_A_TEAM = """
DROP TRIGGER IF EXISTS a1_agents_owner_not_a_team ON a1_agents;
DROP FUNCTION IF EXISTS a1_agents_owner_not_a_team();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0006_agent_access"),
        ("teams", "0003_team_name_index"),
    ]

    operations = [migrations.RunSQL(OWNER_NOT_A_TEAM, DROP_OWNER_NOT_A_TEAM)]
