"""Streams of real-embedding traffic, bucketed by minute, and the window-scan event rule
evaluated every minute (the numpy model of what drift.evaluate() does from the rollups).

Each minute holds Poisson(rate/60) embeddings. What a bucket keeps is what the rollups keep:
its count, its vector sum, and its counts per baseline cluster (plus the "far" cell). The
event rule looks, every minute, at windows of several lengths ending now, runs the mean-shift
test and the cluster-share test on each, and raises when the smallest p-value falls below a
level; that level is calibrated so that drift-free replays raise at most one event per model
per 30 days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from tests.support.detection_methods import ClusterShareTest, covariance_traces, three_moment_logsf
from tests.support.real_embeddings import RealCase, TopicSampler, ada_like

MINUTES_PER_DAY = 1440


@dataclass
class Baseline:
    """What set_baseline keeps: mean, covariance spectrum (for the mean test), cluster cells."""

    n: int
    mean: np.ndarray
    traces: tuple[float, float, float]
    clusters: ClusterShareTest
    dispersion: float = 1.0  # the mean test's widening, as embedding_calibration.dispersion


def blocks_of(ref: np.ndarray, blocks: int) -> list[np.ndarray]:
    """The baseline's rows (in arrival order) cut into that many consecutive blocks of time."""
    return np.array_split(ref, blocks)


def mean_dispersion(ref: np.ndarray, t1: float, blocks: int) -> float:
    """drift.embedding_calibrate's overdispersion: the mean over one-window blocks of
    |sqrt(n) (block mean - baseline mean)|^2 / (1 - n/N), over tr S; at least 1, 1 with fewer
    than 8 blocks. Even drift-free traffic gets a little above 1 from noise, as in SQL."""
    if blocks < 8:
        return 1.0
    mean = ref.mean(0)
    ratios = [len(b) * float(np.sum((b.mean(0) - mean) ** 2)) / (1 - len(b) / len(ref)) / t1
              for b in blocks_of(ref, blocks)]
    return max(float(np.mean(ratios)), 1.0)


def make_baseline(ref: np.ndarray, rng: np.random.Generator, k: int = 16, far_quantile: float = 0.95,
                  fit_rows: int = 1000, blocks: int = 0) -> Baseline:
    """Centroids from ``fit_rows`` reference rows, cluster shares and far radius from the rest;
    the mean test's dispersion from ``blocks`` blocks of the current window's length (0: none)."""
    fit_share = min(0.5, fit_rows / len(ref))
    clusters = ClusterShareTest(ref, k, rng, far_quantile, fit_share=fit_share)
    # The traces from at most 2,000 rows (the size of drift.baseline_samples).
    traces = covariance_traces(ref[:2000])
    return Baseline(len(ref), ref.mean(0), traces, clusters, mean_dispersion(ref, traces[0], blocks))


@dataclass
class Buckets:
    n: np.ndarray  # (minutes,)
    sums: np.ndarray  # (minutes, d)
    cells: np.ndarray  # (minutes, k + 1)


def bucketize(x: np.ndarray, minutes: int, rng: np.random.Generator, base: Baseline) -> Buckets:
    """Spread rows over minutes in arrival order (Poisson counts given the total)."""
    counts = rng.multinomial(len(x), np.full(minutes, 1 / minutes))
    edges = np.r_[0, np.cumsum(counts)]
    sums = np.add.reduceat(np.vstack([x, np.zeros((1, x.shape[1]))]), edges[:-1], axis=0)
    sums[counts == 0] = 0
    cells_row = base.clusters.counts_rows(x)
    ncell = base.clusters.ref_counts.shape[0]
    onehot = np.zeros((len(x) + 1, ncell))
    onehot[np.arange(len(x)), cells_row] = 1
    cells = np.add.reduceat(onehot, edges[:-1], axis=0)
    cells[counts == 0] = 0
    return Buckets(counts.astype(float), sums, cells)


