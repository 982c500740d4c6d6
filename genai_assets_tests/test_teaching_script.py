"""The narration script: parsing, clear errors, and symbol resolution against the live source."""

import shutil
from pathlib import Path

import pytest

from genai_assets.teaching.script import (
    REPO_ROOT,
    CodeRef,
    NarrationFormatError,
    PlotRef,
    StaleReferenceError,
    load_script,
    parse_script,
    resolve_all,
    resolve_code,
    script_manifest,
    split_sentences,
)

SMALL = """# Tiny walkthrough
<!-- comments are ignored -->
## Sampling
@code genai_assets/models/sampling.py::filter_top_k | torch.topk
Top k keeps the k best tokens. Everything else gets minus infinity, e.g. a zero probability.

@plot evaluation reports/plot.png
This chart compares the models.

## Attention
@code genai_assets/models/layers.py::MultiHeadAttention.forward
Many heads look at once!
"""


def test_parse_sections_segments_and_sentences():
    script = parse_script(SMALL)
    assert script.title == "Tiny walkthrough"
    assert [s.title for s in script.sections] == ["Sampling", "Attention"]
    first, plot = script.sections[0].segments
    assert first.target == CodeRef("genai_assets/models/sampling.py", "filter_top_k", ("torch.topk",))
    assert first.sentences == [
        "Top k keeps the k best tokens.",
        "Everything else gets minus infinity, e.g. a zero probability.",
    ]
    assert plot.target == PlotRef("evaluation", "reports/plot.png")
    assert script.words == 8 + 9 + 5 + 4


def test_split_sentences_keeps_abbreviations_and_decimals():
    assert split_sentences("It is 0.5 here. Then i.e. there! Why? Yes.") == [
        "It is 0.5 here.",
        "Then i.e. there!",
        "Why?",
        "Yes.",
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("## Empty\n\n## Next\n@code a.py::f\nHello.", "section 'Empty' is empty"),
        ("## Lonely\nSpoken before any slide.", "narration text before any '@code'"),
        ("## Bad\n@code genai_assets/models/sampling.py\nText.", "must name a symbol"),
        ("## Bad\n@plot evaluation\nText.", "@plot <asset that writes it>"),
        ("## Bad\n@video x.mp4\nText.", "unknown directive '@video'"),
        ("## Silent\n@code a.py::f\n\n## Next\n@code a.py::g\nText.", "nothing spoken over it"),
        ("# Only a title\n", "no '## ' sections"),
    ],
)
def test_malformed_scripts_are_refused_with_a_reason(text, message):
    with pytest.raises(NarrationFormatError, match=message):
        parse_script(text)


def test_resolve_code_gives_current_lines_and_focus():
    code = resolve_code(CodeRef("genai_assets/models/sampling.py", "filter_top_k", ("torch.topk",)))
    lines = (REPO_ROOT / "genai_assets/models/sampling.py").read_text().splitlines()
    assert lines[code.start - 1].startswith("def filter_top_k(")
    assert "torch.topk" in lines[code.focus_lines[0] - 1]
    assert code.source.splitlines()[-1] == lines[code.end - 1]
    method = resolve_code(CodeRef("genai_assets/models/layers.py", "MultiHeadAttention.forward"))
    assert lines != method.source and "def forward(" in method.source.splitlines()[0]


@pytest.mark.parametrize(
    "ref, message",
    [
        (CodeRef("genai_assets/models/nope.py", "f"), "file genai_assets/models/nope.py does not exist"),
        (
            CodeRef("genai_assets/models/sampling.py", "filter_top_q"),
            "sampling.py::filter_top_q no longer exists",
        ),
        (CodeRef("genai_assets/models/sampling.py", "filter_top_k", ("no such line",)), "'no such line'"),
    ],
)
def test_unknown_symbols_are_named(ref, message):
    with pytest.raises(StaleReferenceError, match=message):
        resolve_code(ref)


def test_bundled_narration_resolves_against_the_live_source():
    """Fails when someone moves or renames code the walkthrough narrates: fix narration.md then."""
    script = load_script()
    _, problems = resolve_all(script)
    assert problems == []
    assert 1400 <= script.words <= 1700
    assert len(script.sections) == 14


def test_renaming_a_symbol_in_a_copy_of_the_tree_makes_it_stale(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(
        REPO_ROOT / "genai_assets", copy / "genai_assets", ignore=shutil.ignore_patterns("__pycache__")
    )
    sampling = copy / "genai_assets/models/sampling.py"
    sampling.write_text(sampling.read_text().replace("def filter_top_p(", "def nucleus_filter("))
    manifest = script_manifest(load_script(), copy)
    assert len(manifest["stale"]) == 1
    assert "genai_assets/models/sampling.py::filter_top_p no longer exists" in manifest["stale"][0]
    stale_targets = [
        seg["target"]
        for sec in manifest["sections"]
        for seg in sec["segments"]
        if seg["target"]["kind"] == "stale"
    ]
    assert [t["symbol"] for t in stale_targets] == ["genai_assets/models/sampling.py::filter_top_p"]
    # The real tree is untouched and still resolves.
    assert script_manifest(load_script())["stale"] == []
    assert "def filter_top_p(" in Path(REPO_ROOT / "genai_assets/models/sampling.py").read_text()
