-- Undoes 0012_evidence (the code layer is removed before any downgrade).
DROP TABLE drift.embedding_whitening;
ALTER TABLE drift.embedding_calibration DROP COLUMN evidence_rank, DROP COLUMN evidence_bias;
DROP TABLE drift.embedding_evidence;
DELETE FROM drift.settings WHERE key IN ('evidence_shift', 'evidence_direction_window', 'evidence_horizon');
