"""Cleaning rules: small pure functions, text in, text out (transforms) or text in, bool out (filters).

The transforms run in the order of :data:`TRANSFORMS`; each is idempotent and keeps the poem
layout of the contract (lines joined by ``\\n``, stanzas by ``\\n\\n``). Decisions worth knowing:

* Quotes are normalised to ASCII: curly single/double quotes and the backtick become ``'`` and
  ``"`` (fewer near-identical tokens for the tokenizer; poems lose nothing by it). Em dashes
  (``—``) are kept and the Gutenberg typewriter dash ``--`` becomes ``—``.
* Leading indentation is dropped (the sources indent inconsistently, and the models never see
  layout columns); line breaks and stanza breaks are kept exactly.
* :func:`is_forbidden_character` (categories :data:`FORBIDDEN_CATEGORIES` plus the invisible
  :data:`FORBIDDEN_INVISIBLE_RANGES`) and :data:`FORBIDDEN_PRINTABLE` are the one definition of
  "stray special characters": the removal rule deletes them from the text (titles and authors lose
  the invisible ones, :func:`clean_label`) and the ``cleansed_poems`` asset check asserts none
  survive (:func:`forbidden_characters`, the same patterns).

Everything here is pure Python + ftfy (and numpy for the batch helper), cheap to import.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Callable

import ftfy
import numpy as np

from genai_assets.package_data import project_data_lines

# --------------------------------------------------------------------------------------------
# Shared definitions
# --------------------------------------------------------------------------------------------

#: Printable characters that are markup or editorial debris in poems (footnote braces, emphasis
#: underscores/asterisks/equals signs, table rules, Middle-English abbreviation tildes ...).
FORBIDDEN_PRINTABLE: str = "@~{}[]<>\\|^`_*#=+$%"

#: Unicode general categories (as Python's ``unicodedata`` sees them) that never survive cleaning:
#: controls (Cc; the newline alone is kept), format characters (Cf: soft hyphen, zero-width space
#: and joiners, bidi marks, embeddings, overrides and isolates, the Arabic letter mark, word
#: joiner, BOM, the tag characters that can smuggle hidden text), private use (Co), surrogates
#: (Cs) and unassigned code points (Cn). Cleaning keeps what is *not* listed: letters, marks,
#: numbers, punctuation, symbols and spaces (an allow-list by category, so a character that
#: Unicode adds to Cf later is refused without anyone editing a list).
FORBIDDEN_CATEGORIES: frozenset[str] = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})

#: Invisible characters of other categories, refused too: variation selectors (Mn, U+FE00-FE0F
#: and U+E0100-E01EF), Mongolian free variation selectors (Mn), the combining grapheme joiner
#: (Mn), line/paragraph separators (Zl/Zp) and the replacement character left by broken decoding.
FORBIDDEN_INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x034F, 0x034F),
    (0x180B, 0x180D),
    (0x180F, 0x180F),
    (0x2028, 0x2029),
    (0xFE00, 0xFE0F),
    (0xFFFD, 0xFFFD),
    (0xE0100, 0xE01EF),
)

#: The ASCII part of the rule (what most texts hold): C0 controls but the newline, DEL, debris.
_ASCII_CONTROLS = "\x00-\x09\x0b-\x1f\x7f"
_ASCII_INVISIBLE = re.compile(f"[{_ASCII_CONTROLS}]")
_ASCII_FORBIDDEN = re.compile(f"[{re.escape(FORBIDDEN_PRINTABLE)}{_ASCII_CONTROLS}]")


def is_forbidden_character(char: str) -> bool:
    """Whether cleaning removes ``char`` wherever it appears (text, title and author)."""
    if char == "\n":
        return False
    code = ord(char)
    return unicodedata.category(char) in FORBIDDEN_CATEGORIES or any(
        low <= code <= high for low, high in FORBIDDEN_INVISIBLE_RANGES
    )


@functools.cache
def _forbidden_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """``(invisible, invisible + printable debris)`` patterns for any text, built on first use.

    A character class of every forbidden Basic Multilingual Plane character (from ``unicodedata``,
    ~0.1 s once), plus *all* astral characters as candidates that :func:`_drop_match` checks one
    by one: with astral ranges in the class ``re`` scans ~700 ranges per character (100x slower).
    """
    ranges: list[list[int]] = []
    for code in range(0x10000):
        if is_forbidden_character(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    bmp = "".join(f"\\u{low:04x}" + (f"-\\u{high:04x}" if high > low else "") for low, high in ranges)
    invisible = f"{bmp}\\U00010000-\\U0010ffff"
    return re.compile(f"[{invisible}]"), re.compile(f"[{re.escape(FORBIDDEN_PRINTABLE)}{invisible}]")


def _drop_match(match: re.Match[str]) -> str:
    """Replacement of one forbidden match: nothing, a space for a control space (tab, NEL, U+2028)
    so words are not glued together, or the character itself for an allowed astral one."""
    char = match.group()
    if char >= "\U00010000" and not is_forbidden_character(char):
        return char
    return " " if char.isspace() else ""


def forbidden_characters(text: str, printable_debris: bool = True) -> list[str]:
    """The characters of ``text`` that cleaning removes (with ``printable_debris``: the
    :data:`FORBIDDEN_PRINTABLE` ones too), in order of appearance, repeats included."""
    if text.isascii():
        pattern = _ASCII_FORBIDDEN if printable_debris else _ASCII_INVISIBLE
    else:
        pattern = _forbidden_patterns()[1 if printable_debris else 0]
    found = pattern.findall(text)
    return [char for char in found if char < "\U00010000" or is_forbidden_character(char)]


#: A dictionary word: ASCII letters with inner apostrophes ("o'er", "rose's"), as CMUdict and the
#: stopword list spell words; digits and other scripts are not words. The unit of dedup keys and
#: shingles, stopword ratios, the EDA's counts and rhyme lookups. Deliberately NOT the metrics' rule
#: (``evaluation.metrics.metric_words`` keeps digits and every script so generated text is never
#: scored as empty): changing this one would change which poems count as duplicates.
DICTIONARY_WORD_PATTERN: re.Pattern[str] = re.compile(r"[a-z]+(?:'[a-z]+)*")

#: English function words, including the archaic forms that fill public-domain poetry (thee,
#: thou, hath ...). Used by the language heuristic and by the EDA's "top words without stopwords".
#: The list is data: ``genai_assets/data/stopwords.txt``.
STOPWORDS: frozenset[str] = frozenset(
    word for line in project_data_lines("stopwords.txt") for word in line.split()
)


def dictionary_words(text: str) -> list[str]:
    """Lower-cased dictionary words of ``text`` (see :data:`DICTIONARY_WORD_PATTERN`)."""
    return DICTIONARY_WORD_PATTERN.findall(text.lower())


_NONBLANK_LINE = re.compile(r"^[^\S\n]*\S", re.MULTILINE)


def count_lines(text: str) -> int:
    """Non-blank lines (stanza breaks are not lines)."""
    return len(_NONBLANK_LINE.findall(text))


def count_words(text: str) -> int:
    """Whitespace-separated tokens (what a reader would count as words, punctuation attached)."""
    return len(text.split())


# --------------------------------------------------------------------------------------------
# Transforms (str -> str), in pipeline order
# --------------------------------------------------------------------------------------------


def repair_unicode(text: str) -> str:
    """Fix mojibake with ftfy and apply NFKC; normalise line endings to ``\\n``.

    ``donâ€™t`` → ``don’t``, ``\\x92`` (a cp1252 quote inside Unicode) → ``’``, ``ﬁ`` → ``fi``,
    full-width letters → ASCII, ``\\r\\n``/``\\r``/U+2028 → ``\\n``. HTML entities are left to
    :func:`strip_markup` and quotes to :func:`normalize_punctuation`, so each rule has one job.
    ASCII-only text cannot be mojibake and is NFKC-stable, so it skips ftfy (the common case);
    so does printable ASCII with em dashes, which :func:`normalize_punctuation` makes of ``--``
    (an em dash is a UTF-8 continuation byte in cp1252 and starts no mojibake without a non-ASCII
    lead character; ftfy leaves such text alone: tested).
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() or (
        "\u2014" in text and text.replace("\u2014", "").isascii() and not _ASCII_INVISIBLE.search(text)
    ):
        return text
    return _fix_text_by_line(text)


_FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False, uncurl_quotes=False, normalization="NFKC", explain=False
)


def _fix_text_by_line(text: str) -> str:
    """``ftfy.fix_text(text, _FTFY_CONFIG)``, skipping the lines ftfy provably leaves alone.

    ftfy fixes each line (with its ``\n``) on its own; on printable ASCII every one of its steps
    is the identity (no mojibake without a non-ASCII character, no C1 controls, ligatures, wide
    characters, odd line breaks or surrogates, no ESC for terminal escapes, no control character,
    NFKC-stable). Most lines of a non-ASCII poem are such lines, and ftfy's per-line overhead was
    the largest cost of cleansing (equal on the whole Gutenberg corpus and by hypothesis: tested).
    """
    if len(text) > _FTFY_CONFIG.max_decode_length:
        return ftfy.fix_text(text, _FTFY_CONFIG)  # ftfy would cut lines this long into pieces
    segments = [line + "\n" for line in text.split("\n")]  # ftfy's segments: each line with its \n
    segments[-1] = segments[-1][:-1]
    return "".join(
        segment if segment.isascii() and not _ASCII_INVISIBLE.search(segment) else _fix_line(segment)
        for segment in segments
    )


@functools.lru_cache(maxsize=1 << 16)
def _fix_line(segment: str) -> str:
    """ftfy on one line, as ``fix_text`` does it; cached because ``settle`` re-runs the rules on
    every text a rule changed, and most of its non-ASCII lines come back unchanged."""
    return ftfy.fix_and_explain(segment, _FTFY_CONFIG).text


