"""Each cleansed_poems check passes on good data and fails, with the reason, on bad data."""

import pandas as pd
import pytest

from genai_assets.cleaning.checks import (
    CHECKS,
    check_no_duplicates,
    check_no_empty_text,
    check_no_forbidden_characters,
    check_schema,
    check_splits,
)
from genai_assets.schema import CLEANSED_POEM_COLUMNS


def good_table() -> pd.DataFrame:
    texts = ["The rose is red\nthe violet blue", "Tiger, tiger\u2014burning bright", "O Captain! my Captain!"]
    return pd.DataFrame(
        {
            "poem_id": ["p1", "p2", "p3"],
            "source": ["gutenberg", "gutenberg", "poetrydb"],
            "url": [None, None, "http://x"],
            "title": [None, None, "O Captain"],
            "author": [None, None, "Whitman"],
            "text": texts,
            "tags": [[], [], ["elegy"]],
            "form": [None, None, None],
            "license": ["PD"] * 3,
            "fetched_at": pd.to_datetime(["2026-01-01"] * 3, utc=True),
            "content_hash": ["h1", "h2", "h3"],
            "n_lines": pd.Series([2, 1, 1], dtype="int64"),
            "n_words": pd.Series([7, 4, 4], dtype="int64"),
            "split": ["train", "val", "test"],
        },
        columns=list(CLEANSED_POEM_COLUMNS),
    )


@pytest.mark.parametrize("name", list(CHECKS))
def test_every_check_passes_on_good_data(name):
    outcome = CHECKS[name](good_table())
    assert outcome.passed, outcome.description


def test_schema_check_fails_on_missing_column_and_float_counts():
    assert not check_schema(good_table().drop(columns="split")).passed
    bad = good_table().astype({"n_words": "float64"})
    outcome = check_schema(bad)
    assert not outcome.passed and "n_words" in outcome.description


def test_empty_text_check_fails():
    bad = good_table()
    bad.loc[1, "text"] = " \n "
    outcome = check_no_empty_text(bad)
    assert not outcome.passed and outcome.metadata["empty_rows"] == 1 and outcome.metadata["examples"] == "p2"


def test_duplicate_check_fails_on_repeated_ids_and_texts():
    repeated_id = good_table()
    repeated_id.loc[2, "poem_id"] = "p1"
    assert check_no_duplicates(repeated_id).metadata["duplicate_poem_ids"] == 1
    assert not check_no_duplicates(repeated_id).passed
    same_words = good_table()
    same_words.loc[2, "text"] = "THE ROSE, is red;\n\nthe violet BLUE!"
    outcome = check_no_duplicates(same_words)
    assert not outcome.passed and outcome.metadata["duplicate_texts"] == 1


def test_forbidden_character_check_fails_and_names_the_characters():
    bad = good_table()
    bad.loc[0, "text"] = "The rose {is} red"
    outcome = check_no_forbidden_characters(bad)
    assert not outcome.passed
    assert outcome.metadata["characters"] == repr(["{", "}"]) and outcome.metadata["examples"] == "p1"


def test_split_check_fails_on_unknown_split_and_on_leakage():
    unknown = good_table()
    unknown.loc[0, "split"] = "dev"
    assert not check_splits(unknown).passed
    leaked = pd.concat([good_table(), good_table().iloc[[0]].assign(split="test")], ignore_index=True)
    outcome = check_splits(leaked)
    assert not outcome.passed and outcome.metadata["leaked_poem_ids"] == 1
    assert not check_splits(good_table().assign(split="test")).passed  # no train poems


def test_every_check_names_itself_as_its_asset_check():
    """One CheckOutcome type (genai_assets.schema) for the cleansed checks and the raw snapshot gate."""
    from genai_assets.schema import CheckOutcome
    from genai_assets.sources import snapshot

    assert snapshot.CheckOutcome is CheckOutcome
    for name, function in CHECKS.items():
        outcome = function(good_table())
        assert isinstance(outcome, CheckOutcome) and outcome.name == name and outcome.passed


def test_forbidden_character_check_reads_titles_and_authors_too():
    hidden = good_table()
    hidden.loc[1, "title"] = "Roses\u202e"  # a bidi override: invisible, reorders what follows
    hidden.loc[2, "text"] = hidden.loc[2, "text"] + "\U000e0041"  # a tag letter: hidden text
    outcome = check_no_forbidden_characters(hidden)
    assert not outcome.passed and outcome.metadata["dirty_rows"] == 2
    assert outcome.metadata["characters"] == ascii(["\u202e", "\U000e0041"])
    assert outcome.metadata["examples"] == "p2, p3"
