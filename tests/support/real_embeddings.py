"""Real text embeddings for the detection tests and benchmarks.

The texts are Debian's package descriptions (``apt-cache dumpavail``), labelled by their
``Section:``; the model is wordllama's 256-d embedding, which ships inside its wheel, so
every machine with apt and PyPI can rebuild the corpus offline. Sections play the part
of topics: a drift moves traffic between sections, or brings in a section the baseline
never saw.

``ada_like`` lifts the 256-d vectors to 1536-d with the geometry of OpenAI's ada-002:
a large component shared by every text (unrelated texts have cosine similarities around
0.7-0.8) and low-variance extra dimensions. The lift is a fixed seeded map, so the
committed 256-d slice gives the same 1536-d set on every machine.

``python -m tests.support.real_embeddings --out tests/data/debian_wordllama_slice.npz``
rebuilds the slice the tests use.
"""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SLICE_PATH = Path(__file__).resolve().parent.parent / "data" / "debian_wordllama_slice.npz"
# Sections of the committed slice: the topics the tests draw from.
SLICE_SECTIONS = 20
SLICE_PER_SECTION = 300


@dataclass(frozen=True)
class Corpus:
    """Unit-norm embeddings with one section label per row."""

    vectors: np.ndarray  # (n, d) float32, unit rows
    sections: np.ndarray  # (n,) str

    def by_section(self, min_rows: int = 1) -> dict[str, np.ndarray]:
        """Row indices per section, sections with at least ``min_rows`` rows."""
        out: dict[str, np.ndarray] = {}
        for s in np.unique(self.sections):
            idx = np.flatnonzero(self.sections == s)
            if len(idx) >= min_rows:
                out[str(s)] = idx
        return out


def parse_dumpavail(text: str) -> list[tuple[str, str]]:
    """(section, description) per package stanza; the section without its archive area."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for stanza in text.split("\n\n"):
        section = description = ""
        lines = stanza.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Section:"):
                section = line.split(":", 1)[1].strip().rsplit("/", 1)[-1]
            elif line.startswith("Description:"):
                body = [line.split(":", 1)[1].strip()]
                for cont in lines[i + 1 :]:
                    if not cont.startswith(" "):
                        break
                    cont = cont.strip()
                    body.append("" if cont == "." else cont)
                description = re.sub(r"\s+", " ", " ".join(body)).strip()
        # Many binary packages of one source share a description: keep it once.
        if section and description and description not in seen:
            seen.add(description)
            out.append((section, description))
    return out


def dumpavail() -> str:
    """The package descriptions apt knows (run ``apt-get update`` first on a fresh machine)."""
    return subprocess.run(["apt-cache", "dumpavail"], check=True, capture_output=True, text=True).stdout


def embedder():  # type: ignore[no-untyped-def]
    """wordllama's bundled 256-d model, loaded without network."""
    import wordllama
    from wordllama import WordLlama

    # The package's own lookup of its bundled tokenizer is broken; pointing the cache at
    # the package folder finds both the weights and the tokenizer offline.
    return WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True, dim=256)


def embed(texts: Iterable[str]) -> np.ndarray:
    vecs = np.asarray(embedder().embed(list(texts), norm=True), dtype=np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def build_corpus(text: str | None = None) -> Corpus:
    """The whole corpus: every distinct description apt knows, embedded (a few seconds)."""
    pairs = parse_dumpavail(dumpavail() if text is None else text)
    if len(pairs) < 1000:
        raise RuntimeError(f"apt knows only {len(pairs)} package descriptions: run `apt-get update` first")
    sections = np.array([s for s, _ in pairs])
    return Corpus(embed(d for _, d in pairs), sections)


def slice_of(corpus: Corpus, sections: int = SLICE_SECTIONS, per_section: int = SLICE_PER_SECTION,
             seed: int = 0) -> Corpus:
    """The largest ``sections`` sections, ``per_section`` random rows of each."""
    rng = np.random.default_rng(seed)
    groups = sorted(corpus.by_section(per_section).items(), key=lambda kv: -len(kv[1]))[:sections]
    idx = np.concatenate([rng.choice(ix, per_section, replace=False) for _, ix in groups])
    return Corpus(corpus.vectors[idx], corpus.sections[idx])


def save_slice(corpus: Corpus, path: Path = SLICE_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, vectors=corpus.vectors.astype(np.float16), sections=corpus.sections)


def load_slice(path: Path = SLICE_PATH) -> Corpus:
    """The committed slice: 20 sections x 300 real descriptions, 256-d."""
    with np.load(path) as z:
        v = z["vectors"].astype(np.float32)
        return Corpus(v / np.linalg.norm(v, axis=1, keepdims=True), z["sections"].astype(str))


@functools.lru_cache(maxsize=4)
def _lift_maps(dims: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dims, d + 1)))
    return basis[:, 0], basis[:, 1:], rng.standard_normal((d, dims))


