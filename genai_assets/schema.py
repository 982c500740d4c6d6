"""The poem table contracts, in one place: column names, identity and content hashes, validation.

``raw_poems/<site>.parquet`` has one row per poem with exactly :data:`RAW_POEM_COLUMNS`, in
that order; ``cleansed_poems.parquet`` has :data:`CLEANSED_POEM_COLUMNS`. Every stage that
reads or writes these tables imports the names from here rather than spelling them again.

Column types (pandas, after a Parquet round trip):

==============  =========================================  ==================================
column          type                                        meaning
==============  =========================================  ==================================
poem_id         str                                         ``make_poem_id(source, key)``
source          str                                         site key (partition)
url             str or null                                 page the poem came from
title           str or null
author          str or null
text            str                                         lines joined by ``\\n``,
                                                            stanzas by ``\\n\\n``
tags            list of str (numpy array after Parquet)     site tags/keywords, may be empty
form            str or null                                 e.g. ``"sonnet"``
license         str                                         licence / attribution line
fetched_at      datetime64, tz UTC                          when the source was read
content_hash    str                                         ``content_hash(text)``
==============  =========================================  ==================================

This module is deliberately light (hashlib + pandas) so every stage can import it.
"""

from __future__ import annotations

import collections
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

RAW_POEM_COLUMNS: tuple[str, ...] = (
    "poem_id",
    "source",
    "url",
    "title",
    "author",
    "text",
    "tags",
    "form",
    "license",
    "fetched_at",
    "content_hash",
)
"""Columns of ``raw_poems/<site>.parquet``, in file order."""

#: Raw columns carried into ``cleansed_poems`` (everything but ``text``): unchanged, except that
#: ``title`` and ``author`` lose invisible characters (``cleaning.rules.clean_label``).
IDENTITY_COLUMNS: tuple[str, ...] = tuple(column for column in RAW_POEM_COLUMNS if column != "text")

CLEANSED_POEM_COLUMNS: tuple[str, ...] = (*RAW_POEM_COLUMNS, "n_lines", "n_words", "split")
"""Columns of ``cleansed_poems.parquet``: the raw columns (``text`` cleaned) plus counts and split."""

#: Columns that must hold a non-empty string in every row.
REQUIRED_STRING_COLUMNS: tuple[str, ...] = ("poem_id", "source", "text", "license", "content_hash")
#: Columns that hold a string or null.
OPTIONAL_STRING_COLUMNS: tuple[str, ...] = ("url", "title", "author", "form")

#: End-of-poem marker: the separator between poems in ``cleansed.txt`` and the scratch tokenizers'
#: eos token. Here (the core layer) so both ``cleaning`` and ``text`` can name it without a cycle.
END_OF_POEM = "<|endofpoem|>"
#: Label value the language-modelling loss skips (padding): ``torch.nn.functional.cross_entropy``'s
#: and transformers' default. Here so the numpy-only batch code (``text``, ``training``,
#: ``finetune``) and ``models.loss`` share it without ``text`` importing ``models``.
IGNORE_INDEX = -100


@dataclass(frozen=True)
class CheckOutcome:
    """The verdict of one check on a poem table (the raw snapshot gate, the cleansed-table checks).

    ``name`` is the Dagster asset-check name; ``metadata`` holds plain numbers and strings (counts,
    the first offending poem ids) so a failing check says exactly what is wrong.
    """

    name: str
    passed: bool
    description: str  # one line saying what was found
    metadata: dict[str, Any] = field(default_factory=dict)


def make_poem_id(source: str, source_key: str) -> str:
    """A stable poem id: ``<source>-<16 hex chars of sha256(source, key)>``.

    ``source_key`` is whatever identifies the poem *at its source* (a URL, "author/title",
    a line range), so a re-scrape of the same poem yields the same id even if its text changed.
    """
    if not source or not source_key:
        raise ValueError(f"make_poem_id needs a source and a source key, got {source!r}, {source_key!r}.")
    digest = hashlib.sha256(f"{source}\x1f{source_key}".encode()).hexdigest()
    return f"{source}-{digest[:16]}"


