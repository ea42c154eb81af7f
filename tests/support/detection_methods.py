"""Window tests on embedding samples, in numpy: the same-run anchors and the rollup-cost
candidates the detection benchmark compares (tests use the anchors on the committed slice).

Every test takes a reference sample ``ref`` (n, d) and a current window ``cur`` (m, d) of unit
rows and returns a p-value; ``seed_rule`` returns the seed's decision.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

SEED_CENTROID_THRESHOLD = 0.15


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def seed_rule(ref: np.ndarray, cur: np.ndarray) -> bool:
    """The seed's rule: cosine distance between the two centroids above 0.15."""
    return cosine_distance(ref.mean(0), cur.mean(0)) > SEED_CENTROID_THRESHOLD


def mmd_permutation_p(ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator, permutations: int = 500) -> float:
    """Exact two-sample MMD permutation test: Gaussian kernel, median-heuristic bandwidth."""
    x = np.vstack([ref, cur]).astype(np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
    iu = np.triu_indices(len(x), 1)
    bandwidth2 = np.median(d2[iu])
    k = np.exp(-d2 / bandwidth2)
    n, m = len(ref), len(cur)
    # Signed weights: MMD^2 (biased, V-statistic) = s' K s with s = 1/n on X, -1/m on Y.
    s = np.empty((len(x), permutations + 1))
    base = np.r_[np.full(n, 1 / n), np.full(m, -1 / m)]
    s[:, 0] = base
    for j in range(1, permutations + 1):
        s[:, j] = base[rng.permutation(len(x))]
    vals = np.einsum("ij,ij->j", s, k @ s)
    return float((1 + np.sum(vals[1:] >= vals[0])) / (permutations + 1))


def three_moment_logsf(stat: npt.ArrayLike, h: npt.ArrayLike, traces: tuple[float, float, float]) -> np.ndarray:
    """ln P(T > stat) for a weighted chi-square T with cumulants tr^j h^j (times 1, 2, 8 for
    j = 1, 2, 3), ``traces`` the tr^j: Pearson's three-moment fit, as drift.three_moment_sf.
    Element-wise over arrays of stat and h."""
    t1, t2, t3 = traces
    nu = t2**3 / t3**2
    s, h = np.asarray(stat, dtype=float), np.asarray(h, dtype=float)
    return np.asarray(stats.chi2.logsf(nu + (s - t1 * h) * np.sqrt(nu / (t2 * h * h)), nu))


def _three_moment_p(stat: float, h: float, traces: tuple[float, float, float]) -> float:
    """P(T > stat) for T = |mean difference|^2: a weighted chi-square matched in three cumulants."""
    return float(np.exp(three_moment_logsf(stat, h, traces)))


def covariance_traces(x: np.ndarray) -> tuple[float, float, float]:
    """tr S, tr S^2, tr S^3 of the sample covariance, through the n x n Gram matrix (cheap when d > n)."""
    c = x - x.mean(0)
    g = c @ c.T / (len(x) - 1)
    return float(np.trace(g)), float(np.sum(g * g)), float(np.sum(g * (g @ g)))


def mean_shift_p(ref: np.ndarray, cur: np.ndarray) -> float:
    """Today's centroid test: |mean difference|^2, three-moment fit from the reference covariance."""
    d = cur.mean(0) - ref.mean(0)
    return _three_moment_p(float(d @ d), 1 / len(ref) + 1 / len(cur), covariance_traces(ref))


class PrincipalMeanTest:
    """Mean-shift test in the reference's top-k principal subspace (candidate a).

    Linear in the embeddings, so the current window's projection comes from the rollups'
    vector sums: k inner products per window. T = sum_j (d.u_j)^2 / (lambda_j h) ~ chi2(k).
    """

    def __init__(self, ref: np.ndarray, k: int = 20) -> None:
        self.mean = ref.mean(0)
        c = ref - self.mean
        # Top-k eigenpairs of the covariance from the n x n Gram matrix (d may exceed n).
        lam, w = np.linalg.eigh(c @ c.T / (len(ref) - 1))
        lam, w = lam[::-1][:k], w[:, ::-1][:, :k]
        u = c.T @ w
        self.lam, self.u = lam, u / np.linalg.norm(u, axis=0)
        self.n = len(ref)
        self.k = k

    def p(self, cur: np.ndarray) -> float:
        z = (cur.mean(0) - self.mean) @ self.u
        t = float(np.sum(z * z / (self.lam * (1 / self.n + 1 / len(cur)))))
        return float(stats.chi2.sf(t, self.k))


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 25) -> np.ndarray:
    """Spherical k-means (cosine), k-means++ start: unit centroids (k, d)."""
    c = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        dist = 1 - np.max(x @ np.array(c).T, axis=1)
        p = np.maximum(dist, 0) ** 2
        c.append(x[rng.choice(len(x), p=p / p.sum())])
    cent = np.array(c)
    for _ in range(iters):
        lab = np.argmax(x @ cent.T, axis=1)
        for j in range(k):
            members = x[lab == j]
            if len(members):
                v = members.sum(0)
                cent[j] = v / np.linalg.norm(v)
    return cent


