-- The whitened window test (metric whitened_mean_shift): the mean test in the sequential
-- test's whitened features, over a window longer than the current one, so that a small
-- drift that persists for hours is judged on all of that data at once.

INSERT INTO drift.settings (key, value, description) VALUES
    ('whitened_window', '3 hours', 'Data the whitened embedding mean test (whitened_mean_shift) judges at once, ending at the current window''s end: longer catches smaller drifts that persist, later.')
ON CONFLICT (key) DO NOTHING;

ALTER TABLE drift.embedding_calibration
    ADD COLUMN whitened_trace1 double precision,
    ADD COLUMN whitened_trace2 double precision,
    ADD COLUMN whitened_trace3 double precision,
    ADD COLUMN whitened_dispersion double precision;
COMMENT ON COLUMN drift.embedding_calibration.whitened_trace1 IS 'tr M, M = (S_a + ridge I)^-1 S_b (the sequential test''s whitening): the whitened mean statistic has mean tr M h without drift, h = dispersion (1/n + 1/n_baseline).';
COMMENT ON COLUMN drift.embedding_calibration.whitened_trace2 IS 'tr M^2, less the bias of S_b as a sample covariance: the statistic''s variance is 2 tr M^2 h^2 without drift.';
COMMENT ON COLUMN drift.embedding_calibration.whitened_dispersion IS 'How much more the whitened statistic of whitened_window-long blocks of the baseline varies than independent embeddings predict (at least 1; 1 with fewer than 6 blocks): traffic that wanders over hours.';
COMMENT ON COLUMN drift.embedding_calibration.whitened_trace3 IS 'tr M^3, less the bias of S_b: its third cumulant is 8 tr M^3 h^3, for the three-moment chi-square fit of its tail.';
