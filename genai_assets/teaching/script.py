"""The narration script: parsed from Markdown, its code references resolved against the live source.

Format of ``narration.md`` (HTML comments are ignored)::

    # Title of the walkthrough

    ## Section title
    @code genai_assets/models/layers.py::MultiHeadAttention.forward | self._split_heads(query)
    Spoken paragraph(s) while that code is on screen ...

    @plot scratch_transformer reports/scratch_transformer_loss.png
    Spoken paragraph(s) while the plot (written by that asset, path relative to the lake) is shown.

Every ``@`` line starts a *segment*: one slide. ``@code`` names a symbol as
``<file relative to the repository>::<qualified name>`` (``Class.method``, ``function``); the text
after ``|`` are *focus* snippets: the code lines containing them are highlighted while the segment
is spoken. A symbol or focus snippet that is not in the current source is *stale*: resolution
fails and names it, so the narration can never point at code that moved or vanished.

Inside the spoken text:

* ``[[snippet]]`` (one or more, anywhere in a sentence) names the code lines *that sentence*
  speaks about: the page outlines them while the sentence is spoken (sentences without one
  outline the ``@code`` line's snippets). They are added to the slide's highlighted lines, and
  every highlighted line of a slide must fit on it (:data:`SLIDE_CODE_LINES`): a long function is
  narrated over several ``@code`` slides of the same symbol.
* ``{fact}`` is replaced by a fact read from the source (:mod:`genai_assets.teaching.facts`), so
  counts and defaults the narration states cannot drift from the code.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from genai_assets.config_checks import Ge, raise_problems, range_problems

NARRATION_PATH = Path(__file__).with_name("narration.md")  # part one: the code walkthrough
PART_TWO_PATH = Path(__file__).with_name("narration_part2.md")  # part two: the ideas behind it
# Code lines one slide shows (1280×720 at 15 px): every highlighted line of a slide must fit.
SLIDE_CODE_LINES = 34
# The repository root: the folder holding the ``genai_assets`` package.
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ScriptConfig:
    """Which narration to read and which source tree its symbols are resolved against."""

    narration_path: Annotated[str, 'a narration Markdown file; "" = the bundled teaching/narration.md'] = ""
    source_root: Annotated[str, 'folder holding genai_assets/; "" = the code that is running'] = ""
    min_words: Annotated[int, Ge(1), "fewer spoken words than this is refused as an empty script"] = 50
    part_two: Annotated[bool, "also render the second part (false: part one only, e.g. a quicker demo)"] = (
        True
    )
    part_two_path: Annotated[str, 'part two\'s narration; "" = the bundled teaching/narration_part2.md'] = ""

    def __post_init__(self) -> None:
        raise_problems(self, range_problems(self))

    def narration_file(self) -> Path:
        return Path(self.narration_path).expanduser() if self.narration_path else NARRATION_PATH

    def narration_files(self) -> list[Path]:
        """The narration of each part, in order (part one first)."""
        if not self.part_two:
            return [self.narration_file()]
        two = Path(self.part_two_path).expanduser() if self.part_two_path else PART_TWO_PATH
        return [self.narration_file(), two]

    def root(self) -> Path:
        return Path(self.source_root).expanduser() if self.source_root else REPO_ROOT


class NarrationFormatError(ValueError):
    """The narration file is malformed (empty section, text before any ``@`` line, bad ``@`` line)."""


class StaleReferenceError(LookupError):
    """The narration points at a symbol, file or code line that does not exist in the source."""


@dataclass(frozen=True)
class CodeRef:
    """``path::qualname`` plus the focus snippets whose lines are highlighted."""

    path: str  # relative to the repository root, POSIX separators
    qualname: str  # "Class.method" or "function"
    focus: tuple[str, ...] = ()

    @property
    def symbol(self) -> str:
        return f"{self.path}::{self.qualname}"


@dataclass(frozen=True)
class PlotRef:
    """A PNG in the lake written by ``asset`` (the asset to materialize when it is missing)."""

    asset: str
    path: str  # relative to the lake root


@dataclass
class Segment:
    """One slide: what is shown, and the sentences spoken while it is shown."""

    target: CodeRef | PlotRef
    sentences: list[str]
    # Per sentence, the snippets it names with [[...]] (empty: the @code line's snippets).
    sentence_focus: list[tuple[str, ...]] = field(default_factory=list)

    def all_focus(self) -> tuple[str, ...]:
        """The @code snippets, then every sentence's, without repeats: the slide's highlighted lines."""
        own = self.target.focus if isinstance(self.target, CodeRef) else ()
        return tuple(dict.fromkeys([*own, *(s for focus in self.sentence_focus for s in focus)]))


@dataclass
class Section:
    title: str
    segments: list[Segment]

    @property
    def words(self) -> int:
        return sum(count_words(s) for segment in self.segments for s in segment.sentences)


@dataclass
class Script:
    title: str
    sections: list[Section]

    stale_facts: list[str] = field(default_factory=list)  # facts the source could not give

    @property
    def words(self) -> int:
        return sum(section.words for section in self.sections)

    def code_refs(self) -> list[CodeRef]:
        """Each code slide's symbol with all its highlighted snippets (the @code ones and the [[...]] ones)."""
        return [
            CodeRef(seg.target.path, seg.target.qualname, seg.all_focus())
            for sec in self.sections
            for seg in sec.segments
            if isinstance(seg.target, CodeRef)
        ]

    def plot_refs(self) -> list[PlotRef]:
        return [
            seg.target for sec in self.sections for seg in sec.segments if isinstance(seg.target, PlotRef)
        ]


