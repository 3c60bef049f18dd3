"""The database itself refuses to change a pact version that has left draft, or its clauses.

Every code path goes through pacts.actions, which never does; these triggers make sure no other
path (a shell, a bulk update, a future bug) can either. On PostgreSQL they also refuse DELETE of
such rows. On SQLite only UPDATE is refused: Django's test flush empties tables with DELETE there,
and every foreign key to a version or clause is PROTECT already.
"""

from django.db import migrations

IMMUTABLE_COLUMNS = (
    "pact_id",
    "number",
    "document",
    "canonical",
    "sha256",
    "risk_tier",
    "review_cadence_days",
    "evidence_required",
)

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION pacts_version_immutable() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.status <> 'draft' THEN
      RAISE EXCEPTION 'pact version % is %: it cannot be deleted', OLD.id, OLD.status
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
  END IF;
  IF OLD.status <> 'draft' AND (NEW.status = 'draft' OR {changed}) THEN
    RAISE EXCEPTION 'pact version % is %: its document is immutable (amend = new version)',
      OLD.id, OLD.status USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER pacts_version_immutable BEFORE UPDATE OR DELETE ON pacts_pactversion
  FOR EACH ROW EXECUTE FUNCTION pacts_version_immutable();

CREATE OR REPLACE FUNCTION pacts_clause_immutable() RETURNS trigger AS $$
BEGIN
  IF (SELECT status FROM pacts_pactversion WHERE id = OLD.version_id) <> 'draft' THEN
    RAISE EXCEPTION 'clause % belongs to a pact version that is no longer a draft', OLD.id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER pacts_clause_immutable BEFORE UPDATE OR DELETE ON pacts_clause
  FOR EACH ROW EXECUTE FUNCTION pacts_clause_immutable();
""".format(
    changed=" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in IMMUTABLE_COLUMNS)
)

POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS pacts_clause_immutable ON pacts_clause;
DROP FUNCTION IF EXISTS pacts_clause_immutable();
DROP TRIGGER IF EXISTS pacts_version_immutable ON pacts_pactversion;
DROP FUNCTION IF EXISTS pacts_version_immutable();
"""

SQLITE_FORWARD = [
    """
    CREATE TRIGGER pacts_version_immutable BEFORE UPDATE ON pacts_pactversion
    FOR EACH ROW WHEN OLD.status <> 'draft' AND (NEW.status = 'draft' OR {changed})
    BEGIN
      SELECT RAISE(ABORT, 'pact version is no longer a draft: its document is immutable');
    END
    """.format(changed=" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in IMMUTABLE_COLUMNS)),
    """
    CREATE TRIGGER pacts_clause_immutable BEFORE UPDATE ON pacts_clause
    FOR EACH ROW WHEN (SELECT status FROM pacts_pactversion WHERE id = OLD.version_id) <> 'draft'
    BEGIN
      SELECT RAISE(ABORT, 'clause belongs to a pact version that is no longer a draft');
    END
    """,
]

SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS pacts_clause_immutable",
    "DROP TRIGGER IF EXISTS pacts_version_immutable",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement, params=None)


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("pacts", "0002_review_and_revocation_by")]

    operations = [migrations.RunPython(forward, reverse)]
