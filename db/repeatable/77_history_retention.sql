-- Retention of what every evaluation leaves behind: drift.evaluation_history gets one row per
-- model, metric and bucket each time drift.evaluate() runs (a minute apart: ~1,440 rows per
-- metric and day), for as long as the logs are kept and beyond. `driftloop db prune
-- --older-than AGE` deletes it with the log partitions of that age. Each metric's latest
-- evaluation stays however old, so /metrics still knows when a model was last evaluated
-- (drift.evaluation_freshness) and dashboards still show its last score.

CREATE OR REPLACE FUNCTION drift.prune_history(p_older_than interval)
RETURNS TABLE (history text, before timestamptz, rows_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cutoff timestamptz;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '1 hour' THEN
        RAISE EXCEPTION 'prune_history: the age must be at least 1 hour (got %)', p_older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cutoff := now() - p_older_than;
    -- By the data clock (as_of), as the logs are pruned by created_at.
    DELETE FROM drift.evaluation_history h
    WHERE h.as_of < cutoff
      AND EXISTS (SELECT 1 FROM drift.evaluation_history n
                  WHERE n.model = h.model AND n.kind = h.kind AND n.metric = h.metric AND n.as_of > h.as_of);
    history := 'evaluation_history';
    before := cutoff;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION drift.prune_history(interval) IS 'Retention of the per-evaluation history: deletes the drift.evaluation_history rows evaluated (as_of) more than p_older_than ago, except the latest of each model and metric. Returns the rows deleted per table. Called by driftloop db prune with drift.prune_logs.';
REVOKE EXECUTE ON FUNCTION drift.prune_history(interval) FROM PUBLIC;