_QUOTE_TABLE = str.maketrans(
    {
        "\u2018": "'",  # ‘
        "\u2019": "'",  # ’
        "\u201a": "'",  # ‚
        "\u201b": "'",  # ‛
        "\u2032": "'",  # ′ (prime, used as apostrophe)
        "`": "'",  # Gutenberg's opening quote
        "\u201c": '"',  # “
        "\u201d": '"',  # ”
        "\u201e": '"',  # „
        "\u201f": '"',  # ‟
        "\u00ab": '"',  # «
        "\u00bb": '"',  # »
        "\u2013": "-",  # – en dash between numbers/words
    }
)
_QUOTE_REPLACEMENTS = tuple((chr(code), replacement) for code, replacement in _QUOTE_TABLE.items())
_DOUBLE_HYPHEN = re.compile(r"(?<!-)-{2,3}(?!-)")


def normalize_punctuation(text: str) -> str:
    """Curly quotes, guillemets and backticks → ASCII quotes; ``--`` → ``—``; en dash → ``-``.

    ``‘Go we,’ sayde`` → ``'Go we,' sayde``; ``solus--After`` → ``solus—After``.
    Em dashes, apostrophes and all other punctuation are untouched.
    """
    if text.isascii():  # fast path: of the table only the backtick is ASCII
        if "`" in text:
            text = text.replace("`", "'")
    else:
        # One fast scan per character of the table; str.translate with a dict table costs a Python
        # dict lookup per character of the text (the slowest rule on em-dash text, in settle).
        for char, replacement in _QUOTE_REPLACEMENTS:
            if char in text:
                text = text.replace(char, replacement)
    return _DOUBLE_HYPHEN.sub("\u2014", text) if "--" in text else text


_BREAK_TAG = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
_PARAGRAPH_TAG = re.compile(r"<\s*/?\s*p(?:\s[^<>]*)?>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<\s*/?\s*[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?\s*>")
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")
#: Editorial notes in square brackets: [Footnote 3: ...], [Illustration], [Pg 12], [Sidenote: ...].
_EDITORIAL_NOTE = re.compile(
    r"\[\s*(?:footnote|note|illustration|pg|page|sidenote|transcriber'?s? note)\b[^\]\n]*\]", re.IGNORECASE
)
#: Numeric footnote/line references: [3], {52}, <41.2>, *8*, (103) — at most three digits in
#: round brackets so years such as (1839) survive.
_NUMERIC_REFERENCE = re.compile(r"[\[{<]\s*\d+(?:\.\d+)*\s*[\]}>]|\*\d+\*|\(\d{1,3}\)")
_MARKUP_TRIGGER = re.compile(r"[<&\[{(*]")


def strip_markup(text: str) -> str:
    """Remove HTML and editorial debris: ``<br>`` → line break, ``<p>`` → stanza break, other
    tags dropped (their text kept), entities decoded (``&nbsp;`` → space, ``&amp;`` → ``&``),
    ``[Footnote 3: ...]``/``[Illustration]``/``[Pg 12]`` and numeric references (``{8}``,
    ``<52>``, ``[3]``, ``*8*``, ``(103)``) removed.
    """
    if not _MARKUP_TRIGGER.search(text):
        return text
    text = _BREAK_TAG.sub("\n", text)
    text = _PARAGRAPH_TAG.sub("\n\n", text)
    text = _ANY_TAG.sub("", text)
    text = _ENTITY.sub(lambda match: html.unescape(match.group()), text)
    text = _EDITORIAL_NOTE.sub("", text)
    return _NUMERIC_REFERENCE.sub("", text)


