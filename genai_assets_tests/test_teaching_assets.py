"""The teaching walkthrough assets on a two-section script: script → voiceover → page and video,
the blocking stale-symbol check on a renamed copy of the tree, missing plots named by asset, and the
page driven in headless Chromium (duration in range, a cue change moves the code highlight)."""

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest

from genai_assets.definitions import build_definitions
from genai_assets.teaching.script import REPO_ROOT

SCRIPT = """# Two-section walkthrough

## Sampling
@code genai_assets/models/sampling.py::filter_top_k | torch.topk
Top k keeps only the best tokens. The rest get no chance at all.

@plot evaluation reports/test_plot.png
This chart compares the models.

## Attention
@code genai_assets/models/layers.py::scaled_dot_product_attention | torch.softmax
[[scores = query @ key.transpose]] Each query looks at every key. [[torch.softmax]] The softmax turns scores into weights.
"""
SCRIPT_TWO = """# Part two

## Repetition
@code genai_assets/models/sampling.py::apply_repetition_penalty | seen = torch.gather
[[seen = torch.gather]] The penalty looks up every token seen so far. [[return logits.scatter]] Then it writes the lowered scores back.
"""
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def write_plot(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (320, 200), (40, 120, 200)).save(path)


def materialize(lake_root: Path, names: list[str], ops: dict, raise_on_error: bool = True):
    job = build_definitions(lake_root=str(lake_root)).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        asset_selection=[dg.AssetKey(name) for name in names],
        run_config={"ops": {name: {"config": ops.get(name, {})} for name in names}},
        raise_on_error=raise_on_error,
        instance=dg.DagsterInstance.ephemeral(),
    )


