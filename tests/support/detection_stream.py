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

from tests.support.detection_methods import ClusterShareTest, covariance_traces
from tests.support.real_embeddings import RealCase, TopicSampler, ada_like

MINUTES_PER_DAY = 1440


@dataclass
class Baseline:
    """What set_baseline keeps: mean, covariance spectrum (for the mean test), cluster cells."""

    n: int
    mean: np.ndarray
    traces: tuple[float, float, float]
    clusters: ClusterShareTest


def make_baseline(ref: np.ndarray, rng: np.random.Generator, k: int = 16, far_quantile: float = 0.95,
                  fit_rows: int = 1000) -> Baseline:
    """Centroids from ``fit_rows`` reference rows, cluster shares and far radius from the rest."""
    fit_share = min(0.5, fit_rows / len(ref))
    clusters = ClusterShareTest(ref, k, rng, far_quantile, fit_share=fit_share)
    # The traces from at most 2,000 rows (the size of drift.baseline_samples).
    return Baseline(len(ref), ref.mean(0), covariance_traces(ref[:2000]), clusters)


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
    t1, t2, t3 = base.traces
    nu = t2**3 / t3**2
    ref = base.clusters.ref_counts.astype(float)
    out = []
    for L in lengths:
        lo = np.maximum(t - L, 0)
        n = cn[t] - cn[lo]
        nn = np.maximum(n, 1)
        d = (cs[t] - cs[lo]) / nn[:, None] - base.mean
        stat = np.einsum("ij,ij->i", d, d)
        h = 1 / base.n + 1 / nn
        k1, k2 = t1 * h, 2 * t2 * h * h
        p_mean = stats.chi2.sf(nu + (stat - k1) * np.sqrt(2 * nu / k2), nu)
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


def crossings(minp: np.ndarray, level: float) -> int:
    """Events raised by 'smallest p below level': one per up-crossing."""
    below = minp < level
    return int(below[0]) + int(np.sum(below[1:] & ~below[:-1]))


def first_alarm(minp: np.ndarray, level: float) -> int | None:
    hit = np.flatnonzero(minp < level)
    return int(hit[0]) if len(hit) else None


def simulate(sampler: TopicSampler, case: RealCase, *, rate_per_hour: float, baseline_hours: float,
             hours: float, rng: np.random.Generator, lengths: tuple[int, ...], lift: bool = False,
             k: int = 16, chunk_days: float = 1.0, pre_hours: float = 0.0) -> tuple[Baseline, np.ndarray]:
    """A baseline of ``baseline_hours`` then ``hours`` of traffic in ``case``, bucketed per
    minute; returns the baseline and the smallest scan p-value of every minute."""
    def draw(n: int, c: RealCase) -> np.ndarray:
        x = sampler.draw(n, c)
        return ada_like(x) if lift else x

    ref = draw(rng.poisson(rate_per_hour * baseline_hours), RealCase("baseline"))
    base = make_baseline(ref, rng, k=k)
    span = max(lengths)
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
        keep = min(span, len(b.n))
        carry = Buckets(b.n[-keep:], b.sums[-keep:], b.cells[-keep:])
        s += m
    return base, np.vstack(out)[pre:]