def scan_p(b: Buckets, base: Baseline, lengths: tuple[int, ...], start: int = 0) -> np.ndarray:
    """p-values (minutes - start, 2 * len(lengths)): mean test and cluster test of each window
    length ending at each minute from ``start`` (windows shorter than their length at the
    start of the stream use what there is)."""
    cn = np.r_[0, np.cumsum(b.n)]
    cs = np.vstack([np.zeros((1, b.sums.shape[1])), np.cumsum(b.sums, axis=0)])
    cc = np.vstack([np.zeros((1, b.cells.shape[1])), np.cumsum(b.cells, axis=0)])
    t = np.arange(start + 1, len(b.n) + 1)
    ref = base.clusters.ref_counts.astype(float)
    out = []
    for L in lengths:
        lo = np.maximum(t - L, 0)
        n = cn[t] - cn[lo]
        nn = np.maximum(n, 1)
        d = (cs[t] - cs[lo]) / nn[:, None] - base.mean
        stat = np.einsum("ij,ij->i", d, d)
        p_mean = np.exp(three_moment_logsf(stat, base.dispersion * (1 / base.n + 1 / nn), base.traces))
        cur = cc[t] - cc[lo]
        tot = cur + ref
        na, nb = ref.sum(), cur.sum(axis=1)
        ea = tot * (na / (na + nb))[:, None]
        eb = tot * (nb / (na + nb))[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            chi = np.nansum((ref - ea) ** 2 / ea + (cur - eb) ** 2 / eb, axis=1)
        df = np.sum(tot > 0, axis=1) - 1
        p_cl = stats.chi2.sf(chi, df)
        small = n < 30  # min_samples: no test on a nearly empty window
        p_mean[small] = 1
        p_cl[small] = 1
        out += [p_mean, p_cl]
    return np.stack(out, axis=1)


def crossings(alarm: np.ndarray) -> int:
    """Events raised by a rule that alarms at these minutes: one per up-crossing."""
    return int(alarm[0]) + int(np.sum(alarm[1:] & ~alarm[:-1]))


def first_alarm(alarm: np.ndarray) -> int | None:
    hit = np.flatnonzero(alarm)
    return int(hit[0]) if len(hit) else None


# -- the sequential embedding test (drift.embedding_evidence_fold), bucket by bucket ------------
# Widest feature space the sequential test whitens in; wider embeddings are first mapped to
# their inner products with this many (centred) baseline-sample points.
EVIDENCE_RANK = 256


def orthonormal_span(points: np.ndarray, rank: int) -> np.ndarray:
    """Modified Gram-Schmidt over the points in order, passing over a point already (nearly)
    in the span of the earlier ones, until ``rank`` unit vectors (drift.embedding_whiten)."""
    basis: list[np.ndarray] = []
    for p in points:
        v = p.astype(np.float64)
        for q in basis:
            v = v - (q @ v) * q
        if np.linalg.norm(v) > 1e-3 * np.linalg.norm(p):
            basis.append(v / np.linalg.norm(v))
        if len(basis) == rank:
            break
    return np.array(basis)


@dataclass
class EvidenceBaseline:
    """What the sequential test keeps of a baseline (drift.embedding_whitening): the baseline
    mean, the feature map, the ridge inverse of one half of the sample's covariance and the
    covariance of the other half."""

    n: int
    mean: np.ndarray  # baseline mean, embedding space
    landmarks: np.ndarray | None  # (r, d) orthonormal basis of centred sample points, or None: features = embedding
    inverse: np.ndarray  # (S_a + ridge I)^-1, S_a the covariance of the features of one half, ridge its mean eigenvalue
    cov: np.ndarray  # S_b: the other half's, for the variance along a direction the inverse chose
    half_rows: int  # rows of that half: the sample size whitened_traces corrects for
    bias: float  # tr(inverse S_b) / n: E[(y - mean) . inverse (window mean - mean)] without drift

    def features(self, x: np.ndarray) -> np.ndarray:
        return x if self.landmarks is None else x @ self.landmarks.T

    @classmethod
    def of(cls, ref: np.ndarray, sample: np.ndarray | None = None) -> EvidenceBaseline:
        """From the baseline rows; ``sample`` is drift.baseline_samples in id order (default:
        the first 2,000 rows, which are a random sample of a shuffled stream)."""
        sample = ref[:2000] if sample is None else sample
        # Alternate rows: the halves are independent, so the variance along a direction the
        # first half's inverse picked is not underestimated (the same half would: its
        # quietest-looking directions are partly sampling noise).
        half_a, half_b = sample[0::2], sample[1::2]
        centred_a, centred_b = half_a - half_a.mean(0), half_b - half_b.mean(0)
        landmarks = None if sample.shape[1] <= EVIDENCE_RANK else orthonormal_span(centred_a, EVIDENCE_RANK)

        def cov_of(centred: np.ndarray) -> np.ndarray:
            y = centred if landmarks is None else centred @ landmarks.T
            return y.T @ y / len(y)

        cov_a, cov_b = cov_of(centred_a), cov_of(centred_b)
        ridge = float(np.trace(cov_a)) / len(cov_a)
        inverse = np.linalg.inv(cov_a + ridge * np.eye(len(cov_a)))
        return cls(len(ref), ref.mean(0), landmarks, inverse, cov_b, len(half_b),
                   float(np.trace(inverse @ cov_b)) / len(ref))


@dataclass
class EvidenceState:
    statistic: float = 0.0
    run_n: float = 0.0


def evidence(n: np.ndarray, sums: np.ndarray, base: EvidenceBaseline, *, shift: float = 0.25,
             look_back: int = 60, min_n: int = 100, start: int = 0,
             state: EvidenceState | None = None) -> tuple[np.ndarray, EvidenceState]:
    """(statistic, embeddings in its run, embeddings in the window of ``look_back`` buckets
    ending there) after each bucket from ``start`` (earlier buckets only feed the direction),
    as drift.embedding_evidence_fold and the report compute them from the rollups."""
    st = EvidenceState() if state is None else EvidenceState(state.statistic, state.run_n)
    cn = np.r_[0, np.cumsum(n)]
    fs = base.features(sums)
    cs = np.vstack([np.zeros((1, fs.shape[1])), np.cumsum(fs, axis=0)])
    mean = base.features(base.mean)
    t = np.arange(start, len(n))
    lo = np.maximum(0, t - look_back)
    m = cn[t] - cn[lo]
    # Every bucket's direction depends only on the buckets before it, so all of them are
    # computed at once; only the CUSUM recursion itself runs bucket by bucket.
    z = np.full(len(t), np.nan)
    use = (n[t] > 0) & (m >= min_n)
    if use.any():
        u = ((cs[t[use]] - cs[lo[use]]) / m[use, None] - mean) @ base.inverse.T
        var = np.einsum("ij,ij->i", u @ base.cov, u)
        with np.errstate(invalid="ignore", divide="ignore"):
            z[use] = np.where(var > 0, (np.einsum("ij,ij->i", fs[t[use]], u) - n[t[use]] * (u @ mean + base.bias))
                              / np.sqrt(np.where(var > 0, var, 1)), np.nan)
    out = np.empty((len(t), 3))
    out[:, 2] = cn[t + 1] - cn[np.maximum(0, t + 1 - look_back)]
    for i, b in enumerate(t):
        if not np.isnan(z[i]):
            if st.statistic == 0:
                st.run_n = 0
            st.statistic = max(0.0, st.statistic + shift * z[i] - n[b] * shift * shift / 2)
            st.run_n = st.run_n + n[b] if st.statistic > 0 else 0
        out[i, :2] = st.statistic, st.run_n
    return out, st


def evidence_alarm(ev: np.ndarray, threshold: float, min_n: int = 100) -> np.ndarray:
    """The report's decision: evidence past the line, with min_samples in the current window."""
    return (ev[:, 0] > threshold) & (ev[:, 2] >= min_n)


def evidence_threshold(rate_per_hour: float, false_alarm_days: float = 30.0, shift: float = 0.25) -> float:
    """drift.evidence_threshold: ln(2 N k^2), N the embeddings of one false-alarm interval."""
    return max(float(np.log(2 * rate_per_hour * 24 * false_alarm_days * shift * shift)), 1.0)


# -- the whitened window test (drift.embedding_whitened_test), from the same whitening --------
def whitened_traces(base: EvidenceBaseline) -> tuple[float, float, float]:
    """tr B, tr B^2, tr B^3 of B = inverse Sigma, estimated from M = inverse S_b: the cumulants
    of the whitened statistic's null."""
    # The plug-in traces of a sample covariance are biased upward: with S_b Wishart over m
    # rows, E tr M^2 = (1 + 1/m) tr B^2 + (tr B)^2 / m and E tr M^3 ~ tr B^3
    # + 3 tr B tr B^2 / m + (tr B)^3 / m^2, and an inflated t2, t3 makes the test far stricter
    # than its level when m is small next to the rank. These are those moment corrections
    # solved for tr B^j, floored at the values Cauchy-Schwarz allows (t2 >= t1^2 / r,
    # t3 >= t2^2 / t1) so noise cannot push them below what any covariance has.
    m = base.inverse @ base.cov
    m2 = m @ m
    rows, rank = base.half_rows, len(base.cov)
    t1 = float(np.trace(m))
    t2 = max((float(np.trace(m2)) - t1 * t1 / rows) / (1 + 1 / rows), t1 * t1 / rank)
    t3 = max(float(np.trace(m2 @ m)) - 3 * t1 * t2 / rows - t1**3 / rows**2, t2 * t2 / t1)
    return t1, t2, t3


def whitened_dispersion(ref: np.ndarray, base: EvidenceBaseline, blocks: int) -> float:
    """drift.whitened_dispersion: the mean over blocks of the whitened window's length of the
    block's whitened statistic over tr M (1/n - 1/N); at least 1, 1 with fewer than 6 blocks."""
    if blocks < 6:
        return 1.0
    t1 = whitened_traces(base)[0]
    mu = base.features(base.mean)
    ratios = []
    for b in blocks_of(ref, blocks):
        d = base.features(b.mean(0)) - mu
        ratios.append(float(d @ base.inverse @ d) / (t1 * (1 / len(b) - 1 / len(ref))))
    return max(float(np.mean(ratios)), 1.0)


def whitened_logp(n: np.ndarray, sums: np.ndarray, base: EvidenceBaseline, *, length: int = 180,
                  min_n: int = 100, start: int = 0, dispersion: float = 1.0) -> np.ndarray:
    """ln p of the whitened mean test on the window of ``length`` buckets ending with each
    bucket from ``start``: T = d' inverse d, d the window's mean features minus the baseline's,
    against the three-moment chi-square fit of its null (cumulants tr M^j h^j, M = inverse S_b,
    h = dispersion (1/n + 1/n_baseline)). 0 (p = 1) with fewer than ``min_n`` rows."""
    cn = np.r_[0, np.cumsum(n)]
    fs = base.features(sums)
    cs = np.vstack([np.zeros((1, fs.shape[1])), np.cumsum(fs, axis=0)])
    mu = base.features(base.mean)
    traces = whitened_traces(base)
    t = np.arange(start + 1, len(n) + 1)
    lo = np.maximum(t - length, 0)
    m = cn[t] - cn[lo]
    mm = np.maximum(m, 1)
    d = (cs[t] - cs[lo]) / mm[:, None] - mu
    stat = np.einsum("ij,ij->i", d @ base.inverse, d)
    out = three_moment_logsf(stat, dispersion * (1 / base.n + 1 / mm), traces)
    out[m < min_n] = 0.0
    return out


def whitened_window_p(base: EvidenceBaseline, cur: np.ndarray) -> float:
    """p-value of the whitened mean test (whitened_logp's) on one window of rows ``cur``."""
    d = base.features(cur.mean(0)) - base.features(base.mean)
    stat = float(d @ base.inverse @ d)
    return float(np.exp(three_moment_logsf(stat, 1 / base.n + 1 / len(cur), whitened_traces(base))))


def look_alpha(window_buckets: float, *, streams: int = 5, interval_buckets: float = 30 * MINUTES_PER_DAY,
               alpha: float = 0.01) -> float:
    """drift.look_alpha(window): the level at which a sliding window of that many buckets,
    evaluated every bucket, crosses about once per interval over ``streams`` metrics."""
    from scipy import optimize

    looks = streams * interval_buckets

    def excess(u: float) -> float:
        return looks * min(stats.norm.sf(u), 2 * u * np.exp(-u * u / 2) / np.sqrt(2 * np.pi) / window_buckets) - 1

    return min(alpha, float(stats.norm.sf(optimize.brentq(excess, 0.5, 38))))


def simulate(sampler: TopicSampler, case: RealCase, *, rate_per_hour: float, baseline_hours: float,
             hours: float, rng: np.random.Generator, lengths: tuple[int, ...], lift: bool = False,
             k: int = 16, chunk_days: float = 1.0, pre_hours: float = 0.0,
             tunings: tuple[tuple[float, int], ...] = ((0.25, 60),),
             whitened_lengths: tuple[int, ...] = (180,),
             ) -> tuple[Baseline, np.ndarray, list[np.ndarray], np.ndarray]:
    """A baseline of ``baseline_hours`` then ``hours`` of traffic in ``case``, bucketed per
    minute; returns the baseline, the scan p-values of every minute (columns as scan_p) and,
    per tuning (evidence_shift, evidence_direction_window in minutes) of the sequential test,
    its columns of ``evidence`` after every minute, and the whitened window test's ln p per
    minute for each of ``whitened_lengths`` (minutes)."""
    def draw(n: int, c: RealCase) -> np.ndarray:
        x = sampler.draw(n, c)
        return ada_like(x) if lift else x

    ref = draw(rng.poisson(rate_per_hour * baseline_hours), RealCase("baseline"))
    # The dispersions from blocks of the baseline as long as each test's window, as SQL does.
    base = make_baseline(ref, rng, k=k, blocks=int(baseline_hours))
    ev_base = EvidenceBaseline.of(ref)
    white_dispersion = [whitened_dispersion(ref, ev_base, int(baseline_hours * 60) // L) for L in whitened_lengths]
    ev_states = [EvidenceState() for _ in tunings]
    ev_out: list[list[np.ndarray]] = [[] for _ in tunings]
    span = max((*lengths, *whitened_lengths))
    white_out: list[np.ndarray] = []
    pre = int(round(pre_hours * 60))
    minutes = pre + int(round(hours * 60))
    step = int(chunk_days * MINUTES_PER_DAY)
    out = []
    carry: Buckets | None = None
    s = 0
    while s < minutes:
        m = min(step, minutes - s)
        if s < pre:  # the pre-change stretch is one chunk of its own
            m = min(m, pre - s)
        b = bucketize(draw(rng.poisson(rate_per_hour * m / 60), case if s >= pre else RealCase("none")), m, rng, base)
        if carry is not None:  # windows reach back into the previous chunk
            b = Buckets(np.r_[carry.n, b.n], np.vstack([carry.sums, b.sums]), np.vstack([carry.cells, b.cells]))
            start = len(carry.n)
        else:
            start = 0
        p = scan_p(b, base, lengths, start)
        out.append(p)
        for i, (shift, look_back) in enumerate(tunings):
            ev, ev_states[i] = evidence(b.n, b.sums, ev_base, shift=shift, look_back=look_back, start=start,
                                        state=ev_states[i])
            ev_out[i].append(ev)
        white_out.append(np.stack([whitened_logp(b.n, b.sums, ev_base, length=L, start=start, dispersion=phi)
                                   for L, phi in zip(whitened_lengths, white_dispersion, strict=True)], axis=1)
                         if whitened_lengths
                         else np.zeros((len(b.n) - start, 0)))
        keep = min(span, len(b.n))
        carry = Buckets(b.n[-keep:], b.sums[-keep:], b.cells[-keep:])
        s += m
    return base, np.vstack(out)[pre:], [np.vstack(e)[pre:] for e in ev_out], np.vstack(white_out)[pre:]
