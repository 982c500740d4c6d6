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


def test_bundled_part_two_resolves_and_does_not_repeat_part_one():
    """Part two (narration_part2.md) is checked like part one; the two parts show different code."""
    from genai_assets.teaching.script import PART_TWO_PATH

    one, two = load_script(), load_script(PART_TWO_PATH)
    assert script_manifest(two)["stale"] == []
    assert 1350 <= two.words <= 1700  # 9-11 min at the voice's ~150 words per minute
    assert not {ref.symbol for ref in one.code_refs()} & {ref.symbol for ref in two.code_refs()}
    assert not {p.path for p in one.plot_refs()} & {p.path for p in two.plot_refs()}
    # Part two's own figures, written by theory_notes (issue 22), are on its slides.
    assert {p.path for p in two.plot_refs() if p.asset == "theory_notes"} >= {
        f"reports/theory/{name}.png"
        for name in (
            "head_profiles",
            "cross_attention",
            "tokenizer_comparison",
            "sampling_penalties",
            "finetune_lora",
        )
    }


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


# --- issue 21: per-sentence focus, facts read from the source, every highlighted line on its slide ---

FOCUSED = """# Focus
## Attention
@code genai_assets/models/layers.py::scaled_dot_product_attention | return weights @ value
[[scores = query @ key.transpose]] Scores first. Then [[masked_fill]] the mask, [[weights = torch.softmax]] and softmax.
No mark here.
"""


def test_sentence_marks_name_their_own_lines_and_add_to_the_slide():
    script = parse_script(FOCUSED)
    [segment] = script.sections[0].segments
    assert segment.sentences == ["Scores first.", "Then the mask, and softmax.", "No mark here."]
    assert segment.sentence_focus == [
        ("scores = query @ key.transpose",),
        ("masked_fill", "weights = torch.softmax"),
        (),
    ]
    manifest = script_manifest(script)
    [shown] = manifest["sections"][0]["segments"]
    source = (REPO_ROOT / "genai_assets/models/layers.py").read_text().splitlines()

    def text(lines):
        return [source[number - 1] for number in lines]

    first, second, unmarked = shown["sentence_focus_lines"]
    assert "scores = query @ key.transpose" in text(first)[0] and len(first) == 1
    assert [("masked_fill" in t, "softmax" in t) for t in text(second)] == [(True, False), (False, True)]
    assert len(unmarked) == 1 and "return weights @ value" in text(unmarked)[0]  # the @code line's snippet
    assert shown["target"]["focus_lines"] == sorted({*first, *second, *unmarked})


def test_snippet_ending_in_a_bracket_and_marks_outside_code_slides():
    script = parse_script(
        "## D\n@code genai_assets/text/datasets.py::TokenBlockDataset.__getitem__\n"
        "[[return window[:-1], window[1:]]] Shifted by one.\n"
    )
    assert script.sections[0].segments[0].sentence_focus == [("return window[:-1], window[1:]",)]
    assert script.sections[0].segments[0].sentences == ["Shifted by one."]
    with pytest.raises(NarrationFormatError, match=r"\[\[...\]\] marks need a @code slide"):
        parse_script("## P\n@plot evaluation reports/a.png\n[[x]] A plot.\n")