def normalize_poem_text(text: str) -> str:
    """Canonical layout used for hashing: NFC, ``\\n`` line ends, no trailing spaces, no edge blanks."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


def content_hash(text: str) -> str:
    """sha256 (hex) of the poem's normalized text: equal for texts that differ only in layout noise.

    Normalization (see :func:`normalize_poem_text`) ignores Unicode composition, line-ending style,
    trailing spaces and leading/trailing blank lines, but keeps words, case and stanza breaks.
    """
    return hashlib.sha256(normalize_poem_text(text).encode("utf-8")).hexdigest()


def join_stanzas(stanzas: Iterable[Iterable[str]]) -> str:
    """Lines joined by ``\\n``, stanzas by ``\\n\\n`` (empty stanzas dropped): the contract's text layout."""
    blocks = ["\n".join(line.rstrip() for line in stanza) for stanza in stanzas]
    return "\n\n".join(block.strip("\n") for block in blocks if block.strip())


@dataclass(frozen=True)
class RawPoemsTable:
    """A raw_poems frame and the records left out of it (counted by reason, first example each)."""

    frame: pd.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> records dropped
    dropped_examples: dict[str, str] = field(default_factory=dict)  # reason -> first record's key


class RecordProblemError(ValueError):
    """One poem record cannot become a row; ``reason`` is its counter key (``unencodable_title``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


#: Lone surrogates (e.g. from the JSON escape ``"\ud800"``): no UTF-8 for them, so no hash, no Parquet.
_SURROGATE = re.compile("[\ud800-\udfff]")


def build_raw_poems(
    records: Iterable[Mapping[str, object]], fetched_at: datetime | None = None
) -> RawPoemsTable:
    """Build a contract-conforming raw_poems frame from poem records (dicts), one record at a time.

    Each record needs ``source``, ``source_key``, ``text`` and ``license`` (non-blank strings);
    ``url``, ``title``, ``author``, ``form`` (string or None) and ``tags`` (a list) are optional.
    ``poem_id`` and ``content_hash`` are derived here so no adapter can get them wrong;
    ``fetched_at`` defaults to now (UTC). A record that cannot become a valid row (a lone
    surrogate in any field, a missing or blank required field, a repeated ``poem_id``) is left out
    and counted in ``dropped`` by reason: one bad poem never costs the site its other poems.
    """
    stamp = pd.Timestamp(fetched_at or datetime.now().astimezone()).tz_convert("UTC")
    names = [name for name in RAW_POEM_COLUMNS if name != "fetched_at"]
    columns: dict[str, list] = {name: [] for name in names}  # filled column-wise: no row tuples kept
    dropped: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    seen_ids: set[str] = set()
    for record in records:
        try:
            row = raw_poem_row(record)
            if row[0] in seen_ids:
                raise RecordProblemError("duplicate_poem_id", row[0])
        except RecordProblemError as problem:
            dropped[problem.reason] += 1
            key = record.get("source_key") if isinstance(record, Mapping) else None
            examples.setdefault(problem.reason, ascii(key)[:200])
            continue
        seen_ids.add(row[0])
        for name, value in zip(RAW_POEM_COLUMNS, row, strict=True):
            if name != "fetched_at":
                columns[name].append(value)
    rows = len(seen_ids)
    # object columns keep None as None (pandas' str dtype would turn it into NaN before Parquet)
    frame = pd.DataFrame(
        {name: pd.Series(columns.pop(name), dtype="object") for name in names}
        | {"fetched_at": pd.DatetimeIndex([stamp] * rows, dtype="datetime64[us, UTC]")},
        columns=list(RAW_POEM_COLUMNS),
    )
    return RawPoemsTable(frame, dict(sorted(dropped.items())), dict(sorted(examples.items())))


def raw_poems_frame(
    records: Iterable[Mapping[str, object]], fetched_at: datetime | None = None
) -> pd.DataFrame:
    """The frame of :func:`build_raw_poems` (records that cannot be rows are left out)."""
    return build_raw_poems(records, fetched_at).frame


def raw_poem_row(record: Mapping[str, object]) -> tuple:
    """One record as a row in :data:`RAW_POEM_COLUMNS` order, ``fetched_at`` left as None.

    Raises :class:`RecordProblemError` naming the field when the record cannot be a valid row.
    """
    if not isinstance(record, Mapping):
        raise RecordProblemError("not_a_record", type(record).__name__)
    # Fields a source key is built from (title, author, url) are checked first, so the reason
    # names the field that is really at fault.
    text, license_ = (_required_string(record, name) for name in ("text", "license"))
    url, title, author, form = (_optional_string(record, name) for name in ("url", "title", "author", "form"))
    source, source_key = (_required_string(record, name) for name in ("source", "source_key"))
    tags = record.get("tags") or []
    if isinstance(tags, str | bytes | Mapping) or not isinstance(tags, Iterable):
        raise RecordProblemError("bad_tags", type(tags).__name__)
    tags = [str(tag) for tag in tags]
    if any(_SURROGATE.search(tag) for tag in tags):
        raise RecordProblemError("unencodable_tags")
    poem_id = make_poem_id(source, source_key)
    return (poem_id, source, url, title, author, text, tags, form, license_, None, content_hash(text))


def _required_string(record: Mapping[str, object], name: str) -> str:
    value = record.get(name)
    if value is None:
        raise RecordProblemError(f"missing_{name}")
    if not isinstance(value, str):
        raise RecordProblemError(f"bad_{name}", f"{type(value).__name__}, not a string")
    if not value.strip():
        raise RecordProblemError(f"empty_{name}")
    if _SURROGATE.search(value):
        raise RecordProblemError(f"unencodable_{name}", "lone surrogate")
    return value


def _optional_string(record: Mapping[str, object], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordProblemError(f"bad_{name}", f"{type(value).__name__}, not a string or null")
    if _SURROGATE.search(value):
        raise RecordProblemError(f"unencodable_{name}", "lone surrogate")
    return value


def schema_problems(frame: pd.DataFrame) -> list[str]:
    """Everything wrong with ``frame`` as a raw_poems table (empty list = conforms).

    Checks column names and order, value types per column (strings, nullable strings, lists
    of strings, a UTC timestamp), non-empty required strings, unique ``poem_id`` and that
    ``content_hash`` matches ``text``. Messages name the column and a sample offending row.
    """
    problems: list[str] = []
    columns = tuple(frame.columns)
    if columns != RAW_POEM_COLUMNS:
        missing = [c for c in RAW_POEM_COLUMNS if c not in columns]
        extra = [c for c in columns if c not in RAW_POEM_COLUMNS]
        problems.append(
            f"columns {list(columns)} differ from the contract {list(RAW_POEM_COLUMNS)} "
            f"(missing {missing}, unexpected {extra}, or wrong order)"
        )
        return problems

    def first_bad(mask: pd.Series) -> str:
        index = mask[mask].index[0]
        return f"{int(mask.sum())} row(s), first at index {index!r}"

    for column in REQUIRED_STRING_COLUMNS:
        bad = ~frame[column].map(lambda value: isinstance(value, str) and bool(value.strip()))
        if bad.any():
            problems.append(f"column {column!r} must be a non-empty string: {first_bad(bad)}")
    for column in OPTIONAL_STRING_COLUMNS:
        bad = ~frame[column].map(lambda value: value is None or isinstance(value, str) or _is_null(value))
        if bad.any():
            problems.append(f"column {column!r} must be a string or null: {first_bad(bad)}")
    bad_tags = ~frame["tags"].map(_is_list_of_strings)
    if bad_tags.any():
        problems.append(f"column 'tags' must be a list of strings: {first_bad(bad_tags)}")
    fetched = frame["fetched_at"]
    if not isinstance(fetched.dtype, pd.DatetimeTZDtype) or str(fetched.dtype.tz) != "UTC":
        problems.append(f"column 'fetched_at' must be a UTC timestamp, got dtype {fetched.dtype}")
    elif fetched.isna().any():
        problems.append(f"column 'fetched_at' has nulls: {first_bad(fetched.isna())}")
    duplicated = frame["poem_id"].duplicated()
    if duplicated.any():
        problems.append(f"column 'poem_id' must be unique: {first_bad(duplicated)} repeat an earlier id")
    if not problems:
        wrong_hash = frame["content_hash"] != frame["text"].map(content_hash)
        if wrong_hash.any():
            problems.append(
                f"column 'content_hash' does not match content_hash(text): {first_bad(wrong_hash)}"
            )
    return problems


def _is_null(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_list_of_strings(value: object) -> bool:
    # Parquet hands lists back as numpy arrays; both are fine.
    if isinstance(value, str) or not hasattr(value, "__iter__") or isinstance(value, Mapping):
        return False
    return all(isinstance(item, str) for item in value)
