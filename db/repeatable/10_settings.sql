-- Settings: one reader, one validator for every key.

CREATE OR REPLACE FUNCTION drift.setting(p_key text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$ SELECT value FROM drift.settings WHERE key = p_key $$;
COMMENT ON FUNCTION drift.setting(text) IS 'The value of one drift.settings key as text (NULL when unknown).';

CREATE OR REPLACE FUNCTION drift.setting_spec(p_key text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    -- Every key of the engine with its type and range: (type, low, high), bounds inclusive,
    -- '>0' for "positive". Windows are bounded: an interval of '1000000 years' or 'infinity'
    -- would silently stop detection or overflow the timestamp arithmetic of evaluate().
    SELECT CASE p_key
        WHEN 'current_window'           THEN ARRAY['interval', '>0', '90 days']
        WHEN 'bucket_width'             THEN ARRAY['interval', '>0', '1 day']
        WHEN 'evaluate_interval'        THEN ARRAY['interval', '0', '90 days']
        WHEN 'cooldown'                 THEN ARRAY['interval', '0', '90 days']
        WHEN 'auto_baseline'            THEN ARRAY['interval', '0', '90 days']
        -- data time between false alarms: a quiet model may rightly ask for years
        WHEN 'false_alarm_interval'     THEN ARRAY['interval', '0', '3650 days']
        WHEN 'min_samples'              THEN ARRAY['integer', '1', '1000000000']
        -- log partitions: daily to weekly; how many kept ready; when old rollups become hourly
        WHEN 'partition_interval'       THEN ARRAY['interval', '1 day', '7 days']
        WHEN 'partitions_ahead'         THEN ARRAY['integer', '1', '366']
        WHEN 'rollup_hourly_after'      THEN ARRAY['interval', '0', '3650 days']
        WHEN 'novelty_per_bucket'       THEN ARRAY['integer', '10', '1000000']
        WHEN 'novelty_sample_size'      THEN ARRAY['integer', '100', '100000']
        WHEN 'alpha'                    THEN ARRAY['number', '0', '1']
        WHEN 'embedding_drift_threshold' THEN ARRAY['number', '0', '1']
        WHEN 'refusal_rate_threshold'   THEN ARRAY['number', '0', '1']
        WHEN 'toxicity_rate_threshold'  THEN ARRAY['number', '0', '1']
        WHEN 'accuracy_drop_threshold'  THEN ARRAY['number', '0', '1']
        WHEN 'toxic_at'                 THEN ARRAY['number', '0', '1']
        WHEN 'novelty_quantile'         THEN ARRAY['number', '0.5', '0.999']
        WHEN 'embedding_distance_floor' THEN ARRAY['number', '0', '2']
        -- the sequential embedding test: its reference shift, direction window and catch-up reach
        WHEN 'evidence_shift'           THEN ARRAY['number', '0.01', '2']
        WHEN 'evidence_direction_window' THEN ARRAY['interval', '>0', '1 day']
        WHEN 'evidence_horizon'         THEN ARRAY['interval', '>0', '7 days']
        -- the whitened window test: how much data it judges at once
        WHEN 'whitened_window'          THEN ARRAY['interval', '>0', '7 days']
    END
$$;
COMMENT ON FUNCTION drift.setting_spec(text) IS 'Type and range of an engine setting as {type, low, high} (NULL for a key of the user''s own).';

CREATE OR REPLACE FUNCTION drift.settings_validate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    spec text[] := drift.setting_spec(NEW.key);
    low text := spec[2];
    high text := spec[3];
    positive boolean := low = '>0';
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.key IS DISTINCT FROM OLD.key AND drift.setting_spec(OLD.key) IS NOT NULL THEN
        RAISE EXCEPTION 'drift setting % cannot be renamed: the engine reads it by name', OLD.key
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF spec IS NULL THEN
        RETURN NEW;
    END IF;
    IF positive THEN
        low := '0';
    END IF;
    BEGIN
        IF spec[1] = 'interval' THEN
            IF NEW.value::interval < low::interval OR (positive AND NEW.value::interval = low::interval) THEN
                RAISE EXCEPTION '%', CASE WHEN positive THEN 'must be positive' ELSE 'must not be negative' END;
            END IF;
            -- also refuses 'infinity' (PostgreSQL 17+), which compares above every finite interval
            IF NEW.value::interval > high::interval THEN
                RAISE EXCEPTION 'must be at most %', high;
            END IF;
        ELSIF spec[1] = 'integer' THEN
            IF NEW.value::integer < low::integer OR NEW.value::integer > coalesce(high::integer, 2147483647) THEN
                RAISE EXCEPTION 'must be an integer %', CASE WHEN high IS NULL THEN 'of at least ' || low
                                                             ELSE 'between ' || low || ' and ' || high END;
            END IF;
        ELSE
            -- NOT (x BETWEEN ...) also refuses NaN.
            IF NOT (NEW.value::double precision BETWEEN low::double precision AND high::double precision) THEN
                RAISE EXCEPTION 'must be a number between % and %', low, high;
            END IF;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'invalid value % for drift setting %: %', quote_literal(NEW.value), NEW.key, SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION drift.settings_validate() IS 'Rejects a drift.settings value of the wrong type or range for its key (every key of the engine), with a clear error; engine keys cannot be renamed.';
CREATE OR REPLACE TRIGGER settings_validate BEFORE INSERT OR UPDATE ON drift.settings
    FOR EACH ROW EXECUTE FUNCTION drift.settings_validate();

CREATE OR REPLACE FUNCTION drift.settings_keep() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- Deleting min_samples made evaluate() divide by zero, deleting bucket_width failed every
    -- insert: an engine setting can be changed, never removed.
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'drift.settings cannot be truncated: the engine reads its rows'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF drift.setting_spec(OLD.key) IS NOT NULL THEN
        RAISE EXCEPTION 'drift setting % cannot be deleted: the engine reads it', OLD.key
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'Change its value with UPDATE drift.settings SET value = ... WHERE key = ...';
    END IF;
    RETURN OLD;
END $$;
COMMENT ON FUNCTION drift.settings_keep() IS 'Refuses deleting an engine setting (and truncating drift.settings); keys of the user''s own may be deleted.';
CREATE OR REPLACE TRIGGER settings_keep BEFORE DELETE ON drift.settings
    FOR EACH ROW EXECUTE FUNCTION drift.settings_keep();
CREATE OR REPLACE TRIGGER settings_keep_truncate BEFORE TRUNCATE ON drift.settings
    FOR EACH STATEMENT EXECUTE FUNCTION drift.settings_keep();
