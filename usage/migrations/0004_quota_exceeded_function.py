"""A function the ingestion statement calls to abort itself when a hard quota would be passed.

Raising from inside the one statement rolls back everything it wrote (event ids, counters),
without a round trip back to Python while row locks are held.
"""

from django.db import migrations

CREATE = """
CREATE FUNCTION a1zap_quota_exceeded(cap bigint) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'A1Q01', MESSAGE = 'quota_exceeded', DETAIL = cap::text;
END
$$;
"""
DROP = "DROP FUNCTION a1zap_quota_exceeded(bigint);"


class Migration(migrations.Migration):
    dependencies = [("usage", "0003_usage_and_quotas")]

    operations = [migrations.RunSQL(CREATE, DROP)]
