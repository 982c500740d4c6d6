"""The plain-file exports: exact content on a toy corpus, and the round trip of cleansed.txt."""

import json

import pandas as pd

from genai_assets.cleaning.exports import (
    END_OF_POEM,
    cleansed_text,
    raw_poems_export_records,
    read_cleansed_text,
    write_cleansed_text,
    write_raw_poems_json,
)
from genai_assets.schema import make_poem_id, raw_poems_frame


def test_cleansed_txt_exact_format_and_round_trip(tmp_path):
    poems = ["One line\nand two", "A\n\nB (stanza two)"]
    expected = f"One line\nand two\n\n{END_OF_POEM}\n\nA\n\nB (stanza two)\n\n{END_OF_POEM}\n"
    assert cleansed_text(poems) == expected
    path = write_cleansed_text(poems, tmp_path / "exports" / "cleansed.txt")
    assert path.read_text(encoding="utf-8") == expected
    assert read_cleansed_text(path) == poems
    assert cleansed_text([]) == ""


def test_raw_poems_json_has_the_seed_format(tmp_path):
    raw = raw_poems_frame(
        [
            {
                "source": "shakespeare",
                "source_key": "sonnets/18",
                "text": "Shall I compare thee\nto a summer\u2019s day?",
                "title": "Sonnet 18",
                "author": "William Shakespeare",
                "tags": ["sonnet", "love"],
                "form": "sonnet",
                "license": "PD",
            },
            {"source": "gutenberg", "source_key": "lines/0-4", "text": "x y", "license": "PD"},
        ]
    )
    raw.to_parquet(tmp_path / "raw.parquet")
    raw = pd.read_parquet(tmp_path / "raw.parquet")  # as the asset sees it: tags come back as arrays
    path = write_raw_poems_json(raw, tmp_path / "raw_poems.json")
    assert json.loads(path.read_text(encoding="utf-8")) == [
        {
            "poem": "Shall I compare thee\nto a summer\u2019s day?",
            "title": "Sonnet 18",
            "author": "William Shakespeare",
            "tags": ["sonnet", "love"],
            "type": "sonnet",
            "source": "shakespeare",
            "poem_id": make_poem_id("shakespeare", "sonnets/18"),
        },
        {
            "poem": "x y",
            "title": None,
            "author": None,
            "tags": [],
            "type": None,
            "source": "gutenberg",
            "poem_id": make_poem_id("gutenberg", "lines/0-4"),
        },
    ]
    assert "summer\u2019s" in path.read_text(encoding="utf-8")  # UTF-8, not \u escapes
    assert len(raw_poems_export_records(raw.iloc[:0])) == 0