def test_facts_are_read_from_the_code_they_describe():
    import torch

    from genai_assets.cleaning.pipeline import CleaningConfig, cleanse_poems
    from genai_assets.finetune.train import FinetuneConfig
    from genai_assets.models.layers import DecoderLayer
    from genai_assets.teaching.facts import (
        decoder_sublayers,
        dedup_rules,
        finetune_evaluation,
        finetune_recipe,
        kv_cache_tolerance,
        narration_facts,
    )
    from genai_assets_tests.test_cleaning_pipeline import toy_raw

    steps = cleanse_poems(toy_raw(), CleaningConfig(num_perm=128)).steps
    assert dedup_rules(REPO_ROOT) == [step.rule for step in steps if step.kind == "dedup"]
    layer = DecoderLayer(8, 2, 16)
    sublayers = [
        m for m in (layer.self_attention, layer.cross_attention, layer.feed_forward) if m is not None
    ]
    assert decoder_sublayers(REPO_ROOT) == len(sublayers) == 3
    assert isinstance(layer.feed_forward, torch.nn.Module)
    config = FinetuneConfig()
    assert ("LoRA" in finetune_recipe(REPO_ROOT)) == config.lora
    assert f"rank {config.lora_r}" in finetune_recipe(REPO_ROOT)
    assert finetune_evaluation(REPO_ROOT) == (
        "once per epoch and at the end"
        if config.eval_every == 0
        else f"every {config.eval_every} steps and at the end"
    )
    assert kv_cache_tolerance(REPO_ROOT) == 1e-5
    facts, problems = narration_facts(REPO_ROOT)
    assert problems == {} and facts["dedup_pass_count"] == "four"


def test_unknown_fact_is_refused_and_a_moved_fact_is_stale(tmp_path):
    with pytest.raises(NarrationFormatError, match=r"unknown fact \{no_such_fact\}"):
        parse_script("## A\n@plot evaluation reports/a.png\nIt has {no_such_fact} parts.\n")
    copy = tmp_path / "src"
    shutil.copytree(
        REPO_ROOT / "genai_assets", copy / "genai_assets", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(
        REPO_ROOT / "genai_assets_tests", copy / "genai_assets_tests", ignore=shutil.ignore_patterns("*")
    )
    shutil.copy(REPO_ROOT / "genai_assets_tests/test_models_transformer.py", copy / "genai_assets_tests")
    layers = copy / "genai_assets/models/layers.py"
    layers.write_text(
        layers.read_text().replace("cross_attention: bool = True)", "cross_attention: bool = False)")
    )
    script = load_script(root=copy)
    assert "has two sub-layers by default" in " ".join(
        s for sec in script.sections for seg in sec.segments for s in seg.sentences
    )
    pipeline = copy / "genai_assets/cleaning/pipeline.py"
    pipeline.write_text(pipeline.read_text().replace("def cleanse_poems(", "def clean_poems("))
    manifest = script_manifest(load_script(root=copy), copy)
    assert any("{dedup_pass_count}" in problem for problem in manifest["stale"])


@pytest.mark.parametrize("part", [1, 2])
def test_every_slide_of_the_bundled_narration_shows_all_its_highlighted_lines(part):
    from genai_assets.teaching.script import NARRATION_PATH, PART_TWO_PATH
    from genai_assets.teaching.slides import MAX_CODE_LINES, code_window

    manifest = script_manifest(load_script(NARRATION_PATH if part == 1 else PART_TWO_PATH))
    assert manifest["stale"] == []
    code_slides = 0
    for section in manifest["sections"]:
        for segment in section["segments"]:
            target = segment["target"]
            if target["kind"] != "code":
                continue
            code_slides += 1
            lines, first = code_window(target["source"], target["start"], target["focus_lines"])
            shown = range(first, first + len(lines))
            assert len(lines) <= MAX_CODE_LINES
            assert all(line in shown for line in target["focus_lines"]), target["symbol"]
            for spoken in segment["sentence_focus_lines"]:
                assert set(spoken) <= set(target["focus_lines"])
                assert spoken or not target["focus_lines"]  # a slide with highlights names some per sentence
    assert code_slides >= (25 if part == 1 else 12)


def test_a_slide_whose_highlights_do_not_fit_is_refused(tmp_path):
    from genai_assets.teaching.script import SLIDE_CODE_LINES

    body = "\n".join(f"    step_{number} = {number}" for number in range(60))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n")
    fits = CodeRef("long.py", "long", ("step_0 =", f"step_{SLIDE_CODE_LINES - 1} ="))
    assert len(resolve_code(fits, tmp_path).focus_lines) == 2
    too_far = CodeRef("long.py", "long", ("step_0 =", f"step_{SLIDE_CODE_LINES} ="))
    with pytest.raises(StaleReferenceError, match="narrate it over several '@code' slides"):
        resolve_code(too_far, tmp_path)
