"""Stages of the ``tokens`` group: :func:`run_poem_tokenizer`, :func:`run_token_arrays` and
:func:`run_cooccurrence_embeddings`.

``cooccurrence_embeddings``:
Poem lines → vocabulary → co-occurrence counts → PPMI → SVD vectors
(:mod:`genai_assets.text.cooccurrence`), compared with GloVe (:mod:`genai_assets.text.glove`),
plotted to ``<lake>/reports/cooccurrence_vs_glove.png``, and written to ``<lake>/embeddings/``:

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
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy import sparse

from genai_assets.cleaning.split import SPLITS
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
from genai_assets.text.token_arrays import check_poem_table, encode_splits, write_token_arrays
from genai_assets.text.tokenization import (
    TokenArraysConfig,
    TokenizerTrainingConfig,
    compare_tokenizers,
    load_gpt2_tokenizer,
    rare_words,
    train_bpe_tokenizer,
    train_wordlevel_tokenizer,
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


class EmbeddingsLake(Protocol):
    path: Path

    def reports_dir(self) -> Path: ...


def run_cooccurrence_embeddings(
    config: CooccurrenceConfig, lake: EmbeddingsLake, log: Callable[[str], None], cleansed_poems: pd.DataFrame
) -> CooccurrenceRun:
    """Count, weight, factorise, compare with GloVe, plot, and write ``<lake>/embeddings/`` atomically."""
    return cooccurrence_embeddings(
        cleansed_poems,
        config,
        lake.path / "embeddings",
        lake.reports_dir() / "cooccurrence_vs_glove.png",
        log,
    )


@dataclass
class _Counted:
    """The corpus counted and factorised (step 1), with what the later steps report."""

    lines: list[str]
    corpus: Any  # text.cooccurrence.TokenizedCorpus
    counts: sparse.csr_matrix
    ppmi: sparse.csr_matrix
    vectors: np.ndarray  # (V, embedding_dim)
    singular_values: np.ndarray
    notes: list[str]
    timings: dict[str, float]


def _count_and_factorise(
    poems: pd.DataFrame, config: CooccurrenceConfig, log: Callable[[str], None]
) -> _Counted:
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
    return _Counted(lines, corpus, counts, ppmi, vectors, singular_values, notes, timings)


@dataclass
class _Compared:
    """Our vectors against GloVe (step 2)."""

    glove: Any  # text.glove.GloveVectors
    space: Any  # text.glove.SharedSpace
    overlap: pd.DataFrame
    spearman: float
    n_pairs: int
    analogies: pd.DataFrame
    analysis: str
    plot_words: list[str]
    missing_ours: list[str]
    missing_glove: list[str]


def _compare_with_glove(counted: _Counted, config: CooccurrenceConfig) -> _Compared:
    started = time.perf_counter()
    glove = load_glove()
    corpus = counted.corpus
    space = shared_space(corpus.vocabulary, counted.vectors, glove)
    our_index = pd.Index(corpus.vocabulary)
    missing_ours = [word for word in config.plot_words if our_index.get_indexer([word])[0] < 0]
    missing_glove = [word for word in config.plot_words if glove.rows([word])[0] < 0]
    plot_words = [
        word for word in config.plot_words if word not in missing_ours and word not in missing_glove
    ]
    if missing_ours or missing_glove:
        counted.notes.append(
            f"plot words missing from our vocabulary {missing_ours}, from GloVe {missing_glove}"
        )
    overlap = neighbour_overlap(space, plot_words, k=config.neighbours)
    spearman, n_pairs = similarity_spearman(space, config.spearman_words)
    analogies = answer_analogies(space)
    analysis = describe_comparison(
        overlap, spearman, n_pairs, analogies, len(counted.lines), corpus.n_tokens, k=config.neighbours
    )
    counted.timings["compare_s"] = time.perf_counter() - started
    return _Compared(
        glove, space, overlap, spearman, n_pairs, analogies, analysis, plot_words, missing_ours, missing_glove
    )


def _meta(config: CooccurrenceConfig, counted: _Counted, compared: _Compared) -> dict:
    """``meta.json``: the config, corpus sizes, comparison figures, the analysis and timings."""
    answered = compared.analogies[compared.analogies["missing"] == ""]
    overlap = compared.overlap
    return {
        "config": asdict(config),
        "ppmi_formula": PPMI_FORMULA,
        "n_sentences": len(counted.lines),
        "n_tokens": counted.corpus.n_tokens,
        "vocab_size": len(counted.corpus.vocabulary),
        "counts_nnz": int(counted.counts.nnz),
        "ppmi_nnz": int(counted.ppmi.nnz),
        "embedding_dim": int(counted.vectors.shape[1]),
        "singular_values_top5": [round(float(value), 3) for value in counted.singular_values[:5]],
        "shared_vocab_with_glove": len(compared.space.words),
        "mean_neighbour_overlap": float(overlap["overlap"].mean()) if len(overlap) else None,
        "spearman_rho": compared.spearman,
        "spearman_pairs": compared.n_pairs,
        "analogies_ours_correct": int((answered["ours"] == answered["expected"]).sum()),
        "analogies_glove_correct": int((answered["glove"] == answered["expected"]).sum()),
        "analogies_answered": len(answered),
        "analysis": compared.analysis,
        "notes": counted.notes,
        "timings_s": {name: round(seconds, 3) for name, seconds in counted.timings.items()},
    }


def _save(folder: Path, counted: _Counted, meta: dict) -> None:
    with atomic_directory(folder) as staging:
        sparse.save_npz(staging / "cooccurrence_counts.npz", counted.counts)
        sparse.save_npz(staging / "ppmi.npz", counted.ppmi)
        pd.DataFrame({"word": counted.corpus.vocabulary, "count": counted.corpus.word_counts}).to_csv(
            staging / "vocab.tsv", sep="\t", index=False
        )
        np.save(staging / "svd_vectors.npy", counted.vectors)
        (staging / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def cooccurrence_embeddings(
    poems: pd.DataFrame,
    config: CooccurrenceConfig,
    folder: Path,
    plot_path: Path,
    log: Callable[[str], None] = print,
) -> CooccurrenceRun:
    """Count and factorise → compare with GloVe → plot to ``plot_path`` → write ``folder`` atomically."""
    counted = _count_and_factorise(poems, config, log)
    compared = _compare_with_glove(counted, config)
    glove = compared.glove
    written_plot = None
    if len(compared.plot_words) >= 2:
        our_index = pd.Index(counted.corpus.vocabulary)
        ours = counted.vectors[our_index.get_indexer(compared.plot_words)]
        theirs = np.asarray(glove.vectors[glove.rows(compared.plot_words)])
        written_plot = write_figure(_pca_figure(compared.plot_words, ours, theirs, config.seed), plot_path)
    meta = _meta(config, counted, compared)
    _save(folder, counted, meta)
    return CooccurrenceRun(
        folder=folder,
        plot_path=None if written_plot is None else Path(written_plot),
        meta=meta,
        analogies=compared.analogies,
        neighbours=compared.overlap,
        missing_plot_words={"ours": compared.missing_ours, "glove": compared.missing_glove},
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


# --- poem_tokenizer -----------------------------------------------------------------------------

WORDLEVEL_TOKENIZER_ASSET_DIR = "poem_tokenizer_wordlevel"


class TokensLake(Protocol):
    path: Path

    def model_dir(self, asset_name: str) -> Path: ...

    def reports_dir(self) -> Path: ...


@dataclass(frozen=True)
class PoemTokenizerResult:
    """The two tokenizers written, and how they compare with GPT-2's on the comparison split."""

    bpe: Any  # PreTrainedTokenizerFast
    folder: Path
    wordlevel_folder: Path
    train_poems: int
    train_seconds: float
    comparison_split: str
    stats: list[dict]  # one row per tokenizer
    segmentations: list[dict]  # rare words, split by each tokenizer
    notes: list[str]