@dataclass(frozen=True)
class ResolvedCode:
    """A symbol's current source: the file's lines ``start``..``end`` (1-based, inclusive)."""

    ref: CodeRef
    start: int
    end: int
    source: str  # the symbol's lines (decorators included), dedented as in the file
    focus_lines: tuple[int, ...] = field(default=())  # absolute line numbers of the focus snippets

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:12]


def count_words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9][A-Za-z0-9'’.-]*", text))


# A sentence ends at . ! or ? followed by a space and a capital letter, digit or quote; abbreviations
# common in the narration ("e.g.", "i.e.") are protected so they do not cut a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(\[])")
_FOCUS_MARK = re.compile(r"\[\[(.+?)\]\](?!\])")  # "]]]": the snippet itself ends in "]"
_FACT = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_ABBREVIATIONS = ("e.g.", "i.e.", "vs.", "etc.")


def split_sentences(paragraph: str) -> list[str]:
    """One paragraph (whitespace collapsed) → its sentences, in order."""
    text = " ".join(paragraph.split())
    if not text:
        return []
    protected = text
    for index, abbreviation in enumerate(_ABBREVIATIONS):
        protected = protected.replace(abbreviation, f"\x00{index}\x00")
    sentences = []
    for piece in _SENTENCE_END.split(protected):
        for index, abbreviation in enumerate(_ABBREVIATIONS):
            piece = piece.replace(f"\x00{index}\x00", abbreviation)
        if piece.strip():
            sentences.append(piece.strip())
    return sentences


def _parse_target(line: str, where: str) -> CodeRef | PlotRef:
    kind, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    if kind == "code":
        symbol, *focus = [part.strip() for part in rest.split("|")]
        path, separator, qualname = symbol.partition("::")
        if not separator or not path.endswith(".py") or not qualname:
            raise NarrationFormatError(
                f"{where}: '@code {rest}' must name a symbol as <file.py>::<Class.method or function>."
            )
        if any(not snippet for snippet in focus):
            raise NarrationFormatError(f"{where}: empty focus snippet in '@code {rest}'.")
        return CodeRef(path, qualname, tuple(focus))
    if kind == "plot":
        parts = rest.split()
        if len(parts) != 2 or not parts[1].endswith(".png"):
            raise NarrationFormatError(
                f"{where}: '@plot {rest}' must be '@plot <asset that writes it> <lake-relative .png path>'."
            )
        return PlotRef(parts[0], parts[1])
    raise NarrationFormatError(f"{where}: unknown directive '@{kind}' (use @code or @plot).")


def _fill_facts(
    line: str, where: str, facts: dict[str, str], problems: dict[str, str], stale: list[str]
) -> str:
    """``{fact}`` → its value; an unknown name is a format error, one the source lacks is stale."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name in facts:
            return facts[name]
        if name in problems:
            stale.append(f"{where}: {problems[name]}")
            return name.replace("_", " ")
        raise NarrationFormatError(
            f"{where}: unknown fact {{{name}}} (known: {', '.join(sorted([*facts, *problems]))})."
        )

    return _FACT.sub(value, line)


def _split_focus(sentence: str) -> tuple[str, tuple[str, ...]]:
    """A sentence without its ``[[snippet]]`` marks, and those snippets in order."""
    focus = tuple(snippet.strip() for snippet in _FOCUS_MARK.findall(sentence))
    return " ".join(_FOCUS_MARK.sub(" ", sentence).split()), focus


def _add_paragraph(sections: list[Section], paragraph: list[str], where: str) -> None:
    """Append the paragraph's sentences (and their ``[[...]]`` focus) to the last slide of ``sections``."""
    if not paragraph:
        return
    if not sections or not sections[-1].segments:
        raise NarrationFormatError(
            f"{where}: narration text before any '@code' or '@plot' line "
            f"(every paragraph is spoken over a slide)."
        )
    segment = sections[-1].segments[-1]
    for sentence in split_sentences(" ".join(paragraph)):
        spoken, focus = _split_focus(sentence)
        if focus and not isinstance(segment.target, CodeRef):
            raise NarrationFormatError(f"{where}: [[...]] marks need a @code slide.")
        if any(not snippet for snippet in focus):
            raise NarrationFormatError(f"{where}: empty [[ ]] mark.")
        segment.sentences.append(spoken)
        segment.sentence_focus.append(focus)


def parse_script(
    text: str,
    source_name: str = "narration.md",
    facts: dict[str, str] | None = None,
    fact_problems: dict[str, str] | None = None,
) -> Script:
    """Parse the narration Markdown (format in the module docstring); raise on any malformed part.

    ``facts``/``fact_problems``: from :func:`~genai_assets.teaching.facts.narration_facts`; read from
    the running code when not given and the text uses one.
    """
    text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.DOTALL)
    if facts is None and _FACT.search(text):
        from genai_assets.teaching.facts import narration_facts

        facts, fact_problems = narration_facts(REPO_ROOT)
    facts, fact_problems = facts or {}, fact_problems or {}
    title = ""
    sections: list[Section] = []
    paragraph: list[str] = []
    stale_facts: list[str] = []

    def flush_paragraph(line_number: int) -> None:
        _add_paragraph(sections, paragraph, f"{source_name}:{line_number}")
        paragraph.clear()

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{source_name}:{number}"
        if line.startswith("## "):
            flush_paragraph(number)
            sections.append(Section(line[3:].strip(), []))
        elif line.startswith("# "):
            flush_paragraph(number)
            title = line[2:].strip()
        elif line.startswith("@"):
            flush_paragraph(number)
            if not sections:
                raise NarrationFormatError(f"{where}: '{line}' comes before the first '## ' section.")
            sections[-1].segments.append(Segment(_parse_target(line, where), []))
        elif line:
            paragraph.append(_fill_facts(line, where, facts, fact_problems, stale_facts))
        else:
            flush_paragraph(number)
    flush_paragraph(len(text.splitlines()))
    _check_sections(sections, source_name)
    return Script(title or "Code walkthrough", sections, stale_facts)


