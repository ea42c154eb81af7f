-- Named queries of driftloop/cron.py: drift.evaluate() every minute in pg_cron.

-- name: installed
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') AS installed,
    EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron') AS available;

-- name: create_extension
CREATE EXTENSION IF NOT EXISTS pg_cron;

-- name: has_schedule_in_database
SELECT to_regprocedure('cron.schedule_in_database(text,text,text,text,text,boolean)') IS NOT NULL;

-- name: schedule_in_database
-- pg_cron runs its jobs in one database (cron.database_name); this one may be another.
SELECT cron.schedule_in_database(%(name)s, %(schedule)s, %(command)s, current_database());

-- name: schedule
SELECT cron.schedule(%(name)s, %(schedule)s, %(command)s);

-- name: job
SELECT jobid FROM cron.job WHERE jobname = %(name)s;

-- name: unschedule
SELECT cron.unschedule(%(name)s);
