"""The whole ``cooccurrence_embeddings`` stage as one plain function (the asset only wires it).

Poem lines → vocabulary → co-occurrence counts → PPMI → SVD vectors (:mod:`.cooccurrence`),
compared with GloVe (:mod:`.glove`), plotted, and written to one folder:

* ``cooccurrence_counts.npz`` — symmetric word × word window counts (``scipy.sparse.save_npz``, CSR int64)
* ``ppmi.npz`` — the PPMI matrix (CSR float64)
* ``vocab.tsv`` — ``word<TAB>count``, row order of both matrices and of the vectors
* ``svd_vectors.npy`` — (V, embedding_dim) float32 TruncatedSVD vectors ``U · Σ^p``
* ``meta.json`` — config, corpus sizes, comparison figures and the written analysis
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from genai_assets.lake import atomic_directory
from genai_assets.plotting import new_figure, write_figure
from genai_assets.text.cooccurrence import (
    CooccurrenceConfig,
    cooccurrence_counts,
    pca_2d,
    ppmi_matrix,
    svd_vectors,
    tokenize_lines,
)
from genai_assets.text.glove import (
    answer_analogies,
    describe_comparison,
    load_glove,
    neighbour_overlap,
    shared_space,
    similarity_spearman,
)

MIN_SENTENCES_ADVISED = 5000  # below this, say in the notes that the vectors will be noisy
PPMI_FORMULA = "max(0, log(P(w,c) / (P(w) * P_alpha(c)))), P_alpha(c) = count(c)^alpha / sum count^alpha"


def corpus_lines(poems: pd.DataFrame, max_sentences: int) -> list[str]:
    """Non-blank lines of every poem, in table order (stanza breaks dropped), first N if asked."""
    if "text" not in poems.columns:
        raise ValueError("cleansed_poems has no 'text' column (contract 2).")
    lines = [line for text in poems["text"].dropna() for line in text.split("\n") if line.strip()]
    return lines[:max_sentences] if max_sentences else lines


@dataclass
class CooccurrenceRun:
    """What :func:`run_cooccurrence_embeddings` wrote and measured (``meta`` = ``meta.json``)."""

    folder: Path
    plot_path: Path | None  # None when fewer than two plot words are in both vocabularies
    meta: dict
    analogies: pd.DataFrame  # one row per analogy: ours, glove, expected, missing
    neighbours: pd.DataFrame  # top-k neighbour overlap per plot word
    missing_plot_words: dict[str, list[str]]  # {"ours": [...], "glove": [...]}


def run_cooccurrence_embeddings(
    poems: pd.DataFrame,
    config: CooccurrenceConfig,
    folder: Path,
    plot_path: Path,
    log: Callable[[str], None] = print,
) -> CooccurrenceRun:
    """Count, weight, factorise, compare with GloVe, plot to ``plot_path``, write ``folder`` atomically."""
    notes: list[str] = []
    timings: dict[str, float] = {}
    started = time.perf_counter()

    lines = corpus_lines(poems, config.max_sentences)
    if not lines:
        raise ValueError("cleansed_poems has no non-blank line: nothing to count co-occurrences over.")
    if len(lines) < MIN_SENTENCES_ADVISED:
        notes.append(f"only {len(lines)} sentences (< {MIN_SENTENCES_ADVISED}): vectors will be noisy")
    corpus = tokenize_lines(lines, config.vocab_size, config.min_count)
    if len(corpus.vocabulary) < 3:
        raise ValueError(
            f"Only {len(corpus.vocabulary)} words occur >= min_count={config.min_count} times in "
            f"{len(lines)} lines: too small a corpus for co-occurrence vectors (lower min_count?)."
        )
    timings["tokenize_s"] = time.perf_counter() - started
    counts = cooccurrence_counts(corpus, config.window_size)
    timings["count_s"] = time.perf_counter() - started - sum(timings.values())
    ppmi = ppmi_matrix(counts, config.ppmi_alpha)
    vectors, singular_values = svd_vectors(ppmi, config.embedding_dim, config.svd_power, config.seed)
    timings["ppmi_svd_s"] = time.perf_counter() - started - sum(timings.values())
    log(
        f"{len(lines)} lines, {corpus.n_tokens} tokens, vocab {len(corpus.vocabulary)}, "
        f"{counts.nnz} non-zero counts, {vectors.shape[1]}-d vectors"
    )

    glove = load_glove()
    space = shared_space(corpus.vocabulary, vectors, glove)
    our_index = pd.Index(corpus.vocabulary)
    missing_ours = [word for word in config.plot_words if our_index.get_indexer([word])[0] < 0]
    missing_glove = [word for word in config.plot_words if glove.rows([word])[0] < 0]
    plot_words = [
        word for word in config.plot_words if word not in missing_ours and word not in missing_glove
    ]
    if missing_ours or missing_glove:
        notes.append(f"plot words missing from our vocabulary {missing_ours}, from GloVe {missing_glove}")
    overlap = neighbour_overlap(space, plot_words, k=config.neighbours)
    spearman, n_pairs = similarity_spearman(space, config.spearman_words)
    analogies = answer_analogies(space)
    analysis = describe_comparison(
        overlap, spearman, n_pairs, analogies, len(lines), corpus.n_tokens, k=config.neighbours
    )
    timings["compare_s"] = time.perf_counter() - started - sum(timings.values())

    written_plot = None
    if len(plot_words) >= 2:
        ours = vectors[our_index.get_indexer(plot_words)]
        theirs = np.asarray(glove.vectors[glove.rows(plot_words)])
        written_plot = write_figure(_pca_figure(plot_words, ours, theirs, config.seed), plot_path)

    answered = analogies[analogies["missing"] == ""]
    meta = {
        "config": asdict(config),
        "ppmi_formula": PPMI_FORMULA,
        "n_sentences": len(lines),
        "n_tokens": corpus.n_tokens,
        "vocab_size": len(corpus.vocabulary),
        "counts_nnz": int(counts.nnz),
        "ppmi_nnz": int(ppmi.nnz),
        "embedding_dim": int(vectors.shape[1]),
        "singular_values_top5": [round(float(value), 3) for value in singular_values[:5]],
        "shared_vocab_with_glove": len(space.words),
        "mean_neighbour_overlap": float(overlap["overlap"].mean()) if len(overlap) else None,
        "spearman_rho": spearman,
        "spearman_pairs": n_pairs,
        "analogies_ours_correct": int((answered["ours"] == answered["expected"]).sum()),
        "analogies_glove_correct": int((answered["glove"] == answered["expected"]).sum()),
        "analogies_answered": len(answered),
        "analysis": analysis,
        "notes": notes,
        "timings_s": {name: round(seconds, 3) for name, seconds in timings.items()},
    }
    with atomic_directory(folder) as staging:
        sparse.save_npz(staging / "cooccurrence_counts.npz", counts)
        sparse.save_npz(staging / "ppmi.npz", ppmi)
        pd.DataFrame({"word": corpus.vocabulary, "count": corpus.word_counts}).to_csv(
            staging / "vocab.tsv", sep="\t", index=False
        )
        np.save(staging / "svd_vectors.npy", vectors)
        (staging / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return CooccurrenceRun(
        folder=folder,
        plot_path=None if written_plot is None else Path(written_plot),
        meta=meta,
        analogies=analogies,
        neighbours=overlap,
        missing_plot_words={"ours": missing_ours, "glove": missing_glove},
    )


def _pca_figure(words: list[str], ours: np.ndarray, glove: np.ndarray, seed: int):
    """Two panels: the plot words' PCA 2-D coordinates in our space and in GloVe's."""
    figure = new_figure(12, 5.5)
    panels = ((f"PPMI + SVD on poem lines ({ours.shape[1]}-d)", ours), ("GloVe 6B 50-d", glove))
    for position, (title, word_vectors) in enumerate(panels):
        axes = figure.add_subplot(1, 2, position + 1)
        coordinates = pca_2d(word_vectors, seed=seed)  # (n_words, 2)
        axes.scatter(coordinates[:, 0], coordinates[:, 1], s=14)
        for word, (x, y) in zip(words, coordinates, strict=True):
            axes.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
        axes.set(title=title, xlabel="PC 1", ylabel="PC 2")
    return figure
