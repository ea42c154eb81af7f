-- Time partitions for the two log tables. interaction_log and embeddings_log become
-- partitioned by RANGE (created_at), one partition per partition_interval (a day by default,
-- a week with '7 days'), plus a DEFAULT partition that takes rows no partition covers yet
-- (back-filled history, a simulation replaying past days), so an insert never fails for want
-- of a partition. drift.ensure_partitions() (db/repeatable/35_partitions.sql) keeps
-- partitions_ahead partitions ready and moves default rows into their partition;
-- drift.prune_logs() drops whole partitions.
--
-- A primary key of a partitioned table must contain the partition key: the key is now
-- (id, created_at). id stays unique in practice (one identity sequence; the old sequence's
-- position is carried over), and lookups by id alone (late feedback and labels) use the
-- primary key's index on every partition. Idempotency keys already live outside the logs
-- (drift.idempotency_keys, 0010), which is what made this possible.
--
-- Existing rows are moved: the old table is renamed, the partitioned one created with the
-- same columns, defaults, checks and comments, the rows copied with their ids, the old table
-- dropped (its triggers with it; the code layer recreates them on the partitioned parents).

INSERT INTO drift.settings (key, value, description) VALUES
    ('partition_interval', '1 day', 'Time span of one partition of interaction_log and embeddings_log: 1 day (daily) to 7 days (weekly). A change applies to partitions created from then on.'),
    ('partitions_ahead', '3', 'Partitions drift.ensure_partitions() keeps ready beyond the current one (called by drift.evaluate(), driftloop db upgrade and db prune).'),
    ('rollup_hourly_after', '7 days', 'Rollup buckets older than this are compacted to one row per model and hour by drift.compact_rollups_hourly() (0 = never). Windows over older data are then counted by whole hours.')
ON CONFLICT (key) DO NOTHING;

DO $$
DECLARE
    t text;
    old regclass;
    seq text;
    seq_last bigint;
    seq_called boolean;
    rls boolean;
    force_rls boolean;
    table_comment text;
    iv interval := coalesce((SELECT value FROM drift.settings WHERE key = 'partition_interval'), '1 day')::interval;
    ahead integer := coalesce((SELECT value FROM drift.settings WHERE key = 'partitions_ahead'), '3')::integer;
    -- A Monday: daily partitions start at midnight UTC, weekly ones on Mondays.
    origin constant timestamptz := '2000-01-03 00:00:00+00';
    starts timestamptz;
    part text;
    steps timestamptz[];
BEGIN
    FOREACH t IN ARRAY ARRAY['interaction_log', 'embeddings_log'] LOOP
        old := format('drift.%I', t)::regclass;
        SELECT c.relrowsecurity, c.relforcerowsecurity, obj_description(c.oid, 'pg_class')
        INTO rls, force_rls, table_comment FROM pg_class c WHERE c.oid = old;
        seq := pg_get_serial_sequence(old::text, 'id');
        EXECUTE format('SELECT last_value, is_called FROM %s', seq) INTO seq_last, seq_called;
        EXECUTE format('ALTER TABLE drift.%I RENAME TO %I', t, t || '_unpartitioned');

        EXECUTE format(
            'CREATE TABLE drift.%I (LIKE drift.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY'
            ' INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS) PARTITION BY RANGE (created_at)',
            t, t || '_unpartitioned');
        EXECUTE format('SELECT setval(%L, %s, %L)', pg_get_serial_sequence(format('drift.%I', t), 'id'),
            seq_last, seq_called);
        EXECUTE format('COMMENT ON TABLE drift.%I IS %L', t,
            table_comment || ' Partitioned by created_at (partition_interval); old partitions are dropped by drift.prune_logs().');
        EXECUTE format('CREATE TABLE drift.%I PARTITION OF drift.%I DEFAULT', t || '_default', t);
        EXECUTE format('COMMENT ON TABLE drift.%I IS %L', t || '_default',
            'Rows of drift.' || t || ' that no time partition covers yet; drift.ensure_partitions() moves them into their partition.');

        -- A partition for every interval that holds rows, and for now .. partitions_ahead.
        EXECUTE format('SELECT array_agg(DISTINCT date_bin($1, created_at, $2)) FROM drift.%I', t || '_unpartitioned')
            INTO steps USING iv, origin;
        FOR starts IN
            SELECT DISTINCT x FROM unnest(coalesce(steps, '{}') || ARRAY(
                SELECT generate_series(date_bin(iv, now(), origin), date_bin(iv, now(), origin) + ahead * iv, iv))) x
        LOOP
            part := t || '_p' || to_char(starts AT TIME ZONE 'UTC', 'YYYYMMDD');
            EXECUTE format('CREATE TABLE drift.%I PARTITION OF drift.%I FOR VALUES FROM (%L) TO (%L)',
                part, t, starts, starts + iv);
        END LOOP;

        EXECUTE format('INSERT INTO drift.%I SELECT * FROM drift.%I', t, t || '_unpartitioned');
        EXECUTE format('DROP TABLE drift.%I', t || '_unpartitioned');
        EXECUTE format('ALTER TABLE drift.%I ADD CONSTRAINT %I PRIMARY KEY (id, created_at)', t, t || '_pkey');
        EXECUTE format('CREATE INDEX %I ON drift.%I (model, created_at)', t || '_model_created_at', t);
        IF rls THEN
            EXECUTE format('ALTER TABLE drift.%I ENABLE ROW LEVEL SECURITY', t);
        END IF;
        IF force_rls THEN
            EXECUTE format('ALTER TABLE drift.%I FORCE ROW LEVEL SECURITY', t);
        END IF;
    END LOOP;
END $$;