class ClusterShareTest:
    """Cluster-level novelty and mix test against baseline centroids (candidate c).

    k-means on the reference; each embedding counts in the cell of its nearest centroid, or in
    an extra "far" cell beyond the reference's ``far_quantile`` of nearest-centroid distances.
    Per-bucket counts roll up; the window's counts are tested against the reference's with the
    2 x (k+1) chi-square test of homogeneity (G-test optional).
    """

    def __init__(self, ref: np.ndarray, k: int, rng: np.random.Generator, far_quantile: float | None = 0.95,
                 fit_share: float = 1.0) -> None:
        # Centroids fitted on one part of the reference, shares and radius from the rest: the
        # fitted points sit closer to their centroids than new ones do (an in-sample radius
        # calls fresh traffic "far" too often).
        cut = len(ref) if fit_share >= 1 else int(len(ref) * fit_share)
        self.cent = kmeans(ref[:cut], k, rng)
        held = ref if cut == len(ref) else ref[cut:]
        sim = held @ self.cent.T
        self.radius = None if far_quantile is None else float(np.quantile(1 - sim.max(1), far_quantile))
        self.ref_counts = self.counts(held)

    def counts_rows(self, x: np.ndarray) -> np.ndarray:
        """The cell of each row: its nearest centroid, or k (far) beyond the radius."""
        sim = x @ self.cent.T
        lab = np.argmax(sim, axis=1)
        if self.radius is not None:
            lab = np.where(1 - sim.max(1) > self.radius, len(self.cent), lab)
        return lab

    def counts(self, x: np.ndarray) -> np.ndarray:
        return np.bincount(self.counts_rows(x), minlength=len(self.cent) + (self.radius is not None))

    def p(self, cur: np.ndarray, g_test: bool = False) -> float:
        return homogeneity_p(self.ref_counts, self.counts(cur), g_test)


def homogeneity_p(a: np.ndarray, b: np.ndarray, g_test: bool = False) -> float:
    """Chi-square (or G) test that two count vectors come from one multinomial."""
    keep = (a + b) > 0
    a, b = a[keep].astype(float), b[keep].astype(float)
    tot = a + b
    na, nb = a.sum(), b.sum()
    ea, eb = tot * na / (na + nb), tot * nb / (na + nb)
    if g_test:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = 2 * (np.nansum(a * np.log(a / ea)) + np.nansum(b * np.log(b / eb)))
    else:
        t = float(np.sum((a - ea) ** 2 / ea + (b - eb) ** 2 / eb))
    return float(stats.chi2.sf(t, len(a) - 1))


class RandomFeatureMMD:
    """Random-Fourier-feature MMD (candidate b): per-row features cos(Wx + b) whose means roll up
    per bucket; |mean feature difference|^2 with the three-moment null of the mean test."""

    def __init__(self, ref: np.ndarray, features: int, rng: np.random.Generator) -> None:
        sub = ref[rng.choice(len(ref), min(len(ref), 500), replace=False)]
        sq = np.einsum("ij,ij->i", sub, sub)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * sub @ sub.T, 0)
        sigma2 = np.median(d2[np.triu_indices(len(sub), 1)]) / 2  # exp(-d2 / (2 sigma2)) = MMD's kernel
        self.w = rng.standard_normal((ref.shape[1], features)) / np.sqrt(sigma2)
        self.b = rng.uniform(0, 2 * np.pi, features)
        f = self.phi(ref)
        self.mean = f.mean(0)
        self.traces = covariance_traces(f)
        self.n = len(ref)

    def phi(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(2 / self.w.shape[1]) * np.cos(x @ self.w + self.b)

    def p(self, cur: np.ndarray) -> float:
        d = self.phi(cur).mean(0) - self.mean
        return _three_moment_p(float(d @ d), 1 / self.n + 1 / len(cur), self.traces)


def arcsine_increase_p(x: float, n: float, x0: float, n0: float) -> float:
    """One-sided arcsine two-sample test that x/n exceeds x0/n0 (drift.rate_increase_p)."""
    z = (np.arcsin(np.sqrt((x + 0.375) / (n + 0.75))) - np.arcsin(np.sqrt((x0 + 0.375) / (n0 + 0.75)))) / np.sqrt(
        1 / (4 * n + 2) + 1 / (4 * n0 + 2))
    return float(stats.norm.sf(z))


def nn_novelty_p(ref: np.ndarray, cur: np.ndarray, quantile: float = 0.99) -> float:
    """Today's novelty rate (exact search): share of the window whose nearest reference point is
    farther than the reference's own leave-one-out nearest-neighbour distance quantile."""
    sim = ref @ ref.T
    np.fill_diagonal(sim, -np.inf)
    loo = 1 - sim.max(1)
    radius = np.quantile(loo, quantile)
    expected = int(np.sum(loo > radius))
    novel = int(np.sum(1 - (cur @ ref.T).max(1) > radius))
    return arcsine_increase_p(novel, len(cur), expected, len(ref))
