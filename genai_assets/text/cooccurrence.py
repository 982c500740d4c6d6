"""Word co-occurrence counts → PPMI → truncated SVD: count-based word vectors from the poem lines.

Definitions used throughout (tests check them by hand):

* Sentences are the corpus lines; words are lower-cased runs of letters with inner apostrophes
  (``o'er``, ``heav'n``); a possessive ``'s`` is dropped (``king's`` → ``king``), digits and
  punctuation separate words.
* The vocabulary is the ``vocab_size`` most frequent words occurring at least ``min_count``
  times (ties broken alphabetically). Other words are out of vocabulary: they keep their slot,
  so distances stay true, but are never counted.
* ``count[a, b]`` = the number of ordered position pairs ``(p, q)`` in the same sentence with
  ``0 < |p - q| <= window_size``, word ``a`` at ``p`` and ``b`` at ``q``. The matrix is symmetric
  and a word next to itself adds 2 to its diagonal cell (once per direction).
* PPMI with context-distribution smoothing (Levy, Goldberg & Dagan 2015, "Improving
  distributional similarity with lessons learned from word embeddings", sec. 3.1)::

      PMI_α(w, c) = log( P(w, c) / (P(w) · P_α(c)) )
      P(w, c) = count[w, c] / N,   P(w) = Σ_c count[w, c] / N,   N = Σ_{w,c} count[w, c]
      P_α(c) = (Σ_w count[w, c])^α / Σ_c' (Σ_w count[w, c'])^α
      PPMI = max(PMI_α, 0), and 0 where count[w, c] = 0

  α = 0.75 by default (it raises the probability of rare contexts and so damps PMI's bias
  toward them); α = 1 gives plain PPMI.
* Word vectors: ``TruncatedSVD`` of the PPMI matrix to ``embedding_dim`` components,
  ``U · Σ^p`` with ``p = svd_power`` (0.5 by default, the "eigenvalue weighting" of the same
  paper; p = 1 is scikit-learn's ``fit_transform``). 2-D plots use PCA of the unit-length vectors
  of the plotted words.

The count matrix is built with numpy index arrays, one vectorised pass per window offset, and
``scipy.sparse.coo_matrix`` summing duplicate pairs: memory is O(corpus tokens + non-zeros),
never a dense vocab × vocab array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from scipy import sparse

from genai_assets.config_checks import Ge, Interval, raise_problems, range_problems

# Word separators (RE2 syntax, for Arrow): a possessive 's, or a run of anything but letters and '.
_SPLIT_PATTERN = r"'s\b|[^\p{L}']+"


DEFAULT_PLOT_WORDS = [
    "king", "queen", "man", "woman", "apple", "orange",
    "love", "night", "day", "sun", "moon", "heart", "death", "sea",
]  # fmt: skip


@dataclass
class CooccurrenceConfig:
    """Co-occurrence embeddings (defaults = the cpu demo profile)."""

    window_size: Annotated[int, Ge(1), "context words counted on each side of a word"] = 5
    vocab_size: Annotated[int, Ge(3), "keep at most this many most frequent words"] = 10000
    min_count: Annotated[int, Ge(1), "... each occurring at least this often"] = 5
    max_sentences: Annotated[int, Ge(0), "use the first N corpus lines (0 = all)"] = 0
    ppmi_alpha: Annotated[
        float, Interval(gt=0, le=1), "context-distribution smoothing exponent (1.0 = plain PPMI)"
    ] = 0.75
    embedding_dim: Annotated[int, Ge(2), "TruncatedSVD components used for similarities"] = 50
    svd_power: Annotated[float, Interval(ge=0, le=1), "vectors = U · Σ^p"] = 0.5
    seed: Annotated[int, "TruncatedSVD / PCA random state"] = 0
    plot_words: Annotated[list[str], "words in the PCA plot"] = field(
        default_factory=lambda: list(DEFAULT_PLOT_WORDS)
    )
    neighbours: Annotated[int, Ge(1), "k of the top-k neighbour overlap with GloVe"] = 10
    spearman_words: Annotated[
        int, Ge(3), "most frequent shared words whose pairwise cosines are correlated"
    ] = 1000

    def __post_init__(self):
        raise_problems(self, range_problems(self))


# Named presets (overrides of the defaults above; cpu = the defaults).
COOCCURRENCE_PRESETS: dict[str, dict] = {
    "tiny": {"vocab_size": 2000, "min_count": 2, "max_sentences": 5000, "embedding_dim": 20},
    "cpu": {},
    "gpu": {"vocab_size": 20000, "max_sentences": 0},
}


@dataclass
class TokenizedCorpus:
    """Every word position of the corpus as a vocabulary id (-1 = out of vocabulary)."""

    token_ids: np.ndarray  # int32 (N,)
    sentence_ids: np.ndarray  # int64 (N,), non-decreasing: which line each position is on
    vocabulary: list[str]  # row order of every matrix: most frequent first
    word_counts: np.ndarray  # int64 (V,): corpus frequency of each vocabulary word
    n_sentences: int
    n_tokens: int  # all word positions, in vocabulary or not


def tokenize_lines(lines: Sequence[str], vocab_size: int, min_count: int) -> TokenizedCorpus:
    """Words of each line → vocabulary ids, vectorised with Arrow string kernels (C++, no Python per word).

    Lower-case, fold ’ to ', split on runs of non-letters other than the apostrophe and on a
    possessive ``'s``, trim stray apostrophes (``'tis`` → ``tis``), drop empty pieces.
    ``list_parent_indices`` says which line each word came from.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    lowered = pc.replace_substring(pc.utf8_lower(pa.array(list(lines), type=pa.large_string())), "’", "'")
    pieces = pc.split_pattern_regex(lowered, _SPLIT_PATTERN)
    words = pc.utf8_trim(pc.list_flatten(pieces), "'")
    keep = pc.greater(pc.binary_length(words), 0)
    words = pc.filter(words, keep)
    sentence_ids = pc.filter(pc.list_parent_indices(pieces), keep).to_numpy().astype(np.int64)
    if isinstance(words, pa.ChunkedArray):
        words = words.combine_chunks()
    encoded = pc.dictionary_encode(words)  # hash-based, in C++: codes + distinct words
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    uniques = np.asarray(encoded.dictionary.to_pylist(), dtype=object)

    counts = np.bincount(codes, minlength=len(uniques)).astype(np.int64)
    # Most frequent first, ties alphabetical: a stable sort by word, then a stable sort by count.
    order = np.argsort(uniques, kind="stable")
    order = order[np.argsort(-counts[order], kind="stable")]
    order = order[counts[order] >= min_count][:vocab_size]
    remap = np.full(len(uniques), -1, dtype=np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    return TokenizedCorpus(
        token_ids=remap[codes],
        sentence_ids=sentence_ids,
        vocabulary=[str(word) for word in uniques[order]],
        word_counts=counts[order],
        n_sentences=len(lines),
        n_tokens=len(codes),
    )


def cooccurrence_counts(corpus: TokenizedCorpus, window_size: int) -> sparse.csr_matrix:
    """The symmetric (V, V) count matrix defined in the module docstring (int64 CSR)."""
    vocab_size = len(corpus.vocabulary)
    ids, sentences = corpus.token_ids, corpus.sentence_ids
    forward = sparse.csr_matrix((vocab_size, vocab_size), dtype=np.int64)
    for offset in range(1, window_size + 1):
        left, right = ids[:-offset], ids[offset:]  # (N - offset,) each: position p and p + offset
        keep = (sentences[:-offset] == sentences[offset:]) & (left >= 0) & (right >= 0)
        rows, cols = left[keep], right[keep]
        # coo → csr sums the duplicate (row, col) pairs: the counting happens here, in C.
        forward = (
            forward
            + sparse.coo_matrix(
                (np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(vocab_size, vocab_size)
            ).tocsr()
        )
    # Each unordered pair was counted once, left to right; add the right-to-left direction.
    counts = (forward + forward.T).tocsr()
    counts.sum_duplicates()
    counts.sort_indices()
    return counts


def ppmi_matrix(counts: sparse.spmatrix, alpha: float = 0.75) -> sparse.csr_matrix:
    """Positive PMI with context smoothing ``alpha`` (formula in the module docstring), sparse float64."""
    counts = sparse.csr_matrix(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("The co-occurrence matrix is all zeros: no two vocabulary words share a window.")
    word_totals = np.asarray(counts.sum(axis=1)).ravel()
    context_totals = np.asarray(counts.sum(axis=0)).ravel()
    smoothed = context_totals**alpha
    context_probability = smoothed / smoothed.sum()
    # Only the stored (non-zero) cells: PMI of a zero count is -inf, clipped to 0 by PPMI.
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    pmi = (
        np.log(counts.data / total)
        - np.log(word_totals[rows] / total)
        - np.log(context_probability[counts.indices])
    )
    result = sparse.csr_matrix(
        (np.maximum(pmi, 0.0), counts.indices.copy(), counts.indptr.copy()), shape=counts.shape
    )
    result.eliminate_zeros()
    return result


def svd_vectors(
    matrix: sparse.spmatrix, dim: int, power: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors (V, k) float32 = U · Σ^power, singular values (k,))`` by randomized TruncatedSVD."""
    from sklearn.decomposition import TruncatedSVD

    dim = min(dim, min(matrix.shape) - 1)
    if dim < 1:
        raise ValueError(f"A {matrix.shape} matrix is too small for an SVD; the vocabulary needs >= 2 words.")
    svd = TruncatedSVD(n_components=dim, algorithm="randomized", n_iter=7, random_state=seed)
    u_sigma = svd.fit_transform(matrix)  # (V, k) = U · Σ
    singular_values = svd.singular_values_
    safe = np.where(singular_values > 0, singular_values, 1.0)
    vectors = u_sigma * safe ** (power - 1.0)  # U · Σ^power
    return vectors.astype(np.float32), singular_values


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), so dot products are cosines."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def pca_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n, 2) PCA coordinates of the unit-length rows (centred: each column sums to zero)."""
    from sklearn.decomposition import PCA

    if len(vectors) < 2:
        raise ValueError("PCA needs at least two words to plot.")
    return PCA(n_components=2, random_state=seed).fit_transform(
        unit_rows(np.asarray(vectors, dtype=np.float64))
    )