def ada_like(vectors: np.ndarray, dims: int = 1536, shared: float = 1.6, extra: float = 0.1,
             seed: int = 1536) -> np.ndarray:
    """1536-d vectors with ada-002's geometry, from unit 256-d ones.

    x' = normalize(shared * m + Q x + extra * e): m is a fixed unit vector every text shares
    (it sets the floor of the cosine similarities), Q a fixed random isometry of the 256-d
    space into the 1535 dimensions orthogonal to m, and e a per-text, per-dimension isotropic
    component spread over all 1535 of them (the low-variance extra dimensions).
    Fixed seeds: the same input always gives the same output.
    """
    m, q, proj = _lift_maps(dims, vectors.shape[1], seed)
    # The per-text extra component: a fixed, fast-oscillating function of the row, so each
    # text keeps its own lift and the components look independent across dimensions.
    noise = np.sin(97.0 * (vectors @ proj)) * np.sqrt(2.0)
    noise -= np.outer(noise @ m, m)
    noise /= np.sqrt(dims - 1)
    out = shared * m + vectors @ q.T + extra * noise
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=SLICE_PATH)
    args = p.parse_args()
    corpus = build_corpus()
    part = slice_of(corpus)
    save_slice(part, args.out)
    print(f"{len(corpus.sections)} descriptions in {len(np.unique(corpus.sections))} sections; "
          f"slice of {len(part.sections)} rows written to {args.out}")


if __name__ == "__main__":
    main()


# -- drift cases on real embeddings ------------------------------------------------------------
@dataclass(frozen=True)
class RealCase:
    """A change of the topic (section) mix between the reference and the current window.

    ``moved``: that share of traffic moves into one of the baseline's topics (taken
    proportionally from all of them). ``new``: that share of traffic is a topic the baseline
    never saw.
    """

    name: str
    moved: float = 0.0
    new: float = 0.0

    @property
    def drifted(self) -> bool:
        return self.moved > 0 or self.new > 0


REAL_CASES = (
    RealCase("no drift"),
    RealCase("10% moved", moved=0.10),
    RealCase("40% moved", moved=0.40),
    RealCase("new topic 5%", new=0.05),
    RealCase("new topic 10%", new=0.10),
    RealCase("new topic 20%", new=0.20),
)


class TopicSampler:
    """Draws traffic from a mix of sections of a corpus.

    Each trial picks ``topics`` baseline sections with random weights, a target section for
    moved traffic among them, and a new section outside them. ``window`` draws rows without
    replacement within one trial (reference and window never share a row) while the pools
    last, then with replacement: long streams reuse texts, as real traffic repeats itself.
    """

    def __init__(self, corpus: Corpus, rng: np.random.Generator, topics: int = 10, min_rows: int = 300) -> None:
        groups = corpus.by_section(min_rows)
        names = sorted(groups)
        if len(names) < topics + 1:
            raise ValueError(f"corpus has {len(names)} sections with {min_rows}+ rows, need {topics + 1}")
        self.corpus = corpus
        self.rng = rng
        pick = rng.choice(len(names), topics + 1, replace=False)
        self.base = [names[i] for i in pick[:topics]]
        self.novel = names[pick[topics]]
        # Uneven but not degenerate shares, like real traffic (Dirichlet(2) over the topics).
        self.weights = rng.dirichlet(np.full(topics, 2.0))
        self.target = int(rng.integers(topics))
        self.pools = {s: list(rng.permutation(groups[s])) for s in [*self.base, self.novel]}
        self.all = groups

    def mix(self, case: RealCase) -> tuple[list[str], np.ndarray]:
        w = self.weights * (1 - case.moved - case.new)
        w[self.target] += case.moved
        names = list(self.base)
        if case.new > 0:
            names.append(self.novel)
            w = np.append(w, case.new)
        return names, w

    def draw_ids(self, n: int, case: RealCase) -> np.ndarray:
        names, w = self.mix(case)
        counts = self.rng.multinomial(n, w)
        out = []
        for name, c in zip(names, counts, strict=True):
            pool = self.pools[name]
            take = [pool.pop() for _ in range(min(c, len(pool)))]
            if len(take) < c:  # the pool is spent: reuse texts
                take += list(self.rng.choice(self.all[name], c - len(take)))
            out.extend(take)
        ids = np.array(out, dtype=np.int64)
        return ids[self.rng.permutation(len(ids))]

    def draw(self, n: int, case: RealCase, vectors: np.ndarray | None = None) -> np.ndarray:
        v = self.corpus.vectors if vectors is None else vectors
        return v[self.draw_ids(n, case)]
