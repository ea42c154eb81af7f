-- Simulation: clean-up of the models `driftloop simulate` and `driftloop demo` created.

-- Deletes every row of the given simulated models from every table of schema drift that has
-- a `model` column, and the rows that reference those rows through a foreign key. It finds
-- the tables in the catalog, so tables added by later migrations are covered too. It refuses
-- names that no simulation created: user models are never touched.
CREATE OR REPLACE FUNCTION drift.delete_simulated_models(models text[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    unknown text[];
    tables regclass[];
    pending regclass[];
    t regclass;
    fk record;
    n bigint;
    total bigint := 0;
    progress boolean;
BEGIN
    SELECT array_agg(m) INTO unknown
      FROM unnest(models) AS m
     WHERE m NOT IN (SELECT model FROM drift.simulation_models);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'not models created by a simulation: %', array_to_string(unknown, ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT coalesce(array_agg(c.oid::regclass), '{}') INTO tables
      FROM pg_class c
      JOIN pg_namespace ns ON ns.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'model' AND NOT a.attisdropped
     WHERE ns.nspname = 'drift' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND c.relname NOT LIKE 'simulation\_%';

    -- Rows without a model column that point at rows being deleted (e.g. action runs of an event).
    FOR fk IN
        SELECT con.conrelid::regclass AS child, ca.attname AS child_col,
               con.confrelid::regclass AS parent, pa.attname AS parent_col
          FROM pg_constraint con
          JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = con.conkey[1]
          JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = con.confkey[1]
         WHERE con.contype = 'f' AND cardinality(con.conkey) = 1
           AND con.confrelid = ANY (tables) AND NOT con.conrelid = ANY (tables)
           AND con.conrelid::regclass::text NOT LIKE 'drift.simulation\_%'
    LOOP
        EXECUTE format('DELETE FROM %s WHERE %I IN (SELECT %I FROM %s WHERE model = ANY ($1))',
                       fk.child, fk.child_col, fk.parent_col, fk.parent) USING models;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;

    -- A table referenced by another one must be emptied after it: retry until all are done.
    pending := tables;
    WHILE cardinality(pending) > 0 LOOP
        progress := false;
        FOREACH t IN ARRAY pending LOOP
            BEGIN
                EXECUTE format('DELETE FROM %s WHERE model = ANY ($1)', t) USING models;
                GET DIAGNOSTICS n = ROW_COUNT;
                total := total + n;
                pending := array_remove(pending, t);
                progress := true;
            EXCEPTION WHEN foreign_key_violation THEN
                NULL;  -- still referenced; try again after the others
            END;
        END LOOP;
        IF NOT progress THEN
            RAISE EXCEPTION 'cannot delete simulated models: rows of % are still referenced',
                array_to_string(pending::text[], ', ');
        END IF;
    END LOOP;

    DELETE FROM drift.simulation_models WHERE model = ANY (models);
    DELETE FROM drift.simulation_runs r
     WHERE NOT EXISTS (SELECT 1 FROM drift.simulation_models m WHERE m.run_id = r.id);
    RETURN total;
END
$$;
COMMENT ON FUNCTION drift.delete_simulated_models(text[]) IS
    'Deletes all data of models created by a simulation (refuses any other name); returns the rows deleted.';
