-- Undoes 0004_detection's tables and settings (the functions, triggers and views are removed
-- with the whole code layer before any downgrade: see driftloop.migrations).
DROP TABLE drift.novelty_rollup;
DROP TABLE drift.baseline_samples;
DROP TABLE drift.embedding_calibration;
DELETE FROM drift.settings
WHERE key IN ('false_alarm_interval', 'novelty_sample_size', 'novelty_per_bucket', 'novelty_quantile',
    'embedding_distance_floor');
