"""driftloop's schema, shipped inside the package as `driftloop.db`: alembic's environment and
revisions (versions/), the frozen DDL they apply (migrations/), the code layer re-applied after
every upgrade (repeatable/) and the generated head script (schema.sql). See driftloop.migrations."""