def metadata_of(result, name: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == name]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def check_results(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


SHORT_VOICE = {"min_minutes": 0.05, "max_minutes": 1.0, "sentence_pause_s": 0.2}


@pytest.fixture(scope="module")
def teaching_lake(tmp_path_factory):
    """One tiny lake with the script, voiceover, page and video materialized (shared: speech costs CPU)."""
    root = tmp_path_factory.mktemp("teaching") / "lake"
    narration = root.parent / "narration.md"
    narration.write_text(SCRIPT)
    part_two = root.parent / "narration_part2.md"
    part_two.write_text(SCRIPT_TWO)
    write_plot(root / "reports" / "test_plot.png")
    names = ["walkthrough_script", "voiceover", "walkthrough_page", "walkthrough_video"]
    ops = {
        "walkthrough_script": {
            "narration_path": str(narration),
            "part_two_path": str(part_two),
            "min_words": 10,
        },
        "voiceover": SHORT_VOICE,
    }
    result = materialize(root, names, ops)
    return root, narration, result


def test_walkthrough_assets_materialize(teaching_lake):
    from genai_assets.teaching.slides import probe_duration

    root, _, result = teaching_lake
    assert result.success
    script = metadata_of(result, "walkthrough_script")
    assert (script["sections"], script["slides"], script["sentences"], script["stale_symbols"]) == (
        2,
        3,
        5,
        0,
    )
    checks = check_results(result)
    assert checks["narration_symbols_exist"].passed
    assert checks["voiceover_duration_in_range"].passed

    voice = metadata_of(result, "voiceover")
    assert voice["cues"] == 5 and voice["sentences_synthesized"] == 5
    assert voice["words"] == script["words"] and voice["part2_words"] == script["part2_words"]
    assert voice["words_per_minute"] == pytest.approx(voice["words"] / (voice["duration_s"] / 60), abs=0.1)
    paces = (voice["words_per_minute"], voice["part2_words_per_minute"])
    assert checks["voiceover_pace"].passed == all(pace <= 160 for pace in paces)  # every part is checked
    assert 5 < voice["duration_s"] < 30
    cues = json.loads((root / "teaching" / "cues.json").read_text())
    assert [c["segment"] for c in cues["cues"]] == [0, 0, 1, 2, 2]
    vtt = (root / "teaching" / "walkthrough.vtt").read_text()
    assert vtt.startswith("WEBVTT") and "Top k keeps only the best tokens." in vtt
    assert (root / "teaching" / "walkthrough.srt").read_text().startswith("1\n00:00:00,000 --> ")

    video = metadata_of(result, "walkthrough_video")
    assert video["slides"] == 3
    assert video["duration_s"] == pytest.approx(voice["duration_s"], abs=0.6)
    mp4 = root / "teaching" / "walkthrough.mp4"
    assert probe_duration(mp4) == pytest.approx(voice["duration_s"], abs=0.6)
    header = mp4.read_bytes()[:64]
    assert b"ftyp" in header
    assert sorted(p.name for p in (root / "teaching" / "slides").glob("*.png")) == [
        "slide_000.png", "slide_001.png", "slide_002.png",
    ]  # fmt: skip

    page = (root / "reports" / "walkthrough.html").read_text()
    assert "data:audio/ogg;base64," in page and "filter_top_k" in page and "The softmax turns" in page

    # Part two: the same assets render its own script, audio, subtitles, video and page section.
    assert (script["parts"], script["part2_slides"], script["part2_sentences"]) == (2, 1, 2)
    two = root / "teaching" / "part2"
    assert voice["parts"] == 2 and voice["part2_cues"] == 2
    assert json.loads((two / "cues.json").read_text())["duration_s"] == pytest.approx(
        voice["part2_duration_s"], abs=0.01
    )
    assert "The penalty looks up every token seen so far." in (two / "walkthrough.vtt").read_text()
    assert probe_duration(two / "walkthrough.mp4") == pytest.approx(voice["part2_duration_s"], abs=0.6)
    assert video["part2_slides"] == 1 and (two / "slides" / "slide_000.png").is_file()
    assert 'id="narration-2"' in page and 'id="p2-slide-0"' in page and "apply_repetition_penalty" in page


def test_stale_symbol_fails_the_blocking_check_and_stops_the_voiceover(tmp_path, teaching_lake):
    _, narration, _ = teaching_lake
    copy = tmp_path / "src"
    shutil.copytree(
        REPO_ROOT / "genai_assets", copy / "genai_assets", ignore=shutil.ignore_patterns("__pycache__")
    )
    layers = copy / "genai_assets/models/layers.py"
    layers.write_text(layers.read_text().replace("def scaled_dot_product_attention(", "def attention("))
    sampling = copy / "genai_assets/models/sampling.py"  # narrated by the bundled part two only
    sampling.write_text(sampling.read_text().replace("def ban_repeated_ngrams(", "def ban_ngrams("))
    ops = {
        "walkthrough_script": {"narration_path": str(narration), "source_root": str(copy), "min_words": 10},
        "voiceover": SHORT_VOICE,
    }
    result = materialize(tmp_path / "lake", ["walkthrough_script", "voiceover"], ops, raise_on_error=False)
    check = check_results(result)["narration_symbols_exist"]
    assert not check.passed
    assert "genai_assets/models/layers.py::scaled_dot_product_attention no longer exists" in check.description
    assert (
        "genai_assets/models/sampling.py::ban_repeated_ngrams no longer exists" in check.description
    )  # part two
    # Blocking: the voiceover never ran.
    assert [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()] == [
        "walkthrough_script"
    ]


def test_missing_plot_names_the_asset_to_materialize(tmp_path, teaching_lake):
    root, _, _ = teaching_lake
    lake = tmp_path / "lake"
    shutil.copytree(root / "teaching", lake / "teaching")  # script + voiceover, but no plot in reports/
    with pytest.raises(Exception, match="materialize the asset 'evaluation' first"):
        materialize(lake, ["walkthrough_page"], {})


def test_empty_script_is_refused(tmp_path):
    narration = tmp_path / "narration.md"
    narration.write_text("# Title\n\n## Only a heading\n")
    with pytest.raises(Exception, match="section 'Only a heading' is empty"):
        materialize(
            tmp_path / "lake",
            ["walkthrough_script"],
            {"walkthrough_script": {"narration_path": str(narration)}},
        )


def seek(page, seconds: float) -> None:
    page.evaluate(f"document.getElementById('narration').currentTime = {seconds}")


def line_in_view(page, line) -> bool:
    """The line's box lies inside the code panel's visible box."""
    panel = page.locator("#code").bounding_box()
    box = line.bounding_box()
    return panel["y"] <= box["y"] and box["y"] + box["height"] <= panel["y"] + panel["height"]


@pytest.mark.slow
@pytest.mark.ui
def test_page_plays_in_chromium_and_follows_the_cues(teaching_lake):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    root, _, _ = teaching_lake
    cues = json.loads((root / "teaching" / "cues.json").read_text())
    page_url = (root / "reports" / "walkthrough.html").as_uri()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # A short window: the code panel must scroll to bring the narrated lines into view.
            page = browser.new_page(viewport={"width": 1280, "height": 320})
            page.goto(page_url)
            page.wait_for_function(
                "() => { const a = document.getElementById('narration'); return a.readyState >= 1 && isFinite(a.duration); }",
                timeout=30_000,
            )
            duration = page.evaluate("document.getElementById('narration').duration")
            assert duration == pytest.approx(cues["duration_s"], abs=0.3)
            assert page.evaluate("document.body.dataset.activeSegment") == "0"
            assert page.locator("#slide-0 .line.focus").count() == 1
            assert page.locator("#slide-0").is_visible() and not page.locator("#slide-2").is_visible()
            # Seek to the last cue: the transcript and the code panel must move with it.
            last = cues["cues"][-1]
            page.evaluate(f"document.getElementById('narration').currentTime = {last['start'] + 0.05}")
            page.wait_for_function("() => document.body.dataset.activeSegment === '2'", timeout=10_000)
            assert page.locator("#slide-2").is_visible() and not page.locator("#slide-0").is_visible()
            focus = page.locator("#slide-2 .line.focus")
            assert focus.count() == 2  # the slide highlights every line its sentences name
            assert page.locator(f"#cue-{last['index']}.current").count() == 1
            # Per sentence: the outlined (narrated) line is the one the spoken cue names, and it is in view.
            narrated = page.locator("#slide-2 .line.narrated")
            assert narrated.count() == 1 and "softmax" in narrated.inner_text()
            assert page.evaluate(
                "(() => { const c = document.getElementById('code'); return c.scrollHeight > c.clientHeight; })()"
            )
            assert line_in_view(page, narrated)
            before_last = cues["cues"][-2]
            seek(page, before_last["start"] + 0.05)
            page.wait_for_function(f"() => document.body.dataset.activeCue === '{before_last['index']}'")
            narrated = page.locator("#slide-2 .line.narrated")
            assert narrated.count() == 1 and "scores = query @ key.transpose" in narrated.inner_text()
            assert line_in_view(page, narrated)

            # Part two: the selector switches audio, transcript and slides; its cues drive its own slide.
            two = json.loads((root / "teaching" / "part2" / "cues.json").read_text())
            page.click("#part-button-1")
            page.wait_for_function("() => document.body.dataset.activePart === '1'")
            assert page.locator("#narration-2").is_visible() and not page.locator("#narration").is_visible()
            page.wait_for_function(
                "() => { const a = document.getElementById('narration-2'); return a.readyState >= 1 && isFinite(a.duration); }",
                timeout=30_000,
            )
            assert page.evaluate("document.getElementById('narration-2').duration") == pytest.approx(
                two["duration_s"], abs=0.3
            )
            assert page.locator("#p2-slide-0").is_visible() and not page.locator("#slide-2").is_visible()
            last = two["cues"][-1]
            page.evaluate(f"document.getElementById('narration-2').currentTime = {last['start'] + 0.05}")
            page.wait_for_function(f"() => document.body.dataset.activeCue === '{last['index']}'")
            narrated = page.locator("#p2-slide-0 .line.narrated")
            assert narrated.count() == 1 and "return logits.scatter" in narrated.inner_text()
            assert line_in_view(page, narrated)
            page.evaluate("document.getElementById('narration-2').play().catch(() => {})")
            assert page.locator(f"#p2-cue-{last['index']}.current").count() == 1
        finally:
            browser.close()


def test_long_symbols_are_windowed_to_show_their_focus_lines():
    from genai_assets.teaching.slides import MAX_CODE_LINES, code_window

    source = "\n".join(f"line {number}" for number in range(10, 110))  # file lines 10..109
    lines, first = code_window(source, 10, [30, 60])
    assert len(lines) == MAX_CODE_LINES and first <= 30 and first + MAX_CODE_LINES > 60
    assert lines[0] == f"line {first}"
    short, start = code_window("a\nb", 5, [6])
    assert (short, start) == (["a", "b"], 5)
    # Focus at the very end, and a span of exactly one slide: every focus line still shows.
    for focus in ([100, 109], [40, 40 + MAX_CODE_LINES - 1], [10, 12]):
        lines, first = code_window(source, 10, focus)
        assert len(lines) == MAX_CODE_LINES and all(first <= f < first + MAX_CODE_LINES for f in focus)


def test_duration_check_fails_outside_the_range(tmp_path, teaching_lake):
    root, _, _ = teaching_lake
    lake = tmp_path / "lake"
    shutil.copytree(root / "teaching", lake / "teaching")  # the sentence cache comes along: no synthesis
    config = {**SHORT_VOICE, "min_minutes": 0.5, "max_words_per_minute": 10}
    result = materialize(lake, ["voiceover"], {"voiceover": config})
    assert metadata_of(result, "voiceover")["sentences_cached"] == 5
    check = check_results(result)["voiceover_duration_in_range"]
    assert not check.passed and "(allowed 0.5–1.0 min)" in check.description
    pace = check_results(result)["voiceover_pace"]
    assert not pace.passed and "(at most 10;" in pace.description


def test_code_version_follows_the_narrated_source(tmp_path):
    from genai_assets.defs.teaching import script_code_version

    narration = tmp_path / "narration.md"
    narration.write_text(SCRIPT)
    copy = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "genai_assets" / "models", copy / "genai_assets" / "models")
    before = script_code_version(narration, copy)
    assert before == script_code_version(narration, copy)
    unrelated = copy / "genai_assets/models/rnn.py"  # not narrated by SCRIPT
    unrelated.write_text(unrelated.read_text() + "\n# edit\n")
    assert script_code_version(narration, copy) == before
    sampling = copy / "genai_assets/models/sampling.py"
    sampling.write_text(sampling.read_text() + "\n# edit\n")
    assert script_code_version(narration, copy) != before
