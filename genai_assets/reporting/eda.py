"""Exploratory statistics of the cleansed corpus: plain functions, no Dagster.

:func:`compute_corpus_stats` turns a cleansed_poems table into a :class:`CorpusStats`; the plot
functions turn that into matplotlib figures and :func:`render_report` into Markdown. Words are
:func:`genai_assets.cleaning.rules.dictionary_words` (lower-cased letters with inner apostrophes), the same
tokens the language filter and de-duplication see.

* Heaps' law: vocabulary ``V(N) ≈ K · N^β`` after ``N`` running words (table order); ``K`` and
  ``β`` are a least-squares fit in log-log space over the sampled points with ``N >= sqrt(total)``.
* Zipf's law: ``count(rank) ∝ rank^-s``; ``s`` is fitted over ranks 1..``zipf_fit_ranks``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd

from genai_assets.cleaning.rules import STOPWORDS, dictionary_words
from genai_assets.config_checks import Ge, raise_problems, range_problems
from genai_assets.escaping import md_code_span, md_fence, md_inline, md_table_from_frame
from genai_assets.plotting import new_figure


@dataclass
class EdaConfig:
    """Sizes of the corpus report (defaults = the cpu demo profile)."""

    top_k: Annotated[int, Ge(1), "rows of the top-words tables"] = 20
    heaps_points: Annotated[int, Ge(1), "points sampled on the vocabulary growth curve"] = 40
    zipf_fit_ranks: Annotated[int, Ge(1), "ranks used to fit the Zipf exponent"] = 1000
    n_samples: Annotated[int, Ge(0), "sample poems shown in the report"] = 3
    seed: Annotated[int, "seeds the choice of sample poems"] = 1337

    def __post_init__(self) -> None:
        raise_problems(self, range_problems(self))


EDA_PRESETS: dict[str, dict] = {
    "tiny": {"top_k": 10, "heaps_points": 10, "n_samples": 2},
    "cpu": {},
    "gpu": {},
}


@dataclass
class CorpusStats:
    n_poems: int
    n_lines: int  # non-blank lines
    n_words: int  # word tokens (see module docstring)
    vocabulary_size: int  # distinct words
    hapax_legomena: int  # words seen exactly once
    poem_lengths: pd.DataFrame  # describe() of n_lines and n_words per poem
    line_chars: np.ndarray  # characters per non-blank line
    line_words: np.ndarray  # words per non-blank line
    lines_per_poem: np.ndarray
    words_per_poem: np.ndarray
    heaps: pd.DataFrame  # tokens, vocabulary (sampled growth curve)
    heaps_k: float
    heaps_beta: float
    zipf: pd.DataFrame  # rank, word, count (all words, most frequent first)
    zipf_exponent: float
    top_words: pd.DataFrame  # rank, word, count, share
    top_content_words: pd.DataFrame  # the same without stopwords
    per_source: pd.DataFrame  # source, poems, share, mean_lines, mean_words, vocabulary
    per_split: pd.DataFrame  # split, poems, words
    samples: pd.DataFrame  # poem_id, source, title, author, text

    def summary(self) -> dict[str, float | int]:
        return {
            "poems": self.n_poems,
            "lines": self.n_lines,
            "words": self.n_words,
            "vocabulary_size": self.vocabulary_size,
            "hapax_legomena": self.hapax_legomena,
            "heaps_k": round(self.heaps_k, 3),
            "heaps_beta": round(self.heaps_beta, 3),
            "zipf_exponent": round(self.zipf_exponent, 3),
        }


def _top_table(
    counts: Counter, total: int, top_k: int, exclude: frozenset[str] = frozenset()
) -> pd.DataFrame:
    # Ties broken alphabetically so the table is deterministic.
    ranked = sorted(
        ((word, count) for word, count in counts.items() if word not in exclude),
        key=lambda item: (-item[1], item[0]),
    )
    rows = [
        {"rank": rank, "word": word, "count": count, "share": round(count / total, 5) if total else 0.0}
        for rank, (word, count) in enumerate(ranked[:top_k], start=1)
    ]
    return pd.DataFrame(rows, columns=["rank", "word", "count", "share"])


def vocabulary_growth(token_codes: np.ndarray, n_points: int) -> pd.DataFrame:
    """Distinct words after N tokens, at ``n_points`` log-spaced N (always including the end)."""
    if len(token_codes) == 0:
        return pd.DataFrame({"tokens": [], "vocabulary": []}, dtype=np.int64)
    first_seen = np.zeros(len(token_codes), dtype=bool)
    first_seen[np.unique(token_codes, return_index=True)[1]] = True
    growth = np.cumsum(first_seen)
    positions = np.unique(np.geomspace(1, len(token_codes), num=max(n_points, 2)).astype(np.int64))
    return pd.DataFrame({"tokens": positions, "vocabulary": growth[positions - 1]})


def fit_power_law(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(coefficient, exponent)`` of ``y ≈ coefficient · x^exponent`` (log-log least squares)."""
    mask = (np.asarray(x) > 0) & (np.asarray(y) > 0)
    if mask.sum() < 2:
        return float("nan"), float("nan")
    exponent, intercept = np.polyfit(np.log(np.asarray(x)[mask]), np.log(np.asarray(y)[mask]), 1)
    return float(np.exp(intercept)), float(exponent)


