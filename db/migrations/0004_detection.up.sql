-- Detection: settings of the calibrated tests, the per-model embedding calibration, the bounded
-- baseline sample (novelty rate) and the per-bucket novelty cache. How the tests work:
-- db/repeatable/40_statistics.sql and 50_baselines.sql.

INSERT INTO drift.settings (key, value, description) VALUES
    ('false_alarm_interval', '30 days', 'Expected data time between false events of one drift-free model evaluated every bucket; sets the per-evaluation significance level (0 = use alpha at every evaluation).'),
    ('novelty_sample_size', '2000', 'Embeddings sampled from the baseline window for the nearest-neighbour novelty rate; bounds its cost whatever the history size.'),
    ('novelty_per_bucket', '200', 'At most this many embeddings of each bucket (a hashed-id subsample) are searched for the novelty rate: its cost stays flat however busy the model.'),
    ('novelty_quantile', '0.99', 'An embedding is novel when its nearest baseline-sample neighbour is farther than this quantile of the sample''s own nearest-neighbour distances.'),
    ('embedding_distance_floor', '0', 'Optional effect floor: centroid cosine distance below which a significant mean shift is not reported as drift (0 = off).')
ON CONFLICT (key) DO NOTHING;

-- ---------------------------------------------------------------------------------------------
-- Baseline calibration of the embedding tests
-- ---------------------------------------------------------------------------------------------
CREATE TABLE drift.embedding_calibration (
    model text PRIMARY KEY,
    dims integer NOT NULL,
    units integer NOT NULL,
    unit_source text NOT NULL CHECK (unit_source IN ('buckets', 'sample')),
    trace1 double precision NOT NULL,
    trace2 double precision NOT NULL,
    trace3 double precision NOT NULL,
    blocks integer NOT NULL,
    dispersion double precision NOT NULL,
    sample_n integer NOT NULL,
    novelty_radius double precision,
    novelty_expected double precision,
    computed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE drift.embedding_calibration IS 'Null distribution of the embedding tests, estimated from each model''s baseline when it is set.';
COMMENT ON COLUMN drift.embedding_calibration.model IS 'Model name.';
COMMENT ON COLUMN drift.embedding_calibration.dims IS 'Embedding dimension.';
COMMENT ON COLUMN drift.embedding_calibration.units IS 'Baseline units the covariance traces come from (non-empty buckets, or sample rows when the baseline has fewer than 30 buckets).';
COMMENT ON COLUMN drift.embedding_calibration.unit_source IS 'buckets (rollups) or sample (drift.baseline_samples rows).';
COMMENT ON COLUMN drift.embedding_calibration.trace1 IS 'tr(S): total variance of one embedding, from the spread of the baseline units'' means.';
COMMENT ON COLUMN drift.embedding_calibration.trace2 IS 'tr(S^2), from squared inner products of pairs of distinct units'' deviations.';
COMMENT ON COLUMN drift.embedding_calibration.trace3 IS 'tr(S^3), from triples of distinct units (clamped to the range any covariance allows).';
COMMENT ON COLUMN drift.embedding_calibration.blocks IS 'Window-length blocks of the baseline used for the overdispersion (0: too few, dispersion 1).';
COMMENT ON COLUMN drift.embedding_calibration.dispersion IS 'Spread of window-length block means relative to what independent embeddings predict (at least 1); scales the null.';
COMMENT ON COLUMN drift.embedding_calibration.sample_n IS 'Rows in drift.baseline_samples for this model.';
COMMENT ON COLUMN drift.embedding_calibration.novelty_radius IS 'Cosine distance: the novelty_quantile of the sample''s leave-one-out nearest-neighbour distances.';
COMMENT ON COLUMN drift.embedding_calibration.novelty_expected IS 'Share of sample points farther than the radius from their nearest other sample point: the novelty rate expected without drift.';
COMMENT ON COLUMN drift.embedding_calibration.computed_at IS 'When the calibration was computed.';

CREATE TABLE drift.baseline_samples (
    model text NOT NULL,
    id bigint NOT NULL,
    embedding vector NOT NULL,
    nn_distance double precision,
    PRIMARY KEY (model, id)
);
COMMENT ON TABLE drift.baseline_samples IS 'A fixed-size, deterministic pseudo-random sample (by hashed id) of each model''s baseline embeddings, with a per-model HNSW index: the reference of the novelty rate.';
COMMENT ON COLUMN drift.baseline_samples.model IS 'Model name.';
COMMENT ON COLUMN drift.baseline_samples.id IS 'The drift.embeddings_log id sampled.';
COMMENT ON COLUMN drift.baseline_samples.embedding IS 'The embedding.';
COMMENT ON COLUMN drift.baseline_samples.nn_distance IS 'Cosine distance to its nearest other sample point (leave-one-out).';

CREATE TABLE drift.novelty_rollup (
    model text NOT NULL,
    bucket timestamptz NOT NULL,
    n bigint NOT NULL,
    scored bigint NOT NULL,
    novel bigint NOT NULL,
    PRIMARY KEY (model, bucket)
);
COMMENT ON TABLE drift.novelty_rollup IS 'Novelty counts per model and bucket, so each embedding is compared with the baseline sample once; a bucket whose embedding count changed is scored again. Cleared when the baseline moves.';
COMMENT ON COLUMN drift.novelty_rollup.model IS 'Model name.';
COMMENT ON COLUMN drift.novelty_rollup.bucket IS 'Start of the time bucket.';
COMMENT ON COLUMN drift.novelty_rollup.n IS 'Embeddings in the bucket when it was scored (a bucket that has more now is scored again).';
COMMENT ON COLUMN drift.novelty_rollup.scored IS 'Embeddings searched: all of them, or a novelty_per_bucket subsample by hashed id.';
COMMENT ON COLUMN drift.novelty_rollup.novel IS 'Of those, embeddings farther than the novelty radius from every baseline-sample point.';