def _check_sections(sections: list[Section], source_name: str) -> None:
    """Refuse a script without sections, or with a section or slide that has nothing to say."""
    if not sections:
        raise NarrationFormatError(f"{source_name}: no '## ' sections found.")
    for section in sections:
        if not section.segments:
            raise NarrationFormatError(f"{source_name}: section '{section.title}' is empty (no @ lines).")
        for segment in section.segments:
            if not segment.sentences:
                raise NarrationFormatError(
                    f"{source_name}: section '{section.title}' has a slide with nothing spoken over it "
                    f"({segment.target})."
                )


def load_script(path: str | Path = NARRATION_PATH, root: str | Path | None = None) -> Script:
    """Parse ``path``; its ``{fact}`` values are read from the source under ``root`` (default: this code)."""
    from genai_assets.teaching.facts import narration_facts

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Narration script {path} does not exist.")
    facts, problems = narration_facts(root or REPO_ROOT)
    return parse_script(path.read_text(encoding="utf-8"), path.name, facts, problems)


def _symbol_nodes(tree: ast.Module) -> dict[str, ast.AST]:
    """Every class/function in a module by qualified name (``Outer.inner``; nested defs included)."""
    found: dict[str, ast.AST] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                found.setdefault(name, child)
                visit(child, name + ".")

    visit(tree, "")
    return found


