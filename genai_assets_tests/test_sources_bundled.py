"""Bundled sources: the Gutenberg excerpt rule (synthetic and real file) and Shakespeare's poems."""

from __future__ import annotations

import collections

import pandas as pd
import pytest

from genai_assets.schema import raw_poems_frame, schema_problems
from genai_assets.sources.gutenberg import (
    GUTENBERG_LINE_COUNT,
    ExcerptRule,
    excerpt_bounds,
    gutenberg_poems,
    load_gutenberg_lines,
    sample_bounds,
)
from genai_assets.sources.shakespeare import shakespeare_poems


def test_excerpt_rule_on_synthetic_lines():
    lines = [
        "one,", "two,", "three.",        # sentence end at 3 lines: too short, keep going
        "four,", "five.",                # ends at 5 lines (>= 4): excerpt 0-5
        "a", "b", "c", "d", "e", "f",    # no sentence end: cut at max 6: excerpt 5-11
        "g", "h", "i", 'j!"',            # 4 lines ending '!"': excerpt 11-15
        "tail", "end.",                  # 2-line tail: dropped
    ]  # fmt: skip
    assert excerpt_bounds(lines, ExcerptRule(min_lines=4, max_lines=6)) == [(0, 5), (5, 11), (11, 15)]


def test_excerpt_rule_validation_and_sampling():
    with pytest.raises(ValueError, match="min_lines"):
        ExcerptRule(min_lines=5, max_lines=4)
    bounds = [(index, index + 1) for index in range(100)]
    sample = sample_bounds(bounds, 10, seed=7)
    assert len(sample) == 10 and sample == sorted(sample)  # file order kept
    assert sample == sample_bounds(bounds, 10, seed=7)  # deterministic
    assert sample != sample_bounds(bounds, 10, seed=8)
    assert sample_bounds(bounds, 0, seed=7) == bounds  # 0 = all


def test_gutenberg_poems_from_a_small_frame():
    lines = pd.DataFrame(
        {
            "text": ["Sing, O muse,", "of wrath.", "Line three", "ends here.", "Another", "x", "y", "stop."],
            "meter": ["iambic", "iambic", "trochaic", "iambic", "iambic", "iambic", "x", "x"],
        }
    )
    result = gutenberg_poems(max_excerpts=0, lines=lines)
    assert [record["text"] for record in result.records] == [
        "Sing, O muse,\nof wrath.\nLine three\nends here.",
        "Another\nx\ny\nstop.",
    ]
    assert result.records[0]["tags"] == ["meter:iambic"] and result.records[0]["source_key"] == "lines/0-4"
    assert (
        result.records[0]["title"] is None
        and result.records[0]["license"] == "Public domain (Project Gutenberg)"
    )


def test_gutenberg_loader_on_the_real_file_with_a_cap():
    lines = load_gutenberg_lines()
    assert len(lines) == GUTENBERG_LINE_COUNT
    result = gutenberg_poems(max_excerpts=300, seed=1337, lines=lines)
    assert len(result.records) == 300
    assert result.details["lines_total"] == GUTENBERG_LINE_COUNT
    assert result.details["excerpts_total"] > 400_000  # ~7 lines per excerpt over 3.1 M lines
    sizes = collections.Counter(record["text"].count("\n") + 1 for record in result.records)
    assert min(sizes) >= 4 and max(sizes) <= 14
    frame = raw_poems_frame(result.records)
    assert schema_problems(frame) == [] and frame["poem_id"].is_unique
    again = gutenberg_poems(max_excerpts=300, seed=1337, lines=lines)
    assert [record["source_key"] for record in again.records] == [
        record["source_key"] for record in result.records
    ]


def test_shakespeare_exact_counts_and_titles():
    result = shakespeare_poems()
    by_title = {record["title"]: record for record in result.records}
    sonnets = [record for record in result.records if record["form"] == "sonnet"]
    assert len(sonnets) == 154
    assert result.details["poems_per_work"] == {
        "Sonnets": 154,
        "The Passionate Pilgrim": 13,
        "A Lover's Complaint": 47,
        "The Rape of Lucrece": 265,
        "The Phoenix and the Turtle": 2,
    }
    assert len(result.records) == 481
    # Sonnets are numbered by position: the Gutenberg text misprints sonnet 128's heading.
    assert result.details["heading_corrections"] == {"Sonnets": {"CXXVIII": "CXXXIII"}}
    assert by_title["Sonnet CXXVIII"]["text"].startswith("How oft when thou, my music, music play'st,")
    xviii = by_title["Sonnet XVIII"]["text"].split("\n")
    assert xviii[0] == "Shall I compare thee to a summer's day?" and len(xviii) == 14
    assert xviii[-1] == "  So long lives this, and this gives life to thee."  # couplet indentation kept
    # The sonnets that are not 14 lines long: 99 (15 lines) and 126 (12 lines).
    odd = {
        record["title"]: record["text"].count("\n") + 1
        for record in sonnets
        if record["text"].count("\n") != 13
    }
    assert odd == {"Sonnet XCIX": 15, "Sonnet CXXVI": 12}
    lucrece_1 = by_title["The Rape of Lucrece, stanza 1"]["text"]
    assert lucrece_1.startswith("From the besieged Ardea all in post,") and lucrece_1.count("\n") == 6
    threnos = by_title["The Phoenix and the Turtle: Threnos"]["text"]
    assert threnos.startswith("Beauty, truth, and rarity.") and threnos.count("\n\n") == 4
    assert all(record["author"] == "William Shakespeare" for record in result.records)
    assert by_title["Sonnet I"]["url"] == "http://www.gutenberg.org/dirs/etext97/wssnt10.txt"
    assert "*" not in by_title["The Passionate Pilgrim VII"]["text"]
    assert schema_problems(raw_poems_frame(result.records)) == []