def remove_forbidden_characters(text: str) -> str:
    """Delete every forbidden character (:data:`FORBIDDEN_PRINTABLE` debris and everything
    :func:`is_forbidden_character` refuses); tabs and other control spaces become a space so
    words are not glued together.

    ``_Justitiæ columna sis_,`` → ``Justitiæ columna sis,``; ``þ{o}u`` → ``þou``;
    ``a\u202eb\U000e0041`` (a bidi override and a tag letter) → ``ab``.
    """
    if text.isascii():
        return _ASCII_FORBIDDEN.sub(_drop_match, text)
    return _forbidden_patterns()[1].sub(_drop_match, text)


def clean_label(value: str | None) -> str | None:
    """A title or author without invisible characters (the same rule as for text, minus the
    printable debris: ``[Untitled]`` keeps its brackets); blank → None.

    ``"Ozymandias\u200f"`` → ``"Ozymandias"``; ``"\u2066 \u2069"`` → None.
    """
    if not isinstance(value, str):
        return value
    pattern = _ASCII_INVISIBLE if value.isascii() else _forbidden_patterns()[0]
    cleaned = pattern.sub(_drop_match, value).strip()
    return cleaned or None


_HAS_LETTER = re.compile(r"[^\W\d_]")
#: A non-blank line without a letter: optional spaces, one non-space non-letter, then non-letters.
_LETTERLESS_LINE = re.compile(r"^[^\S\n]*(?:[^\w\s]|[\d_])(?:[^\w\n]|[\d_])*$", re.MULTILINE)


def drop_letterless_lines(text: str) -> str:
    """Delete non-blank lines without a single letter: page numbers (``123``), separators
    (``* * *`` after debris removal, ``. . . .``), table rules. Blank lines (stanza breaks) stay.
    """
    if not _LETTERLESS_LINE.search(text):
        return text  # fast path: one scan finds no such line (the common case)
    lines = text.split("\n")
    kept = [line for line in lines if not line.strip() or _HAS_LETTER.search(line)]
    return text if len(kept) == len(lines) else "\n".join(kept)


#: Runs of 2+ horizontal spaces, or any horizontal whitespace that is not a plain space.
_INNER_SPACES = re.compile(r"[^\S\n]{2,}|[^\S \n]")
#: One whitespace character that is neither a space nor a newline (``re``'s ``\s`` is
#: ``str.isspace``, and no whitespace lies above U+3000): with ``"  " in text``, a cheap test of
#: whether :data:`_INNER_SPACES` can match (a single character class scans fast; the alternation not).
_ODD_SPACE = re.compile(
    "["
    + "".join(
        re.escape(chr(code)) for code in range(0x3001) if chr(code).isspace() and chr(code) not in " \n"
    )
    + "]"
)
_EDGE_SPACES = re.compile(r"^ | $", re.MULTILINE)
_EXTRA_BLANK_LINES = re.compile(r"\n{3,}")


def repair_whitespace(text: str) -> str:
    """Tabs, no-break and other Unicode spaces → one space; no leading/trailing spaces on a line;
    two or more blank lines → one stanza break; no blank lines at the start or end.
    """
    if "  " in text or _ODD_SPACE.search(text):
        text = _INNER_SPACES.sub(" ", text)
    if " \n" in text or "\n " in text:  # the multi-line regex only when a line edge has a space
        text = _EDGE_SPACES.sub("", text)
    if "\n\n\n" in text:
        text = _EXTRA_BLANK_LINES.sub("\n\n", text)
    return text.strip(" \n")


_RULES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("repair_unicode", repair_unicode),
    ("normalize_punctuation", normalize_punctuation),
    ("strip_markup", strip_markup),
    ("remove_forbidden_characters", remove_forbidden_characters),
    ("drop_letterless_lines", drop_letterless_lines),
    ("repair_whitespace", repair_whitespace),
)


