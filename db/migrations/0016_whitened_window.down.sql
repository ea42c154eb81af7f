-- Undoes 0016_whitened_window (the code layer is removed before any downgrade).
ALTER TABLE drift.embedding_calibration
    DROP COLUMN whitened_trace1, DROP COLUMN whitened_trace2, DROP COLUMN whitened_trace3,
    DROP COLUMN whitened_dispersion;
DELETE FROM drift.settings WHERE key = 'whitened_window';
