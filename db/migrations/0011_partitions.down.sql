-- Undoes 0011_partitions (the code layer is removed before any downgrade): the logs become
-- plain tables again with every row, their ids and sequence position; the settings go.
DO $$
DECLARE
    t text;
    seq text;
    seq_last bigint;
    seq_called boolean;
    rls boolean;
    force_rls boolean;
    table_comment text;
BEGIN
    FOREACH t IN ARRAY ARRAY['interaction_log', 'embeddings_log'] LOOP
        SELECT c.relrowsecurity, c.relforcerowsecurity, obj_description(c.oid, 'pg_class')
        INTO rls, force_rls, table_comment FROM pg_class c WHERE c.oid = format('drift.%I', t)::regclass;
        seq := pg_get_serial_sequence(format('drift.%I', t), 'id');
        EXECUTE format('SELECT last_value, is_called FROM %s', seq) INTO seq_last, seq_called;
        EXECUTE format('ALTER TABLE drift.%I RENAME TO %I', t, t || '_partitioned');
        EXECUTE format('ALTER INDEX drift.%I RENAME TO %I', t || '_pkey', t || '_partitioned_pkey');
        EXECUTE format('ALTER INDEX drift.%I RENAME TO %I', t || '_model_created_at', t || '_partitioned_model_created_at');
        EXECUTE format(
            'CREATE TABLE drift.%I (LIKE drift.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY'
            ' INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)', t, t || '_partitioned');
        EXECUTE format('INSERT INTO drift.%I SELECT * FROM drift.%I', t, t || '_partitioned');
        EXECUTE format('SELECT setval(%L, %s, %L)', pg_get_serial_sequence(format('drift.%I', t), 'id'),
            seq_last, seq_called);
        EXECUTE format('DROP TABLE drift.%I', t || '_partitioned');
        EXECUTE format('ALTER TABLE drift.%I ADD PRIMARY KEY (id)', t);
        EXECUTE format('CREATE INDEX %I ON drift.%I (model, created_at)', t || '_model_created_at', t);
        EXECUTE format('COMMENT ON TABLE drift.%I IS %L', t,
            replace(table_comment, ' Partitioned by created_at (partition_interval); old partitions are dropped by drift.prune_logs().', ''));
        IF rls THEN
            EXECUTE format('ALTER TABLE drift.%I ENABLE ROW LEVEL SECURITY', t);
        END IF;
        IF force_rls THEN
            EXECUTE format('ALTER TABLE drift.%I FORCE ROW LEVEL SECURITY', t);
        END IF;
    END LOOP;
END $$;
DELETE FROM drift.settings WHERE key IN ('partition_interval', 'partitions_ahead', 'rollup_hourly_after');
