-- Settings: one reader, one validator for every key.

CREATE OR REPLACE FUNCTION drift.setting(p_key text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$ SELECT value FROM drift.settings WHERE key = p_key $$;
COMMENT ON FUNCTION drift.setting(text) IS 'The value of one drift.settings key as text (NULL when unknown).';

CREATE OR REPLACE FUNCTION drift.settings_validate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    -- Every key of drift.settings with its type and range: (type, low, high), bounds inclusive
    -- unless noted. Unknown keys are the user's own and are not checked.
    spec text[] := CASE NEW.key
        WHEN 'current_window'           THEN ARRAY['interval', '>0', NULL]
        WHEN 'bucket_width'             THEN ARRAY['interval', '>0', NULL]
        WHEN 'evaluate_interval'        THEN ARRAY['interval', '0', NULL]
        WHEN 'cooldown'                 THEN ARRAY['interval', '0', NULL]
        WHEN 'auto_baseline'            THEN ARRAY['interval', '0', NULL]
        WHEN 'false_alarm_interval'     THEN ARRAY['interval', '0', NULL]
        WHEN 'min_samples'              THEN ARRAY['integer', '1', NULL]
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
    END;
    low text := spec[2];
    high text := spec[3];
    positive boolean := low = '>0';
BEGIN
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
COMMENT ON FUNCTION drift.settings_validate() IS 'Rejects a drift.settings value of the wrong type or range for its key (every key of the engine), with a clear error.';
CREATE OR REPLACE TRIGGER settings_validate BEFORE INSERT OR UPDATE ON drift.settings
    FOR EACH ROW EXECUTE FUNCTION drift.settings_validate();