def sample_poems(frame: pd.DataFrame, n_samples: int, seed: int) -> pd.DataFrame:
    """A seeded sample of poems, at most one source's worth each in turn (deterministic)."""
    if frame.empty or n_samples <= 0:
        return pd.DataFrame(columns=["poem_id", "source", "title", "author", "text"])
    shuffled = frame.sample(frac=1.0, random_state=seed)
    # Round-robin over sources so small sources (Shakespeare) appear next to the big one.
    shuffled = shuffled.assign(_turn=shuffled.groupby("source").cumcount()).sort_values(
        "_turn", kind="stable"
    )
    return (
        shuffled.head(n_samples)
        .loc[:, ["poem_id", "source", "title", "author", "text"]]
        .reset_index(drop=True)
    )


def _per_source_and_split(
    frame: pd.DataFrame, tokens_per_poem: list[list[str]], words_per_poem: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Poems, share, mean lines/words and vocabulary per source; poems and words per split."""
    by_source = frame.assign(_words=words_per_poem, _tokens=tokens_per_poem).groupby("source", sort=True)
    per_source = pd.DataFrame(
        {
            "poems": by_source.size(),
            "share": (by_source.size() / len(frame)).round(4),
            "mean_lines": by_source["n_lines"].mean().round(2),
            "mean_words": by_source["_words"].mean().round(2),
            "vocabulary": by_source["_tokens"].agg(
                lambda series: len({t for tokens in series for t in tokens})
            ),
        }
    ).reset_index()
    per_split = (
        frame.assign(_words=words_per_poem)
        .groupby("split", sort=True)
        .agg(poems=("poem_id", "size"), words=("_words", "sum"))
        .reset_index()
    )
    return per_source, per_split


def compute_corpus_stats(
    frame: pd.DataFrame,
    top_k: int = 20,
    heaps_points: int = 40,
    zipf_fit_ranks: int = 1000,
    n_samples: int = 3,
    seed: int = 1337,
) -> CorpusStats:
    """All statistics of the corpus ``frame`` (a cleansed_poems table)."""
    if frame.empty:
        raise ValueError("Empty corpus: cleansed_poems has no rows to describe.")
    texts = frame["text"].astype(str).tolist()
    tokens_per_poem = [dictionary_words(text) for text in texts]
    all_tokens = [token for tokens in tokens_per_poem for token in tokens]
    counts = Counter(all_tokens)
    codes, _ = pd.factorize(pd.Series(all_tokens, dtype=object))
    heaps = vocabulary_growth(np.asarray(codes), heaps_points)
    # Fit Heaps over the upper half of the log range (N >= sqrt(total)): the law describes large
    # N, and the log-spaced points would otherwise let the first few hundred words dominate.
    large = heaps[heaps["tokens"] >= np.sqrt(max(len(all_tokens), 1))]
    heaps_k, heaps_beta = fit_power_law(large["tokens"].to_numpy(), large["vocabulary"].to_numpy())

    zipf = _top_table(counts, len(all_tokens), len(counts)).drop(columns="share")
    fit = zipf.head(zipf_fit_ranks)
    _, zipf_slope = fit_power_law(fit["rank"].to_numpy(), fit["count"].to_numpy())

    lines = [line for text in texts for line in text.split("\n") if line.strip()]
    words_per_poem = np.array([len(tokens) for tokens in tokens_per_poem], dtype=np.int64)
    n_lines = frame["n_lines"].to_numpy()
    per_source, per_split = _per_source_and_split(frame, tokens_per_poem, words_per_poem)
    return CorpusStats(
        n_poems=len(frame),
        n_lines=int(n_lines.sum()),
        n_words=len(all_tokens),
        vocabulary_size=len(counts),
        hapax_legomena=sum(1 for count in counts.values() if count == 1),
        poem_lengths=frame.loc[:, ["n_lines", "n_words"]].describe().round(2),
        line_chars=np.array([len(line) for line in lines], dtype=np.int64),
        line_words=np.array([len(line.split()) for line in lines], dtype=np.int64),
        lines_per_poem=np.asarray(n_lines, dtype=np.int64),
        words_per_poem=words_per_poem,
        heaps=heaps,
        heaps_k=heaps_k,
        heaps_beta=heaps_beta,
        zipf=zipf,
        zipf_exponent=-zipf_slope,
        top_words=_top_table(counts, len(all_tokens), top_k),
        top_content_words=_top_table(counts, len(all_tokens), top_k, exclude=STOPWORDS),
        per_source=per_source,
        per_split=per_split,
        samples=sample_poems(frame, n_samples, seed),
    )


# ------------------------------------------------------------------------------------------
# Plots (matplotlib Figures, no pyplot state)
# ------------------------------------------------------------------------------------------


def plot_poem_lengths(stats: CorpusStats):
    """Histograms of poem length in lines and in words."""
    figure = new_figure(9, 3.5)
    lines_axis, words_axis = figure.subplots(1, 2)
    lines_axis.hist(stats.lines_per_poem, bins=40, color="tab:blue")
    lines_axis.set(title="Poem length (lines)", xlabel="non-blank lines", ylabel="poems")
    words_axis.hist(stats.words_per_poem, bins=40, color="tab:orange")
    words_axis.set(title="Poem length (words)", xlabel="words", ylabel="poems")
    return figure


def plot_line_lengths(stats: CorpusStats):
    """Histograms of line length in characters and in words."""
    figure = new_figure(9, 3.5)
    chars_axis, words_axis = figure.subplots(1, 2)
    chars_axis.hist(stats.line_chars, bins=50, color="tab:green")
    chars_axis.set(title="Line length (characters)", xlabel="characters", ylabel="lines")
    words_axis.hist(
        stats.line_words, bins=range(0, int(stats.line_words.max(initial=1)) + 2), color="tab:purple"
    )
    words_axis.set(title="Line length (words)", xlabel="words", ylabel="lines")
    return figure


def _loglog_with_fit(
    x, y, fitted, marker: tuple[str, float], fit_label: str, title: str, xlabel: str, ylabel: str
):
    """Corpus points on log-log axes, with the fitted curve (when there is one) over them."""
    figure = new_figure(6, 4)
    axis = figure.subplots()
    axis.loglog(x, y, marker[0], markersize=marker[1], label="corpus")
    if fitted is not None:
        axis.loglog(x, fitted, "-", label=fit_label)
    axis.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axis.legend()
    return figure


def plot_heaps(stats: CorpusStats):
    """Vocabulary growth on log-log axes with the fitted Heaps curve."""
    tokens = stats.heaps["tokens"].to_numpy(dtype=float)
    return _loglog_with_fit(
        tokens,
        stats.heaps["vocabulary"],
        stats.heaps_k * tokens**stats.heaps_beta,
        ("o", 3),
        f"V = {stats.heaps_k:.2f} N^{stats.heaps_beta:.3f}",
        "Vocabulary growth (Heaps)",
        "running words N",
        "distinct words V",
    )


def plot_zipf(stats: CorpusStats):
    """Rank/frequency on log-log axes with the fitted Zipf slope."""
    ranks = stats.zipf["rank"].to_numpy(dtype=float)
    top = float(stats.zipf["count"].iloc[0]) if len(ranks) else 0.0
    return _loglog_with_fit(
        ranks,
        stats.zipf["count"],
        top * ranks ** (-stats.zipf_exponent) if len(ranks) else None,
        (".", 2),
        f"count ∝ rank^-{stats.zipf_exponent:.2f}",
        "Zipf plot",
        "rank",
        "count",
    )


def plot_sources(stats: CorpusStats):
    """Poems per source and mean words per poem per source."""
    figure = new_figure(9, 3.5)
    count_axis, length_axis = figure.subplots(1, 2)
    count_axis.bar(stats.per_source["source"], stats.per_source["poems"], color="tab:blue")
    count_axis.set(title="Poems per source", ylabel="poems")
    length_axis.bar(stats.per_source["source"], stats.per_source["mean_words"], color="tab:orange")
    length_axis.set(title="Mean words per poem", ylabel="words")
    return figure


#: Plot name -> function; the asset saves each as ``reports/corpus_eda_<name>.png``.
PLOTS = {
    "poem_lengths": plot_poem_lengths,
    "line_lengths": plot_line_lengths,
    "heaps": plot_heaps,
    "zipf": plot_zipf,
    "sources": plot_sources,
}


def _markdown_table(frame: pd.DataFrame) -> str:
    return md_table_from_frame(frame)  # words come from the poems: every cell escaped


def render_report(stats: CorpusStats, image_files: dict[str, str]) -> str:
    """The Markdown report (``reports/corpus_eda.md``); ``image_files`` maps plot name -> file name."""
    summary = pd.DataFrame([{"statistic": key, "value": value} for key, value in stats.summary().items()])
    lengths = stats.poem_lengths.reset_index().rename(columns={"index": "statistic"})
    line_stats = pd.DataFrame(
        {
            "statistic": ["mean", "median", "max"],
            "characters": [
                round(float(stats.line_chars.mean()), 2) if len(stats.line_chars) else 0.0,
                float(np.median(stats.line_chars)) if len(stats.line_chars) else 0.0,
                int(stats.line_chars.max(initial=0)),
            ],
            "words": [
                round(float(stats.line_words.mean()), 2) if len(stats.line_words) else 0.0,
                float(np.median(stats.line_words)) if len(stats.line_words) else 0.0,
                int(stats.line_words.max(initial=0)),
            ],
        }
    )
    sections = [
        "# Corpus EDA (cleansed_poems)",
        "## Summary\n\n" + _markdown_table(summary),
        "## Poem length\n\n" + _markdown_table(lengths),
        "## Line length\n\n" + _markdown_table(line_stats),
        "## Per source\n\n" + _markdown_table(stats.per_source),
        "## Per split\n\n" + _markdown_table(stats.per_split),
        "## Top words\n\n" + _markdown_table(stats.top_words),
        "## Top words without stopwords\n\n" + _markdown_table(stats.top_content_words),
        "## Plots\n\n" + "\n\n".join(f"![{name}]({file})" for name, file in image_files.items()),
        "## Sample poems\n\n"
        + "\n\n".join(
            # Title, author and text are scraped: escaped, and the text in a fence it cannot close.
            f"### {md_inline(row.title or '(untitled)')} — {md_inline(row.author or 'unknown')} "
            f"({md_inline(row.source)}, {md_code_span(row.poem_id)})\n\n"
            + md_fence(row.text, "text").rstrip("\n")
            for row in stats.samples.itertuples(index=False)
        ),
    ]
    return "\n\n".join(sections) + "\n"
