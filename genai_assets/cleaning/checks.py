"""Data-quality checks on the cleansed_poems table: pure functions, one verdict each.

The Dagster asset checks call these; each returns a :class:`CheckOutcome` whose ``metadata``
holds plain numbers/strings (counts and the first offending poem ids), so a failing check says
exactly what is wrong.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genai_assets.cleaning.dedup import dedup_key
from genai_assets.cleaning.rules import forbidden_characters
from genai_assets.cleaning.split import SPLITS
from genai_assets.schema import CLEANSED_POEM_COLUMNS, CheckOutcome

_SHOWN = 5  # offending ids listed in metadata


def _first_ids(frame: pd.DataFrame, mask) -> str:
    return ", ".join(map(str, frame.loc[np.asarray(mask, dtype=bool), "poem_id"].head(_SHOWN)))


def check_schema(frame: pd.DataFrame) -> CheckOutcome:
    """Exactly ``CLEANSED_POEM_COLUMNS`` in order; integer counts; string text/ids/splits."""
    problems = []
    if tuple(frame.columns) != CLEANSED_POEM_COLUMNS:
        problems.append(f"columns {list(frame.columns)} != contract {list(CLEANSED_POEM_COLUMNS)}")
    else:
        for column in ("n_lines", "n_words"):
            if not pd.api.types.is_integer_dtype(frame[column]):
                problems.append(f"{column} has dtype {frame[column].dtype}, expected an integer dtype")
        for column in ("poem_id", "source", "text", "split"):
            bad = ~frame[column].map(lambda value: isinstance(value, str)).to_numpy(bool)
            if bad.any():
                problems.append(
                    f"{column} is not a string in {int(bad.sum())} rows ({_first_ids(frame, bad)})"
                )
    return CheckOutcome(
        "schema",
        not problems,
        "; ".join(problems) or "columns, order and types match the contract",
        {"n_columns": len(frame.columns), "rows": len(frame)},
    )


def check_no_empty_text(frame: pd.DataFrame) -> CheckOutcome:
    """Every poem has non-blank text and at least one word."""
    empty = ~frame["text"].map(lambda text: isinstance(text, str) and bool(text.strip())).to_numpy(bool)
    empty |= frame["n_words"].to_numpy() <= 0
    return CheckOutcome(
        "no_empty_text",
        not empty.any(),
        f"{int(empty.sum())} poems with empty text or no words",
        {"empty_rows": int(empty.sum()), "examples": _first_ids(frame, empty)},
    )


def check_no_duplicates(frame: pd.DataFrame) -> CheckOutcome:
    """No repeated ``poem_id`` and no two poems with the same words (the exact-dedup key)."""
    duplicate_ids = frame["poem_id"].duplicated().to_numpy()
    duplicate_texts = pd.Series([dedup_key(str(text)) for text in frame["text"]]).duplicated().to_numpy()
    return CheckOutcome(
        "no_duplicates",
        not duplicate_ids.any() and not duplicate_texts.any(),
        f"{int(duplicate_ids.sum())} repeated poem ids, {int(duplicate_texts.sum())} repeated texts",
        {
            "duplicate_poem_ids": int(duplicate_ids.sum()),
            "duplicate_texts": int(duplicate_texts.sum()),
            "examples": _first_ids(frame, duplicate_ids | duplicate_texts),
        },
    )


def check_no_forbidden_characters(frame: pd.DataFrame) -> CheckOutcome:
    """No character the cleaning rules remove is left: in ``text`` (debris and invisible
    characters), in ``title`` and ``author`` (invisible characters); the same rule as cleaning."""
    dirty = np.zeros(len(frame), dtype=bool)
    found: set[str] = set()
    for column, debris in (("text", True), ("title", False), ("author", False)):
        if column not in frame.columns:
            continue
        for position, value in enumerate(frame[column]):
            characters = forbidden_characters(value, debris) if isinstance(value, str) else []
            if characters:
                dirty[position] = True
                found.update(characters)
    shown = sorted(found)
    return CheckOutcome(
        "no_forbidden_characters",
        not dirty.any(),
        f"{int(dirty.sum())} poems contain forbidden characters {ascii(shown)}"
        if dirty.any()
        else "no forbidden characters in text, title or author",
        {"dirty_rows": int(dirty.sum()), "characters": ascii(shown), "examples": _first_ids(frame, dirty)},
    )


def check_splits(frame: pd.DataFrame) -> CheckOutcome:
    """Every split is train/val/test, train is not empty, and no poem id sits in two splits."""
    invalid = ~frame["split"].isin(SPLITS).to_numpy()
    splits_per_poem = frame.groupby("poem_id")["split"].nunique()
    leaked = splits_per_poem[splits_per_poem > 1]
    counts = frame["split"].value_counts()
    no_train = counts.get("train", 0) == 0
    problems = []
    if invalid.any():
        problems.append(
            f"{int(invalid.sum())} rows with a split outside {SPLITS} ({_first_ids(frame, invalid)})"
        )
    if len(leaked):
        problems.append(f"{len(leaked)} poem ids in more than one split ({', '.join(leaked.index[:_SHOWN])})")
    if no_train:
        problems.append("the train split is empty")
    return CheckOutcome(
        "valid_splits",
        not problems,
        "; ".join(problems) or "splits valid, no poem in two splits",
        {f"{split}_rows": int(counts.get(split, 0)) for split in SPLITS}
        | {"invalid_rows": int(invalid.sum()), "leaked_poem_ids": len(leaked)},
    )


#: Check name -> function, in the order the asset check reports them.
CHECKS = {
    "schema": check_schema,
    "no_empty_text": check_no_empty_text,
    "no_duplicates": check_no_duplicates,
    "no_forbidden_characters": check_no_forbidden_characters,
    "valid_splits": check_splits,
}