def settle(text: str) -> str:
    """Re-run the six rules until nothing changes (at most 4 more passes).

    One rule's deletion can expose work for an earlier one: removing the control character from
    ``(\x1b0)`` leaves the numeric reference ``(0)``; removing ``\x0c`` from ``Â\x0c`` leaves
    mojibake that ftfy then repairs. Without this step cleaning was not idempotent (found by the
    hypothesis tests in ``test_fuzz_parsing.py``). On settled text it is one cheap pass (the
    rules' fast paths).
    """
    for _ in range(4):
        again = text
        for _, transform in _RULES:
            again = transform(again)
        if again == text:
            break
        text = again
    return text


#: The transforms in pipeline order, by the name used in metadata and docs.
TRANSFORMS: tuple[tuple[str, Callable[[str], str]], ...] = (*_RULES, ("settle", settle))


def clean_text(text: str) -> str:
    """All :data:`TRANSFORMS` in order."""
    for _, transform in TRANSFORMS:
        text = transform(text)
    return text


# --------------------------------------------------------------------------------------------
# Filters (str -> bool): True means "drop this poem"
# --------------------------------------------------------------------------------------------


def contains_forbidden(text: str) -> bool:
    """Whether any character cleaning removes is present (the asset check's test)."""
    return bool(forbidden_characters(text))


def contains_invisible(label: str) -> bool:
    """Whether a title or author holds a character :func:`clean_label` removes."""
    return bool(forbidden_characters(label, printable_debris=False))


def is_empty(text: str) -> bool:
    return not text.strip()


def is_too_short(n_lines, n_words, min_lines: int, min_words: int):
    """Fewer lines or words than the minimums (works on ints and on numpy arrays of counts)."""
    return (n_lines < min_lines) | (n_words < min_words)


def is_too_long(n_lines, n_words, max_lines: int, max_words: int):
    """More lines or words than the maximums (works on ints and on numpy arrays of counts)."""
    return (n_lines > max_lines) | (n_words > max_words)


_ASCII_RUN = re.compile(r"[\x00-\x7f]+")
_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def ascii_letter_ratio(text: str) -> float:
    """Share of letters that are ASCII a-z/A-Z (1.0 for text without letters)."""
    if text.isascii():
        return 1.0
    ascii_bytes = text.encode("ascii", "ignore")
    ascii_letters = len(ascii_bytes) - len(ascii_bytes.translate(None, _ASCII_LETTERS))
    # Only the few non-ASCII characters are inspected one by one (the ASCII runs go in one scan).
    other_letters = sum(map(str.isalpha, _ASCII_RUN.sub("", text)))
    total = ascii_letters + other_letters
    return ascii_letters / total if total else 1.0


def stopword_ratio(text: str) -> float:
    """Share of :func:`dictionary_words` that are English stopwords (0.0 for text without words)."""
    tokens = dictionary_words(text)
    if not tokens:
        return 0.0
    return sum(map(STOPWORDS.__contains__, tokens)) / len(tokens)


def stopword_shares(vocabulary: list[str], word_ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """:func:`stopword_ratio` of many texts at once, from their words as ids into ``vocabulary``
    (text ``i`` holds the next ``lengths[i]`` ids): the same float64 division, so equal values."""
    is_stopword = np.fromiter(map(STOPWORDS.__contains__, vocabulary), dtype=bool, count=len(vocabulary))
    # Running count of stopwords (one int32 per word: the corpus' 23M words cost 92 MB, not 500).
    running = np.zeros(len(word_ids) + 1, dtype=np.int32)
    np.cumsum(is_stopword[word_ids], dtype=np.int32, out=running[1:])
    ends = np.cumsum(lengths)
    stopwords = running[ends] - running[ends - lengths]
    shares = np.zeros(len(lengths), dtype=np.float64)
    np.divide(stopwords, lengths, out=shares, where=lengths > 0)
    return shares


def looks_non_english(
    text: str, min_ascii_letter_ratio: float, min_stopword_ratio: float, stopword_share: float | None = None
) -> bool:
    """Cheap language guess: too many non-ASCII letters (Greek, Middle-English thorns and yoghs)
    or too few English function words (Latin, Spanish, French) → not English.

    ``stopword_share``: the text's :func:`stopword_ratio`, when the caller computed it already.
    """
    if ascii_letter_ratio(text) < min_ascii_letter_ratio:
        return True
    share = stopword_ratio(text) if stopword_share is None else stopword_share
    return share < min_stopword_ratio
