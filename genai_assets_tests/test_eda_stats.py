"""Corpus statistics, exact on a toy corpus, and the report/plots they render."""

import numpy as np
import pandas as pd
import pytest

from genai_assets.reporting.eda import (
    PLOTS,
    compute_corpus_stats,
    fit_power_law,
    render_report,
    vocabulary_growth,
)


def toy_corpus() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "poem_id": ["p1", "p2", "p3"],
            "source": ["gutenberg", "gutenberg", "poetrydb"],
            "title": [None, None, "End"],
            "author": [None, None, "Anon"],
            "text": ["the cat sat\non the mat", "The dog sat", "A cat, a dog!\n\nThe end."],
            "n_lines": [2, 1, 2],
            "n_words": [6, 3, 6],
            "split": ["train", "train", "test"],
        }
    )


def test_counts_vocabulary_and_top_words_are_exact():
    stats = compute_corpus_stats(toy_corpus(), top_k=5, heaps_points=5, n_samples=2, seed=0)
    assert (stats.n_poems, stats.n_lines, stats.n_words) == (3, 5, 15)
    assert stats.vocabulary_size == 8 and stats.hapax_legomena == 3
    assert stats.top_words[["word", "count"]].values.tolist() == [
        ["the", 4],
        ["a", 2],
        ["cat", 2],
        ["dog", 2],
        ["sat", 2],
    ]
    assert stats.top_words["share"].iloc[0] == pytest.approx(4 / 15, abs=1e-5)
    assert stats.top_content_words["word"].tolist() == ["cat", "dog", "sat", "end", "mat"]
    assert stats.zipf["count"].tolist() == [4, 2, 2, 2, 2, 1, 1, 1]
    assert stats.line_chars.tolist() == [11, 10, 11, 13, 8]
    assert stats.line_words.tolist() == [3, 3, 3, 4, 2]


def test_heaps_curve_and_power_law_fit():
    stats = compute_corpus_stats(toy_corpus(), heaps_points=15)
    assert stats.heaps["tokens"].iloc[-1] == 15 and stats.heaps["vocabulary"].iloc[-1] == 8
    assert stats.heaps["tokens"].iloc[0] == 1 and stats.heaps["vocabulary"].iloc[0] == 1
    growth = vocabulary_growth(np.array([0, 1, 0, 2, 1, 3]), n_points=6)
    assert growth.to_dict("list") == {"tokens": [1, 2, 4, 6], "vocabulary": [1, 2, 3, 4]}  # log-spaced
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    coefficient, exponent = fit_power_law(x, 3.0 * x**0.5)
    assert coefficient == pytest.approx(3.0) and exponent == pytest.approx(0.5)


def test_per_source_and_split_tables():
    stats = compute_corpus_stats(toy_corpus())
    assert stats.per_source.to_dict("list") == {
        "source": ["gutenberg", "poetrydb"],
        "poems": [2, 1],
        "share": [0.6667, 0.3333],
        "mean_lines": [1.5, 2.0],
        "mean_words": [4.5, 6.0],
        "vocabulary": [6, 5],
    }
    assert stats.per_split.to_dict("list") == {"split": ["test", "train"], "poems": [1, 2], "words": [6, 9]}


def test_samples_are_deterministic_and_cover_sources_first():
    first = compute_corpus_stats(toy_corpus(), n_samples=2, seed=5).samples
    again = compute_corpus_stats(toy_corpus(), n_samples=2, seed=5).samples
    assert first.equals(again) and sorted(first["source"]) == ["gutenberg", "poetrydb"]


def test_report_and_plots_render(tmp_path):
    stats = compute_corpus_stats(toy_corpus(), n_samples=1)
    for name, plot in PLOTS.items():
        plot(stats).savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    report = render_report(stats, {name: f"{name}.png" for name in PLOTS})
    assert report.startswith("# Corpus EDA")
    assert "![zipf](zipf.png)" in report and "| the | 4 |" in report


def test_empty_corpus_is_a_clear_error():
    with pytest.raises(ValueError, match="Empty corpus"):
        compute_corpus_stats(toy_corpus().iloc[:0])
