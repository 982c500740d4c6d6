"""Hostile scraped or generated text through the Markdown writers that are not cards: Dagster
markdown metadata (tables and samples), the corpus EDA report and README's generated tables.
Each output is rendered by a permissive renderer (markdown-it, raw HTML on) and parsed: no tag,
heading or table cell may come from the text. (Cards: test_publish_*; CSV/HTML: human eval.)"""

from __future__ import annotations

import pandas as pd

from genai_assets_tests.test_publish_model_card import _rendered

HOSTILE_TITLE = "Ode | <img src=x onerror=alert(1)>"
HOSTILE_TEXT = "the rose\n```\n# Fake heading\n<script>alert(1)</script>\n| a | b |"


def assert_inert(markdown: str, expected_headings: list[str] | None = None):
    page = _rendered(markdown)
    assert "script" not in page.tags and "onerror" not in {name for name, _ in page.attributes}
    assert "Fake heading" not in page.headings
    if expected_headings is not None:
        assert page.headings == expected_headings
    return page


def test_dagster_markdown_metadata_keeps_text_in_its_place():
    from genai_assets.defs._metadata import dataframe_markdown, samples_markdown, table_markdown
    from genai_assets.escaping import md_code_span

    frame = pd.DataFrame({"title": [HOSTILE_TITLE], "text": [HOSTILE_TEXT], "n": [0.5]})
    preview = assert_inert(dataframe_markdown(frame).value)
    assert preview.cells[0] == HOSTILE_TITLE and preview.cells[2] == "0.5"
    assert assert_inert(table_markdown(frame).value).cells[:1] == [HOSTILE_TITLE]
    samples = [{"prompt": "`x` <b>", "text": HOSTILE_TEXT}]
    page = assert_inert(
        samples_markdown(samples, label=lambda s: f"prompt {md_code_span(s['prompt'])}").value
    )
    assert HOSTILE_TEXT + "\n" in page.code and "`x` <b>" in page.code


def test_corpus_eda_report_keeps_scraped_titles_and_texts_in_place():
    from genai_assets.reporting.eda import PLOTS, compute_corpus_stats, render_report
    from genai_assets_tests.test_eda_stats import toy_corpus

    corpus = toy_corpus().assign(title=HOSTILE_TITLE, author="<b>Anon</b>", text=HOSTILE_TEXT)
    report = render_report(compute_corpus_stats(corpus, n_samples=1), {name: f"{name}.png" for name in PLOTS})
    page = assert_inert(report)
    sample_heading = page.headings[-1]
    assert sample_heading.startswith(f"{HOSTILE_TITLE} — <b>Anon</b>")
    assert HOSTILE_TEXT + "\n" in page.code


def test_readme_generated_tables_escape_lake_values():
    from genai_assets.escaping import md_code_span
    from genai_assets.reporting.docs_tables import _table

    table = _table(["run", "note"], ["---", "---"], [[md_code_span("a|b", table_cell=True), HOSTILE_TEXT]])
    page = assert_inert(table)
    assert page.cells == ["a|b", " / ".join(HOSTILE_TEXT.split("\n"))]
