"""Plain-file exports of the corpus, for people and for tools outside the lake.

* ``exports/raw_poems.json`` — the raw input in the seed project's format: a JSON list (UTF-8,
  one object per poem, table order) of ``{"poem", "title", "author", "tags", "type", "source",
  "poem_id"}``; ``type`` carries the raw ``form`` column, missing values are ``null``.
* ``exports/cleansed.txt`` — every cleansed poem's text, in table order, each one followed by a
  blank line, the line :data:`END_OF_POEM` and a blank line (the file ends with the marker line
  and a newline). Cleaned text cannot contain ``<``, ``|`` or ``>`` (they are forbidden
  characters), so the marker never occurs inside a poem and splitting is unambiguous; it is the
  same string as the poem tokenizer's eos token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from genai_assets.lake import atomic_write_text
from genai_assets.schema import END_OF_POEM  # the scratch tokenizers' eos too

POEM_SEPARATOR = f"\n\n{END_OF_POEM}\n\n"
_SEPARATOR_PATTERN = re.compile(rf"\n\n{re.escape(END_OF_POEM)}\n(?:\n|$)")


def _json_value(value):
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return None
    return value


def raw_poems_export_records(raw: pd.DataFrame) -> list[dict]:
    """The raw table as seed-format records (see module docstring)."""
    records = []
    for row in raw.itertuples(index=False):
        tags = row.tags if row.tags is not None and not isinstance(row.tags, float) else []
        records.append(
            {
                "poem": row.text,
                "title": _json_value(row.title),
                "author": _json_value(row.author),
                "tags": [str(tag) for tag in tags],
                "type": _json_value(row.form),
                "source": row.source,
                "poem_id": row.poem_id,
            }
        )
    return records


def write_raw_poems_json(raw: pd.DataFrame, path: str | Path) -> Path:
    """Write :func:`raw_poems_export_records` as a JSON list to ``path`` (atomically)."""
    return atomic_write_text(
        path, json.dumps(raw_poems_export_records(raw), ensure_ascii=False, indent=1) + "\n"
    )


def cleansed_text(texts: Iterable[str]) -> str:
    """The ``cleansed.txt`` content for ``texts`` (see module docstring)."""
    return "".join(f"{text}{POEM_SEPARATOR}" for text in texts).removesuffix("\n")


def write_cleansed_text(texts: Iterable[str], path: str | Path) -> Path:
    return atomic_write_text(path, cleansed_text(texts))


def read_cleansed_text(path: str | Path) -> list[str]:
    """The poems of a ``cleansed.txt`` file, in order (inverse of :func:`cleansed_text`)."""
    content = Path(path).read_text(encoding="utf-8")
    return [poem for poem in _SEPARATOR_PATTERN.split(content) if poem]