def resolve_code(ref: CodeRef, root: str | Path = REPO_ROOT) -> ResolvedCode:
    """The current lines of ``ref`` under ``root``; :class:`StaleReferenceError` naming it if gone."""
    file = Path(root) / ref.path
    if not file.is_file():
        raise StaleReferenceError(f"Narration symbol {ref.symbol}: file {ref.path} does not exist.")
    text = file.read_text(encoding="utf-8")
    try:
        tree = ast.parse(text, filename=str(file))
    except SyntaxError as error:
        raise StaleReferenceError(
            f"Narration symbol {ref.symbol}: {ref.path} does not parse ({error})."
        ) from error
    node = _symbol_nodes(tree).get(ref.qualname)
    if node is None:
        raise StaleReferenceError(
            f"Narration symbol {ref.symbol} no longer exists: no class or function "
            f"'{ref.qualname}' in {ref.path}. Update genai_assets/teaching/narration.md."
        )
    decorators = [decorator.lineno for decorator in getattr(node, "decorator_list", [])]
    start, end = min([node.lineno, *decorators]), node.end_lineno or node.lineno
    lines = text.splitlines()[start - 1 : end]
    focus_lines = sorted({snippet_line(ref, lines, start, snippet) for snippet in ref.focus})
    if focus_lines and focus_lines[-1] - focus_lines[0] + 1 > SLIDE_CODE_LINES:
        raise StaleReferenceError(
            f"Narration symbol {ref.symbol}: its highlighted lines {focus_lines[0]}–{focus_lines[-1]} span "
            f"more than the {SLIDE_CODE_LINES} lines a slide shows: narrate it over several '@code' slides "
            f"of the same symbol in genai_assets/teaching/narration.md."
        )
    return ResolvedCode(ref, start, end, "\n".join(lines), tuple(focus_lines))


def snippet_line(ref: CodeRef, lines: list[str], start: int, snippet: str) -> int:
    """File line number of the first of ``lines`` (which start at file line ``start``) holding ``snippet``."""
    for offset, line in enumerate(lines):
        if snippet in line:
            return start + offset
    raise StaleReferenceError(
        f"Narration symbol {ref.symbol}: focus line containing {snippet!r} is no longer in it. "
        f"Update genai_assets/teaching/narration.md."
    )


def resolve_all(script: Script, root: str | Path = REPO_ROOT) -> tuple[dict[str, ResolvedCode], list[str]]:
    """Resolve every code reference: ``({symbol: ResolvedCode}, [problems])`` (stale ones listed)."""
    resolved: dict[str, ResolvedCode] = {}
    problems: list[str] = []
    for ref in script.code_refs():
        key = ref_key(ref)
        if key in resolved:
            continue
        try:
            resolved[key] = resolve_code(ref, root)
        except StaleReferenceError as error:
            problems.append(str(error))
    return resolved, problems


def ref_key(ref: CodeRef) -> str:
    return f"{ref.symbol}|{'|'.join(ref.focus)}"


def script_manifest(script: Script, root: str | Path = REPO_ROOT) -> dict:
    """The script with every code reference resolved, JSON-ready.

    A stale reference does not raise here: its target becomes ``{"kind": "stale", "problem": ...}``
    and ``stale`` lists the problems (stale facts too), so the blocking asset check reports them all.
    Code targets carry ``focus_lines`` (every highlighted line of the slide) and each segment
    ``sentence_focus_lines`` (per sentence, the lines it names; the @code snippets' when none).
    """
    resolved, problems = resolve_all(script, root)
    sections = []
    for section in script.sections:
        segments = []
        for segment in section.segments:
            target = segment.target
            sentence_lines: list[list[int]] = [[] for _ in segment.sentences]
            if isinstance(target, CodeRef):
                ref = CodeRef(target.path, target.qualname, segment.all_focus())
                code = resolved.get(ref_key(ref))
                if code is None:
                    shown = {"kind": "stale", "symbol": target.symbol, "focus": list(ref.focus)}
                else:
                    shown = _code_target(ref, code)
                    sentence_lines = _sentence_lines(segment, code)
            else:
                shown = {"kind": "plot", "asset": target.asset, "path": target.path}
            segments.append(
                {
                    "target": shown,
                    "sentences": list(segment.sentences),
                    "sentence_focus_lines": sentence_lines,
                }
            )
        sections.append({"title": section.title, "words": section.words, "segments": segments})
    return {
        "title": script.title,
        "words": script.words,
        "source_root": str(root),
        "stale": problems + list(script.stale_facts),
        "sections": sections,
    }


def _code_target(ref: CodeRef, code: ResolvedCode) -> dict:
    return {
        "kind": "code",
        "symbol": ref.symbol,
        "path": ref.path,
        "qualname": ref.qualname,
        "start": code.start,
        "end": code.end,
        "focus_lines": list(code.focus_lines),
        "source": code.source,
        "digest": code.digest,
    }


def _sentence_lines(segment: Segment, code: ResolvedCode) -> list[list[int]]:
    lines = code.source.splitlines()
    default = segment.target.focus if isinstance(segment.target, CodeRef) else ()
    return [
        sorted({snippet_line(code.ref, lines, code.start, snippet) for snippet in (focus or default)})
        for focus in segment.sentence_focus
    ]
