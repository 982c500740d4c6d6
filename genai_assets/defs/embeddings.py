"""Stage "tokens", part 2: count-based word embeddings from the poem lines, compared with GloVe.

Asset ``cooccurrence_embeddings`` (group ``tokens``) writes ``<lake>/embeddings/``:

* ``cooccurrence_counts.npz`` — symmetric word × word window counts (``scipy.sparse.save_npz``, CSR int64)
* ``ppmi.npz`` — the PPMI matrix (CSR float64); formula in :mod:`genai_assets.text.cooccurrence`
* ``vocab.tsv`` — ``word<TAB>count``, row order of both matrices and of the vectors
* ``svd_vectors.npy`` — (V, embedding_dim) float32 TruncatedSVD vectors ``U · Σ^p``
* ``meta.json`` — config, corpus sizes, comparison figures and the written analysis

and ``<lake>/reports/cooccurrence_vs_glove.png`` (the plot words, PCA 2-D, ours beside GloVe).
"""

import json
import time

import dagster as dg
import pandas as pd
from pydantic import Field

from genai_assets.defs._metadata import dataframe_markdown, save_figure
from genai_assets.defs._resources import DataLake
from genai_assets.lake import atomic_directory
from genai_assets.plotting import new_figure

DEFAULT_PLOT_WORDS = [
    "king", "queen", "man", "woman", "apple", "orange",
    "love", "night", "day", "sun", "moon", "heart", "death", "sea",
]  # fmt: skip
MIN_SENTENCES_ADVISED = 5000


class CooccurrenceEmbeddingsConfig(dg.Config):
    """Co-occurrence → PPMI → SVD embeddings and the GloVe comparison (defaults = cpu demo)."""

    window_size: int = Field(5, description="Context words counted on each side of a word.")
    vocab_size: int = Field(10000, description="Keep at most this many most frequent words.")
    min_count: int = Field(5, description="Minimum corpus frequency of a vocabulary word.")
    max_sentences: int = Field(0, description="Use the first N corpus lines as sentences (0 = all).")
    ppmi_alpha: float = Field(0.75, description="Context-distribution smoothing exponent (1.0 = plain PPMI).")
    embedding_dim: int = Field(50, description="TruncatedSVD dimensions used for similarities.")
    svd_power: float = Field(0.5, description="Vectors = U · Σ^p (eigenvalue weighting).")
    plot_words: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PLOT_WORDS), description="Words to plot."
    )
    neighbours: int = Field(10, description="k of the top-k neighbour overlap with GloVe.")
    spearman_words: int = Field(
        1000, description="Most frequent shared words whose pairwise cosines are correlated."
    )
    seed: int = Field(0, description="Random state of TruncatedSVD and PCA.")


def corpus_lines(poems: pd.DataFrame, max_sentences: int) -> list[str]:
    """Non-blank lines of every poem, in table order (stanza breaks dropped), first N if asked."""
    if "text" not in poems.columns:
        raise ValueError("cleansed_poems has no 'text' column (contract 2).")
    lines = [line for text in poems["text"].dropna() for line in text.split("\n") if line.strip()]
    return lines[:max_sentences] if max_sentences else lines