def run_poem_tokenizer(
    config: TokenizerTrainingConfig,
    lake: TokensLake,
    log: Callable[[str], None],
    cleansed_poems: pd.DataFrame,
) -> PoemTokenizerResult:
    """Train byte-level BPE and word-level on the train split, save both, compare with GPT-2's."""
    poems = check_poem_table(cleansed_poems)
    train_texts = poems.loc[poems["split"] == "train", "text"].tolist()
    eval_split = "val" if (poems["split"] == "val").any() else "train"
    eval_texts = poems.loc[poems["split"] == eval_split, "text"].tolist()
    started = time.perf_counter()
    bpe = train_bpe_tokenizer(train_texts, config)
    wordlevel = train_wordlevel_tokenizer(train_texts, config)
    train_seconds = time.perf_counter() - started
    log(f"Trained BPE ({len(bpe)} ids) and word-level ({len(wordlevel)} ids) in {train_seconds:.1f} s")
    target = lake.model_dir("poem_tokenizer")
    with atomic_directory(target) as staging:
        bpe.save_pretrained(staging)
    wordlevel_target = lake.model_dir(WORDLEVEL_TOKENIZER_ASSET_DIR)
    with atomic_directory(wordlevel_target) as staging:
        wordlevel.save_pretrained(staging)
    examples = rare_words(train_texts, eval_texts, count=config.n_example_words)
    stats, segmentations = compare_tokenizers(
        {"poem BPE": bpe, "word-level": wordlevel, "GPT-2": load_gpt2_tokenizer()}, eval_texts, examples
    )
    notes = [] if eval_split == "val" else ["val split is empty: the comparison uses the train split"]
    if len(bpe) < config.vocab_size:
        notes.append(f"the corpus supported only {len(bpe)} of {config.vocab_size} requested BPE ids")
    return PoemTokenizerResult(
        bpe,
        target,
        wordlevel_target,
        len(train_texts),
        train_seconds,
        eval_split,
        stats,
        segmentations,
        notes,
    )


