"""One escaping helper per output format a person opens: CSV, Markdown, HTML.

Scraped fields (titles, authors, licenses), generated samples and run-config strings reach files
that spreadsheets, Markdown renderers (the Hub, the Dagster UI) and browsers open. Every writer of
such a file passes that text through the helper for its format, so no value can leave its place:
a CSV cell never becomes a formula, a Markdown value never closes its fence or adds table cells,
an HTML value never becomes a tag or an attribute.

- CSV: OWASP's CSV-injection rule (https://owasp.org/www-community/attacks/CSV_Injection): a cell
  starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'`` so the
  spreadsheet shows it as text. :func:`csv_cell` and :func:`csv_cell_original` are exact inverses.
- Markdown: :func:`md_fence` picks a fence longer than any backtick run in the content (CommonMark
  §4.5: a fence closes only on a run at least as long); :func:`md_table_cell` / :func:`md_inline`
  escape ``|``, Markdown punctuation and HTML (``&``, ``<``, ``>`` as entities) and fold line breaks;
  :func:`md_table` builds a whole table from escaped cells.
- HTML: :func:`html_text` escapes a value for element text or a quoted attribute;
  :func:`markdown_to_safe_html` renders Markdown with raw HTML off (markdown-it's ``html=False``).

Core layer: imports nothing from our own packages.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

# --- CSV -------------------------------------------------------------------------------------------

# OWASP: "Ensure that no cells begin with any of the following characters: = + - @ Tab CR".
CSV_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CSV_TEXT_PREFIX = "'"


def _csv_needs_prefix(text: str) -> bool:
    """True for a cell a spreadsheet could read as a formula, and for one that only looks escaped.

    A cell that is already ``'`` + a dangerous cell gets one more ``'``, which keeps
    :func:`csv_cell_original` an exact inverse (``"'=x"`` → ``"''=x"`` → ``"'=x"``).
    """
    if text.startswith(CSV_FORMULA_TRIGGERS):
        return True
    return text.startswith(CSV_TEXT_PREFIX) and _csv_needs_prefix(text[1:])


def csv_cell(value: object) -> object:
    """``value`` safe as a CSV cell: text that could start a formula gets a leading ``'``.

    Non-text values (numbers, None) pass through: the csv module writes them as plain literals,
    and a negative number is data, not a formula (spreadsheets parse ``-0.5`` as a number).
    """
    if isinstance(value, str) and _csv_needs_prefix(value):
        return CSV_TEXT_PREFIX + value
    return value


def csv_cell_original(cell: str) -> str:
    """The text :func:`csv_cell` was given, from the cell it wrote (for readers of our own CSVs)."""
    if cell.startswith(CSV_TEXT_PREFIX) and _csv_needs_prefix(cell[1:]):
        return cell[1:]
    return cell


def csv_row(values: Iterable[object]) -> list[object]:
    """Every cell of a row through :func:`csv_cell`."""
    return [csv_cell(value) for value in values]


def csv_frame(frame):
    """A copy of a pandas DataFrame with every cell through :func:`csv_cell` (for ``to_csv``)."""
    return frame.map(csv_cell)


def csv_frame_text(frame) -> str:
    """A pandas DataFrame as RFC 4180 CSV text, every cell through :func:`csv_cell`.

    ``\\r\\n`` line ends on purpose: the csv module quotes a field holding a character of the line
    terminator, so with pandas' default ``\\n`` a bare carriage return in a cell goes out unquoted
    and a reader splits the row there.
    """
    return csv_frame(frame).to_csv(index=False, lineterminator="\r\n")


def csv_frame_original(frame):
    """The inverse of :func:`csv_frame` on a frame read back as text (``dtype=str``)."""
    return frame.map(lambda cell: csv_cell_original(cell) if isinstance(cell, str) else cell)


# --- Markdown ----------------------------------------------------------------------------------------

_BACKTICK_RUN = re.compile(r"`+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n|\u2028|\u2029|\x0b|\x0c|\x85")
# Punctuation with an inline meaning (emphasis, code, links, images, strikethrough, escapes, cells).
# An underscore inside a word never opens emphasis (CommonMark §6.2), so "learning_rate" stays as is.
_MD_INLINE_SPECIAL = re.compile(r"([\\`*\[\]|~!]|(?<!\w)_|_(?!\w))")
# At the start of a line these open a block: heading, quote, bullet, setext underline / thematic break.
_MD_BLOCK_MARKER = re.compile(r"(#{1,6}|[+*-])(\s|$)|>|(=+|-+)\s*$")
_MD_ORDERED_MARKER = re.compile(r"(\d{1,9})([.)])(\s|$)")  # "1. " / "1) " open an ordered list


class MarkdownText(str):
    """Text that is already Markdown (made by the helpers below): table cells pass it through as is."""


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in _BACKTICK_RUN.findall(text)), default=0)


def md_fence(content: str, info: str = "") -> str:
    """A fenced code block holding ``content`` verbatim; no line of it can close the fence.

    The fence is backticks, one longer than the longest backtick run in ``content`` (at least 3).
    ``info`` (the language) must be a plain word: it is reduced to letters, digits, ``-`` and ``_``.
    """
    fence = "`" * max(3, _longest_backtick_run(content) + 1)
    language = re.sub(r"[^A-Za-z0-9_-]", "", info)
    body = content if content.endswith("\n") or not content else content + "\n"
    return f"{fence}{language}\n{body}{fence}\n"


def md_code_span(value: object, table_cell: bool = False) -> MarkdownText:
    """``value`` as inline code: delimiters longer than any backtick run inside, line breaks folded.

    ``table_cell``: ``|`` becomes ``\\|`` (GFM splits cells before it parses code spans, and turns
    ``\\|`` back into ``|`` inside them). Raw HTML cannot occur: code span content is literal.
    """
    flat = _LINE_BREAK.sub(" ", str(value))
    if table_cell:
        flat = flat.replace("|", "\\|")
    ticks = "`" * (_longest_backtick_run(flat) + 1)
    # CommonMark strips one space from each side when both are present, so padding is invisible.
    padded = f" {flat} " if flat.startswith(("`", " ")) or flat.endswith(("`", " ")) else flat
    return MarkdownText(f"{ticks}{padded}{ticks}")


def md_bold(value: object) -> MarkdownText:
    """``value`` as literal bold text."""
    return MarkdownText(f"**{md_inline(value)}**")


def md_inline(value: object, line_separator: str = " ") -> MarkdownText:
    """``value`` as literal Markdown text on one line (a paragraph, list item or heading).

    HTML specials become entities (so no tag, comment or entity survives), Markdown punctuation
    is backslash-escaped, a block marker at the start is escaped, and line breaks become
    ``line_separator`` (so the value cannot end the line and start a new block).
    """
    text = "" if value is None else str(value)
    text = html.escape(text, quote=False)
    text = _MD_INLINE_SPECIAL.sub(r"\\\1", text)
    text = _LINE_BREAK.sub(line_separator, text)
    return MarkdownText(_escape_block_start(text))


def _escape_block_start(text: str) -> str:
    """``text`` with a leading block marker backslash-escaped, so it stays paragraph text."""
    body = text.lstrip()
    indent = text[: len(text) - len(body)]
    ordered = _MD_ORDERED_MARKER.match(body)
    if ordered:
        return indent + ordered.group(1) + "\\" + body[len(ordered.group(1)) :]
    if _MD_BLOCK_MARKER.match(body):
        return indent + "\\" + body
    return text


def md_table_cell(value: object, line_separator: str = " / ") -> str:
    """``value`` as one GitHub-flavoured table cell: ``|`` escaped, HTML escaped, line breaks folded.

    Poem lines joined by " / " is how verse is quoted inline, hence the default separator. A
    :class:`MarkdownText` made by :func:`md_code_span` (``table_cell=True``), :func:`md_inline` or
    :func:`md_bold` is already escaped and passes through.
    """
    if isinstance(value, MarkdownText):
        if _LINE_BREAK.search(value):
            raise ValueError(f"a table cell cannot hold a line break: {value!r}")
        return value.strip() or " "
    return md_inline(value, line_separator=line_separator).strip() or " "


def md_table(
    header: Sequence[object], rows: Iterable[Sequence[object]], align: Sequence[str] | None = None
) -> str:
    """A GitHub-flavoured Markdown table whose every header and body cell is escaped (``align``: one
    ``"---"`` / ``"---:"`` per column; default left)."""
    lines = [
        "| " + " | ".join(md_table_cell(name) for name in header) + " |",
        "|" + "|".join(align or ["---" for _ in header]) + "|",
    ]
    for row in rows:
        cells = [md_table_cell(value) for value in row]
        if len(cells) != len(header):
            raise ValueError(f"row has {len(cells)} cells, the header {len(header)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def md_table_from_frame(frame, index: bool = False) -> str:
    """:func:`md_table` over a pandas DataFrame (replaces ``DataFrame.to_markdown``, which escapes nothing)."""
    table = frame.reset_index() if index else frame
    rows = (
        # "g": six significant digits, as DataFrame.to_markdown (tabulate) shows floats
        [format(value, "g") if isinstance(value, float) else value for value in row]
        for row in table.itertuples(index=False, name=None)
    )
    return md_table([str(column) for column in table.columns], rows)


# --- HTML --------------------------------------------------------------------------------------------


def html_text(value: object) -> str:
    """``value`` escaped for HTML element text or a double/single-quoted attribute value."""
    return html.escape("" if value is None else str(value), quote=True)


def markdown_to_safe_html(markdown: str, tables: bool = True) -> str:
    """Markdown rendered to HTML with raw HTML off: tags in the source come out as text.

    markdown-it's commonmark preset turns ``html`` on; we turn it off, which also makes it escape
    inline HTML, and its link validation already refuses ``javascript:``/``vbscript:``/``file:`` URLs.
    """
    from markdown_it import MarkdownIt  # a small pure-Python renderer, only needed by HTML writers

    renderer = MarkdownIt("commonmark", {"html": False})
    if tables:
        renderer = renderer.enable("table")
    return renderer.render(markdown)
