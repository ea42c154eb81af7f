-- Sequential embedding evidence: a CUSUM per model, one row per folded bucket, so a drift that
-- persists accumulates evidence across windows instead of being judged one hour at a time.

INSERT INTO drift.settings (key, value, description) VALUES
    ('evidence_shift', '0.25', 'Shift of the mean, in baseline standard deviations per embedding along the direction of movement, that the sequential embedding test (mean_shift_evidence) is tuned to: smaller waits longer for subtler drifts.'),
    ('evidence_direction_window', '1 hour', 'The sequential embedding test projects each new bucket on the direction the mean moved over this much data just before it.'),
    ('evidence_horizon', '6 hours', 'When the sequential embedding test starts or catches up, it folds at most this much data back from now.')
ON CONFLICT (key) DO NOTHING;

CREATE TABLE drift.embedding_evidence (
    model text NOT NULL,
    bucket timestamptz NOT NULL,
    n bigint NOT NULL,
    z double precision,
    statistic double precision NOT NULL,
    since timestamptz,
    run_n bigint NOT NULL,
    PRIMARY KEY (model, bucket)
);
COMMENT ON TABLE drift.embedding_evidence IS 'The sequential embedding test of each model: its CUSUM statistic after each folded bucket since the baseline was set (drift.embedding_evidence_fold). Cleared when the baseline moves.';
COMMENT ON COLUMN drift.embedding_evidence.model IS 'Model name.';
COMMENT ON COLUMN drift.embedding_evidence.bucket IS 'Start of the folded bucket.';
COMMENT ON COLUMN drift.embedding_evidence.n IS 'Embeddings of the bucket when it was folded (later arrivals are not counted).';
COMMENT ON COLUMN drift.embedding_evidence.z IS 'The bucket''s embeddings projected on the direction the mean moved before it, standardized: N(0, n) without drift. NULL when that direction had fewer than min_samples embeddings.';
COMMENT ON COLUMN drift.embedding_evidence.statistic IS 'CUSUM after this bucket, in nats: max(0, previous + evidence_shift * z - n * evidence_shift^2 / 2).';
COMMENT ON COLUMN drift.embedding_evidence.since IS 'First bucket of the current run of evidence (the statistic was 0 before it); NULL while the statistic is 0.';
COMMENT ON COLUMN drift.embedding_evidence.run_n IS 'Embeddings folded since the run began.';

-- The whitening of the sequential test: its direction is the ridge-whitened mean shift,
-- (S_a + ridge I)^-1 (window mean - baseline mean), S_a the covariance of half the baseline
-- sample; the other half's covariance S_b gives the variance along it.
ALTER TABLE drift.embedding_calibration
    ADD COLUMN evidence_rank integer,
    ADD COLUMN evidence_bias double precision;
COMMENT ON COLUMN drift.embedding_calibration.evidence_rank IS 'Features the sequential test whitens in: the embedding dimensions, or (wider embeddings) inner products with that many centred baseline-sample points. NULL: no sequential test (too small a sample).';
COMMENT ON COLUMN drift.embedding_calibration.evidence_bias IS 'tr((S_a + ridge I)^-1 S_b) / baseline rows: the mean per embedding of the sequential test''s projection without drift, which the estimated baseline mean puts there; taken off.';

CREATE TABLE drift.embedding_whitening (
    model text NOT NULL,
    i integer NOT NULL,
    landmark vector,
    cov_row vector,
    inverse_row vector,
    PRIMARY KEY (model, i)
);
COMMENT ON TABLE drift.embedding_whitening IS 'Per model and feature i: the feature map, the features'' sample covariance and its ridge inverse, computed from drift.baseline_samples when the baseline is set (drift.embedding_whiten).';
COMMENT ON COLUMN drift.embedding_whitening.model IS 'Model name.';
COMMENT ON COLUMN drift.embedding_whitening.i IS 'Feature number, from 1.';
COMMENT ON COLUMN drift.embedding_whitening.landmark IS 'Feature i is the inner product with this unit vector, one of an orthonormal basis of the span of centred baseline-sample points (wider embeddings); NULL: feature i is embedding dimension i.';
COMMENT ON COLUMN drift.embedding_whitening.cov_row IS 'Row i of the covariance S_b of the features over one half of the baseline sample (even rows in id order): the variance along a direction.';
COMMENT ON COLUMN drift.embedding_whitening.inverse_row IS 'Row i of (S_a + ridge I)^-1, S_a the covariance over the other half (odd rows), ridge its mean eigenvalue (tr S_a / rank).';
