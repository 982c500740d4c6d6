"""The out-of-domain poems: attributed, clean text, in no training source; learning-vs-forgetting record."""

from __future__ import annotations

import pytest

from genai_assets.cleaning.rules import remove_forbidden_characters
from genai_assets.evaluation.forgetting import compare_bits_per_char, forgetting_texts
from genai_assets.evaluation.ood_poems import OOD_POEMS, OodPoem, check_overlap, load_ood_poems, ood_texts


def test_every_poem_is_attributed_public_domain_and_distinct():
    assert 30 <= len(OOD_POEMS) <= 50
    assert len({poem.text for poem in OOD_POEMS}) == len(OOD_POEMS)
    for poem in OOD_POEMS:
        assert poem.author and poem.title
        # US public domain: published before 1931 (and 20th-century, unlike the training corpus).
        assert 1900 < poem.year < 1931, poem.attribution
        assert (
            poem.license.startswith("Public domain in the United States") and str(poem.year) in poem.license
        )
        assert poem.text == poem.text.strip() and poem.text.count("\n") >= 3, poem.attribution
        # Cleaning would not change a character: the set is scored as the corpus's poems would be.
        assert remove_forbidden_characters(poem.text) == poem.text, poem.attribution


def test_overlap_check_finds_a_shared_8gram_across_line_breaks():
    poem = OodPoem("t", "a", 1920, "one two three four\nfive six seven eight nine\nten")
    training = ["nothing here", "xx three four five six\nseven eight nine ten yy"]
    assert check_overlap(training, [poem]) == {"a, “t” (1920)": 1}  # "three ... ten"
    assert check_overlap(["one two three four five six seven"], [poem]) == {}  # only 7 words shared


def test_no_poem_shares_an_8gram_with_the_bundled_training_sources():
    """Shakespeare, the test fixtures' sites and the whole Gutenberg Poetry Corpus (3.1 M lines)."""
    from pathlib import Path

    from genai_assets.sources.gutenberg import load_gutenberg_lines
    from genai_assets.sources.shakespeare import shakespeare_poems

    texts = [record["text"] for record in shakespeare_poems().records]
    fixtures = Path(__file__).parent / "fixtures"
    texts += [path.read_text(errors="ignore") for path in fixtures.rglob("*") if path.is_file()]
    lines = load_gutenberg_lines()["text"].tolist()
    # Consecutive 2,000-line chunks overlapping by 20 lines: phrases across line breaks are seen.
    texts += ("\n".join(lines[max(0, start - 20) : start + 2000]) for start in range(0, len(lines), 2000))
    assert check_overlap(texts) == {}


def test_forgetting_texts_match_the_evaluation_selection_and_record_math():
    import pandas as pd

    poems = pd.DataFrame(
        {
            "poem_id": [f"p{i}" for i in range(6)],
            "text": [f"line {i}\nmore" for i in range(6)],
            "split": ["train", "test", "test", "val", "test", "train"],
        }
    )
    texts = forgetting_texts(poems)
    assert texts["in_domain"] == ["line 1\nmore", "line 2\nmore", "line 4\nmore"]
    assert texts["ood"] == ood_texts() and len(texts["ood"]) == len(OOD_POEMS)
    record = compare_bits_per_char({"in_domain": 2.0, "ood": 1.0}, {"in_domain": 1.8, "ood": 1.01}, texts)
    assert record["change"] == {"in_domain": pytest.approx(-0.1), "ood": pytest.approx(0.01)}
    assert record["n_texts"] == {"in_domain": 3, "ood": len(OOD_POEMS)}
    with pytest.raises(ValueError, match="no test split"):
        forgetting_texts(poems[poems["split"] != "test"])


def test_the_poems_are_package_data_with_their_provenance():
    """Texts and provenance come from genai_assets/data/ood_poems.toml, which the wheel ships."""
    import fnmatch
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = pyproject["tool"]["setuptools"]["package-data"]["genai_assets"]
    assert any(fnmatch.fnmatch("data/ood_poems.toml", pattern) for pattern in shipped)
    assert load_ood_poems() == OOD_POEMS and len(OOD_POEMS) == 32
    frost = OOD_POEMS[0]
    assert frost.attribution == "Robert Frost, “Stopping by Woods on a Snowy Evening” (1923)"
    assert frost.text.startswith("Whose woods these are I think I know.\nHis house")
    assert frost.license == "Public domain in the United States (first published 1923, before 1931)"