@dg.asset(group_name="tokens", kinds={"scipy", "scikit-learn"})
def cooccurrence_embeddings(
    context: dg.AssetExecutionContext,
    config: CooccurrenceEmbeddingsConfig,
    lake: DataLake,
    cleansed_poems: pd.DataFrame,
) -> dg.MaterializeResult:
    """Word co-occurrence counts over poem lines → PPMI → SVD vectors, plotted and compared with GloVe."""
    import numpy as np
    from scipy import sparse

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

    settings = CooccurrenceConfig(
        window_size=config.window_size,
        vocab_size=config.vocab_size,
        min_count=config.min_count,
        max_sentences=config.max_sentences,
        ppmi_alpha=config.ppmi_alpha,
        embedding_dim=config.embedding_dim,
        svd_power=config.svd_power,
        seed=config.seed,
    )
    if config.neighbours < 1 or config.spearman_words < 3:
        raise ValueError("neighbours must be >= 1 and spearman_words >= 3.")
    notes: list[str] = []
    timings: dict[str, float] = {}
    started = time.perf_counter()

    lines = corpus_lines(cleansed_poems, settings.max_sentences)
    if not lines:
        raise ValueError("cleansed_poems has no non-blank line: nothing to count co-occurrences over.")
    if len(lines) < MIN_SENTENCES_ADVISED:
        notes.append(f"only {len(lines)} sentences (< {MIN_SENTENCES_ADVISED}): vectors will be noisy")
    corpus = tokenize_lines(lines, settings.vocab_size, settings.min_count)
    if len(corpus.vocabulary) < 3:
        raise ValueError(
            f"Only {len(corpus.vocabulary)} words occur >= min_count={settings.min_count} times in "
            f"{len(lines)} lines: too small a corpus for co-occurrence vectors (lower min_count?)."
        )
    timings["tokenize_s"] = time.perf_counter() - started
    counts = cooccurrence_counts(corpus, settings.window_size)
    timings["count_s"] = time.perf_counter() - started - sum(timings.values())
    ppmi = ppmi_matrix(counts, settings.ppmi_alpha)
    vectors, singular_values = svd_vectors(ppmi, settings.embedding_dim, settings.svd_power, settings.seed)
    timings["ppmi_svd_s"] = time.perf_counter() - started - sum(timings.values())
    context.log.info(
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

    plot_metadata = dg.MetadataValue.md("(fewer than two plot words are in both vocabularies)")
    if len(plot_words) >= 2:
        figure = new_figure(12, 5.5)
        our_rows = our_index.get_indexer(plot_words)
        for position, (title, word_vectors) in enumerate(
            (
                (f"PPMI + SVD on poem lines ({vectors.shape[1]}-d)", vectors[our_rows]),
                ("GloVe 6B 50-d", np.asarray(glove.vectors[glove.rows(plot_words)])),
            )
        ):
            axes = figure.add_subplot(1, 2, position + 1)
            coordinates = pca_2d(word_vectors, seed=settings.seed)  # (n_words, 2)
            axes.scatter(coordinates[:, 0], coordinates[:, 1], s=14)
            for word, (x, y) in zip(plot_words, coordinates, strict=True):
                axes.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
            axes.set(title=title, xlabel="PC 1", ylabel="PC 2")
        plot_metadata = save_figure(figure, lake.reports_dir() / "cooccurrence_vs_glove.png")

    answered = analogies[analogies["missing"] == ""]
    meta = {
        "config": config.model_dump(),
        "ppmi_formula": "max(0, log(P(w,c) / (P(w) * P_alpha(c)))), P_alpha(c) = count(c)^alpha / sum count^alpha",
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
    target = lake.path / "embeddings"
    with atomic_directory(target) as staging:
        sparse.save_npz(staging / "cooccurrence_counts.npz", counts)
        sparse.save_npz(staging / "ppmi.npz", ppmi)
        pd.DataFrame({"word": corpus.vocabulary, "count": corpus.word_counts}).to_csv(
            staging / "vocab.tsv", sep="\t", index=False
        )
        np.save(staging / "svd_vectors.npy", vectors)
        (staging / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "n_sentences": len(lines),
            "n_tokens": corpus.n_tokens,
            "vocab_size": len(corpus.vocabulary),
            "counts_nnz": int(counts.nnz),
            "shared_vocab_with_glove": len(space.words),
            "mean_neighbour_overlap": meta["mean_neighbour_overlap"] or 0.0,
            "spearman_rho": float(spearman),
            "analogies": dataframe_markdown(analogies, max_rows=50),
            "analogies_correct": f"ours {meta['analogies_ours_correct']}/{len(answered)}, "
            f"GloVe {meta['analogies_glove_correct']}/{len(answered)}",
            "neighbours": dataframe_markdown(overlap, max_rows=50, max_chars=200),
            "plot": plot_metadata,
            "analysis": dg.MetadataValue.md(analysis),
            "missing_plot_words": dg.MetadataValue.json({"ours": missing_ours, "glove": missing_glove}),
            "notes": dg.MetadataValue.json(notes),
            "timings_s": dg.MetadataValue.json(meta["timings_s"]),
        }
    )


PRESETS = {
    "tiny": {
        "cooccurrence_embeddings": {
            "config": {"vocab_size": 2000, "min_count": 2, "max_sentences": 5000, "embedding_dim": 20}
        }
    },
    "gpu": {"cooccurrence_embeddings": {"config": {"vocab_size": 20000, "max_sentences": 0}}},
}

defs = dg.Definitions(assets=[cooccurrence_embeddings])
