"""The per-format escaping helpers, checked by parsing what they produce: the csv reader, a
GitHub-flavoured Markdown renderer (markdown-it with raw HTML *on*, as the Hub renders cards) and
html.parser. Writers using these helpers are tested in their own test files."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from genai_assets.escaping import (
    csv_cell,
    csv_cell_original,
    csv_frame_original,
    csv_frame_text,
    html_text,
    markdown_to_safe_html,
    md_bold,
    md_code_span,
    md_fence,
    md_inline,
    md_table,
)

# Strings a scraped field, a generated sample or a run-config value could hold.
HOSTILE = [
    '=HYPERLINK("http://evil","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1",
    "\r=1",
    "'=already quoted",
    "''=twice",
    "'Tis the season",
    "a | b | c",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "line one\n```\n# Fake heading\n<b>raw</b>\n````",
    "ends with a backslash \\",
    "[click](javascript:alert(1))",
    "1. not a list\n- nor this",
    "&amp; &lt;b&gt; <!-- comment",
    "plain poem line",
]


def render(markdown: str) -> str:
    """How a permissive renderer (raw HTML allowed, GFM tables) shows ``markdown``."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


class Collector(HTMLParser):
    """Tags, attributes and text of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(attrs)
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse_html(document: str) -> Collector:
    parser = Collector()
    parser.feed(document)
    parser.close()
    return parser


@pytest.mark.parametrize("value", HOSTILE)
def test_csv_cell_never_starts_a_formula_and_round_trips(value):
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell(value), "next"])
    (cell, after), *rest = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    assert rest == [] and after == "next"  # the value stayed in its one cell
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert csv_cell_original(cell) == value


def test_csv_leaves_numbers_and_harmless_text_alone():
    assert csv_cell(-0.5) == -0.5 and csv_cell(None) is None
    assert csv_cell("'Tis the season") == "'Tis the season"
    assert csv_cell("=1") == "'=1" and csv_cell("'=1") == "''=1"


def test_csv_frame_round_trip_through_pandas(tmp_path):
    frame = pd.DataFrame({"text": HOSTILE, "n": range(len(HOSTILE))})
    (tmp_path / "x.csv").write_bytes(csv_frame_text(frame).encode())
    back = pd.read_csv(tmp_path / "x.csv", dtype=str, keep_default_na=False)
    assert not back["text"].str.match(r"[=+\-@\t\r]").any()
    assert csv_frame_original(back)["text"].tolist() == HOSTILE


@pytest.mark.parametrize("value", HOSTILE)
def test_md_fence_holds_its_content_verbatim(value):
    page = parse_html(render("before\n\n" + md_fence(value, info="text") + "\nafter\n"))
    assert page.tags == ["p", "pre", "code", "p"]  # no heading, no <b>, no second block
    assert value.replace("\r", "\n") in "".join(page.text)  # a renderer reads a lone CR as a line end


@pytest.mark.parametrize("value", HOSTILE)
def test_md_table_cells_stay_in_their_cell(value):
    page = parse_html(render(md_table(["value", "other"], [[value, "x"], [md_bold("total"), 1]])))
    assert sorted(set(page.tags)) == ["strong", "table", "tbody", "td", "th", "thead", "tr"]
    assert page.attributes == []  # no <img onerror>, no <a href>
    assert page.cells == ["value", "other", " / ".join(value.splitlines()).strip(), "x", "total", "1"]


@pytest.mark.parametrize("value", HOSTILE)
def test_md_inline_and_code_span_are_literal(value):
    page = parse_html(render(f"- item {md_inline(value)}\n- code {md_code_span(value)}\n"))
    assert page.tags == ["ul", "li", "li", "code"]
    assert page.attributes == []
    flat = " ".join(value.splitlines())
    assert "".join(page.text).count(flat) == 2  # once as text, once as code


@pytest.mark.parametrize("value", HOSTILE)
def test_html_text_and_safe_markdown_render_no_markup(value):
    page = parse_html(f'<p title="{html_text(value)}">{html_text(value)}</p>')
    assert page.tags == ["p"] and page.attributes == [("title", value)] and "".join(page.text) == value
    rendered = parse_html(markdown_to_safe_html(f"# Notes\n\n{value}\n"))
    assert not {"img", "script", "b"} & set(rendered.tags)
    assert all(name == "href" and not value.startswith("javascript") for name, value in rendered.attributes)