# --- token_arrays -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenArraysResult:
    folder: Path
    meta: dict  # what write_token_arrays returned (dtype, vocab_size, splits)
    encode_seconds: float
    n_chars: int
    plot_path: Path


def run_token_arrays(
    config: TokenArraysConfig, lake: TokensLake, log: Callable[[str], None], cleansed_poems: pd.DataFrame
) -> TokenArraysResult:
    """Encode each split with the poem tokenizer, write ``<lake>/token_arrays/`` and a length histogram."""
    from transformers import AutoTokenizer

    tokenizer_dir = lake.model_dir("poem_tokenizer")
    if not (tokenizer_dir / "tokenizer.json").exists():
        raise FileNotFoundError(
            f"No poem tokenizer in {tokenizer_dir}: materialize poem_tokenizer first "
            "(`genai-assets materialize --select poem_tokenizer`)."
        )
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    poems = check_poem_table(cleansed_poems)
    started = time.perf_counter()
    encoded = encode_splits(tokenizer, poems)
    encode_seconds = time.perf_counter() - started
    n_chars = sum(arrays.n_chars for arrays in encoded.values())
    log(f"Encoded {n_chars / 1e6:.2f} M characters in {encode_seconds:.2f} s")
    target = lake.path / "token_arrays"
    with atomic_directory(target) as staging:
        meta = write_token_arrays(encoded, staging, tokenizer, tokenizer_dir)
    lengths = {split: encoded[split].lengths for split in SPLITS if len(encoded[split].lengths)}
    plot = write_figure(
        _poem_length_figure(lengths, config.histogram_bins),
        lake.reports_dir() / "token_arrays_poem_lengths.png",
    )
    return TokenArraysResult(target, meta, encode_seconds, n_chars, plot)


def _poem_length_figure(lengths: dict[str, np.ndarray], histogram_bins: int):
    """Density of tokens per poem, one histogram per split (last bin = 99.5th percentile and up)."""
    figure = new_figure(7, 4)
    axes = figure.add_subplot()
    all_lengths = np.concatenate(list(lengths.values()))
    bins = np.linspace(0, max(int(np.percentile(all_lengths, 99.5)), 2), histogram_bins + 1)
    for split, split_lengths in lengths.items():
        axes.hist(np.minimum(split_lengths, bins[-1]), bins=bins, density=True, alpha=0.5, label=split)
    axes.set(xlabel="tokens per poem (incl. bos/eos; last bin = 99.5th percentile and up)", ylabel="density")
    axes.set_title("Poem lengths in poem-tokenizer tokens")
    axes.legend()
    return figure
