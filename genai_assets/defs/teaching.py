"""Stage "teaching": the narrated code walkthrough and the theory notes, rendered from the live source.

Assets (group ``teaching``), files under ``<lake>/teaching/`` and ``<lake>/reports/``:

* ``walkthrough_script`` — ``teaching/script.json``: the narration (``genai_assets/teaching/narration.md``)
  with every code symbol resolved to its current lines. Blocking check
  ``narration_symbols_exist`` fails, naming the symbol, when the narration points at code that moved.
* ``voiceover`` — ``teaching/walkthrough.ogg`` (Opus) + ``.vtt`` + ``.srt`` + ``cues.json``, spoken
  offline by Piper; sentences cached in ``teaching/tts_cache/``. Checks ``voiceover_duration_in_range``
  and ``voiceover_pace`` (words per minute of audio).
* ``walkthrough_video`` — ``teaching/walkthrough.mp4`` (H.264 + AAC + soft subtitles) of code slides.
* ``walkthrough_page`` — ``reports/walkthrough.html``: audio, transcript, code panel that follows it.
* ``theory_notes`` — ``reports/theory.md`` + ``.html`` with figures from the trained models.

Library code: ``genai_assets.teaching`` (no Dagster there).
"""

import json
import time
from pathlib import Path

import dagster as dg

from genai_assets.defs._config import stage_config
from genai_assets.defs._metadata import image_markdown
from genai_assets.defs._resources import DataLake
from genai_assets.defs._stage_call import run_stage
from genai_assets.lake import atomic_write_text
from genai_assets.teaching.script import ScriptConfig
from genai_assets.teaching.slides import VideoConfig
from genai_assets.teaching.theory import TheoryConfig
from genai_assets.teaching.voice import VoiceConfig

# Assets whose plots the narration may show (``@plot <asset> <path>``): the video and the page
# depend on them, so they run after them. A plot from any other asset is refused by name.
PLOT_ASSETS = (
    "cleansed_poems",
    "token_arrays",
    "cooccurrence_embeddings",
    "scratch_transformer",
    "next_line_transformer",
    "rnn_baselines",
    "finetuned_lm",
    "evaluation",
    "theory_notes",
)
# Part n's files live in PART_FOLDERS[n] under <lake>/teaching (part one at the top, as before).
PART_FOLDERS = ("", "part2")

WalkthroughScriptConfig = stage_config(ScriptConfig)
VoiceoverConfig = stage_config(VoiceConfig)
WalkthroughVideoConfig = stage_config(VideoConfig)
TheoryNotesConfig = stage_config(TheoryConfig)


def script_code_version(narration_path: Path | None = None, root: Path | None = None) -> str:
    """Hash of the narration and of every source file it narrates.

    Used as ``walkthrough_script``'s code version, so Dagster marks the walkthrough stale (and
    ``make demo`` or an automation re-renders it) when the narrated code changes, not only the script.
    """
    import hashlib
    import re

    from genai_assets.teaching.facts import FACT_SOURCES
    from genai_assets.teaching.script import NARRATION_PATH, PART_TWO_PATH, REPO_ROOT

    narrations = [narration_path] if narration_path else [NARRATION_PATH, PART_TWO_PATH]
    root = root or REPO_ROOT
    digest = hashlib.sha256()
    paths: set[str] = set()
    for file in narrations:
        narration = file.read_text(encoding="utf-8") if file.is_file() else ""
        digest.update(narration.encode())
        paths |= set(re.findall(r"^@code\s+(\S+?\.py)::", narration, flags=re.M))
        if re.search(r"\{[a-z_][a-z0-9_]*\}", narration):
            paths |= set(FACT_SOURCES)  # the {facts} are read from these files
    for path in sorted(paths):
        file = root / path
        digest.update(path.encode() + (file.read_bytes() if file.is_file() else b"<missing>"))
    return digest.hexdigest()[:16]


def _teaching_dir(lake: DataLake) -> Path:
    return lake.folder("teaching")


def _part_dir(lake: DataLake, part: int) -> Path:
    return lake.folder("teaching", PART_FOLDERS[part]) if PART_FOLDERS[part] else _teaching_dir(lake)


def _rendered_parts(lake: DataLake) -> list[int]:
    """The parts walkthrough_script rendered last (part one always; part two unless switched off)."""
    return [part for part in range(len(PART_FOLDERS)) if (_part_dir(lake, part) / "script.json").is_file()]


def _read_json(path: Path, asset: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize the asset '{asset}' first.")
    return json.loads(path.read_text(encoding="utf-8"))


def _usable_manifest(lake: DataLake, part: int = 0) -> dict:
    """The resolved script of a part, refused when it still has stale references or unknown plot assets."""
    manifest = _read_json(_part_dir(lake, part) / "script.json", "walkthrough_script")
    if manifest["stale"]:
        raise ValueError(
            "The narration points at code that no longer exists: " + "; ".join(manifest["stale"])
        )
    for section in manifest["sections"]:
        for segment in section["segments"]:
            target = segment["target"]
            if target["kind"] == "plot" and target["asset"] not in PLOT_ASSETS:
                raise ValueError(
                    f"The narration shows a plot of asset '{target['asset']}', which the teaching assets do "
                    f"not depend on: add it to PLOT_ASSETS in genai_assets/defs/teaching.py."
                )
    return manifest


def _segment_targets(manifest: dict) -> list[dict]:
    return [segment["target"] for section in manifest["sections"] for segment in section["segments"]]


def _spoken_manifest(lake: DataLake, part: int = 0) -> tuple[dict, Path, dict]:
    """A part's usable script, folder and voiceover cues; refused when a shown plot is missing."""
    from genai_assets.teaching.slides import MissingPlotError, missing_plots

    manifest = _usable_manifest(lake, part)
    folder = _part_dir(lake, part)
    spoken = _read_json(folder / "cues.json", "voiceover")
    problems = missing_plots(_segment_targets(manifest), lake.path)
    if problems:
        raise MissingPlotError(" ".join(problems))
    return manifest, folder, spoken


@dg.asset(
    group_name="teaching",
    kinds={"python"},
    code_version=script_code_version(),
    config_schema=WalkthroughScriptConfig.config_schema(),
)
def walkthrough_script(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Each part's narration, parsed and resolved against the live source (stale symbols listed, not raised)."""
    from genai_assets.teaching.script import NarrationFormatError, load_script, script_manifest

    config: ScriptConfig = WalkthroughScriptConfig.from_context(context).to_library()
    metadata: dict[str, object] = {"parts": len(config.narration_files())}
    for part, narration in enumerate(config.narration_files()):
        script = load_script(narration, config.root())  # {facts} read from the same tree
        if script.words < config.min_words:
            raise NarrationFormatError(
                f"{narration} has only {script.words} spoken words (< min_words={config.min_words})."
            )
        manifest = script_manifest(script, config.root())
        path = atomic_write_text(_part_dir(lake, part) / "script.json", json.dumps(manifest, indent=1))
        if manifest["stale"]:
            context.log.warning(f"Stale references in {narration.name}: " + "; ".join(manifest["stale"]))
        prefix = "" if part == 0 else f"part{part + 1}_"  # part one keeps the unprefixed keys
        metadata |= {
            f"{prefix}{key}": value for key, value in _script_metadata(script, manifest, path).items()
        }
    for part in range(len(config.narration_files()), len(PART_FOLDERS)):  # a part switched off: no stale copy
        (_part_dir(lake, part) / "script.json").unlink(missing_ok=True)
    return dg.MaterializeResult(metadata=metadata)


def _script_metadata(script, manifest: dict, path: Path) -> dict:
    targets = _segment_targets(manifest)
    symbols = sorted({t["symbol"] for t in targets if t["kind"] in ("code", "stale")})
    outline = "\n".join(
        f"| {i + 1} | {s['title']} | {s['words']} |" for i, s in enumerate(manifest["sections"])
    )
    return {
        "path": dg.MetadataValue.path(str(path)),
        "words": script.words,
        "sections": len(manifest["sections"]),
        "slides": len(targets),
        "sentences": sum(len(seg.sentences) for sec in script.sections for seg in sec.segments),
        "symbols": len(symbols),
        "stale_symbols": len(manifest["stale"]),
        "source_root": manifest["source_root"],
        "outline": dg.MetadataValue.md("| # | section | words |\n|---|---|---|\n" + outline),
    }


@dg.asset_check(asset=walkthrough_script, blocking=True)
def narration_symbols_exist(lake: DataLake) -> dg.AssetCheckResult:
    """Every symbol, focus line and fact that any part's narration names exists in the current source."""
    parts = _rendered_parts(lake) or [0]
    stale = [
        problem
        for part in parts
        for problem in _read_json(_part_dir(lake, part) / "script.json", "walkthrough_script")["stale"]
    ]
    return dg.AssetCheckResult(
        passed=not stale,
        description="all narration symbols resolve" if not stale else "; ".join(stale),
        metadata={"stale": len(stale), "problems": dg.MetadataValue.json(stale)},
    )


@dg.asset(
    group_name="teaching",
    kinds={"python"},
    deps=[walkthrough_script],
    config_schema=VoiceoverConfig.config_schema(),
)
def voiceover(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Each part's narration spoken offline (Piper), compressed, with WebVTT/SRT cues from the real audio lengths."""
    from genai_assets.teaching.voice import SentenceSynthesizer

    config: VoiceConfig = VoiceoverConfig.from_context(context).to_library()
    parts = _rendered_parts(lake)
    if not parts:
        raise FileNotFoundError(
            "No narration script in the lake: materialize the asset 'walkthrough_script' first."
        )
    synthesizer = SentenceSynthesizer(config, _teaching_dir(lake) / "tts_cache")  # one cache for every part
    metadata: dict[str, object] = {
        "parts": len(parts),
        "min_minutes": config.min_minutes,
        "max_minutes": config.max_minutes,
        "max_words_per_minute": config.max_words_per_minute,
        "length_scale": config.length_scale,
        "voice": config.voice,
    }
    for part in parts:
        prefix = "" if part == 0 else f"part{part + 1}_"
        metadata |= {
            f"{prefix}{key}": value
            for key, value in _record_part(context, lake, part, config, synthesizer).items()
        }
    return dg.MaterializeResult(metadata=metadata)


def _record_part(context, lake: DataLake, part: int, config: VoiceConfig, synthesizer) -> dict:
    """Speak one part into its folder: audio, VTT/SRT and cues.json; its metadata."""
    import tempfile

    from genai_assets.teaching.voice import audio_suffix, encode_audio, record, write_subtitles, write_wav

    manifest = _usable_manifest(lake, part)
    folder = _part_dir(lake, part)
    started = time.perf_counter()
    sections = [[segment["sentences"] for segment in section["segments"]] for section in manifest["sections"]]
    recording = record(sections, synthesizer)
    synth_seconds = time.perf_counter() - started
    audio = folder / f"walkthrough{audio_suffix(config)}"
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        wav = write_wav(Path(scratch) / "walkthrough.wav", recording.samples, recording.sample_rate)
        encode_audio(wav, audio, config)
    vtt, srt_path = write_subtitles(folder, recording.cues)
    cues = [
        {"index": c.index, "section": c.section, "segment": c.segment, "start": round(c.start_s, 3),
         "end": round(c.end_s, 3), "text": c.text}
        for c in recording.cues
    ]  # fmt: skip
    atomic_write_text(
        folder / "cues.json",
        json.dumps(
            {"audio": audio.name, "duration_s": recording.duration_s, "voice": config.voice,
             "slide_times": recording.slide_times, "cues": cues},
            indent=1,
        ),
    )  # fmt: skip
    context.log.info(
        f"Part {part + 1}: {recording.duration_s / 60:.2f} min of speech: {recording.synthesized} sentences "
        f"synthesized, {recording.cached} from the cache, in {synth_seconds:.1f} s"
    )
    return {
        "audio": dg.MetadataValue.path(str(audio)),
        "webvtt": dg.MetadataValue.path(str(vtt)),
        "srt": dg.MetadataValue.path(str(srt_path)),
        "duration_s": round(recording.duration_s, 2),
        "duration_min": round(recording.duration_s / 60, 2),
        "cues": len(cues),
        "words": manifest["words"],
        "words_per_minute": round(manifest["words"] / (recording.duration_s / 60), 1),
        "sentences_synthesized": recording.synthesized,
        "sentences_cached": recording.cached,
        "synthesis_seconds": round(synth_seconds, 1),
        "audio_bytes": audio.stat().st_size,
    }


def _part_prefixes(metadata) -> list[tuple[str, str]]:
    """``(label, metadata key prefix)`` of every part the voiceover recorded."""
    parts = metadata["parts"].value if "parts" in metadata else 1
    return [("part 1", "")] + [(f"part {n}", f"part{n}_") for n in range(2, parts + 1)]


@dg.asset_check(asset=voiceover)
def voiceover_duration_in_range(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Every spoken part lasts between min_minutes and max_minutes (the course asks for ~10 each)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("voiceover"))
    metadata = event.asset_materialization.metadata
    low, high = metadata["min_minutes"].value, metadata["max_minutes"].value
    minutes = {label: metadata[f"{prefix}duration_min"].value for label, prefix in _part_prefixes(metadata)}
    return dg.AssetCheckResult(
        passed=all(low <= value <= high for value in minutes.values()),
        description=", ".join(f"{label}: {value:.2f} min" for label, value in minutes.items())
        + f" (allowed {low}–{high} min)",
        metadata={"duration_min": minutes["part 1"], **{f"{k} min": v for k, v in minutes.items()}},
    )


@dg.asset_check(asset=voiceover)
def voiceover_pace(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """A lecture pace: at most max_words_per_minute spoken words per minute of audio (pauses included)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("voiceover"))
    metadata = event.asset_materialization.metadata
    limit = metadata["max_words_per_minute"].value
    pace = {label: metadata[f"{prefix}words_per_minute"].value for label, prefix in _part_prefixes(metadata)}
    return dg.AssetCheckResult(
        passed=all(value <= limit for value in pace.values()),
        description=", ".join(f"{label}: {value:.1f}" for label, value in pace.items())
        + f" words per minute of audio (at most {limit:g}; slow it with length_scale)",
        metadata={"words_per_minute": pace["part 1"], **{f"{k} wpm": v for k, v in pace.items()}},
    )


def _slide_specs(manifest: dict):
    from genai_assets.teaching.slides import SlideSpec

    specs = []
    for index, section in enumerate(manifest["sections"]):
        for segment in section["segments"]:
            target = segment["target"]
            subtitle = (
                f"{target['symbol']}  (lines {target['start']}–{target['end']})"
                if target["kind"] == "code"
                else f"{target['path']}  (asset {target['asset']})"
            )
            specs.append(SlideSpec(f"{index + 1}. {section['title']}", subtitle, target))
    return specs


@dg.asset(
    group_name="teaching",
    kinds={"python"},
    deps=[walkthrough_script, voiceover, *PLOT_ASSETS],
    config_schema=WalkthroughVideoConfig.config_schema(),
)
def walkthrough_video(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """One MP4 per part: code slides (narrated lines highlighted) and lake plots, voiceover, subtitles."""
    config: VideoConfig = WalkthroughVideoConfig.from_context(context).to_library()
    metadata: dict[str, object] = {"parts": len(_rendered_parts(lake))}
    for part in _rendered_parts(lake):
        prefix = "" if part == 0 else f"part{part + 1}_"
        metadata |= {f"{prefix}{key}": value for key, value in _render_part_video(lake, part, config).items()}
    return dg.MaterializeResult(metadata=metadata)


def _render_part_video(lake: DataLake, part: int, config: VideoConfig) -> dict:
    from genai_assets.teaching.slides import encode_video, probe_duration, render_slide

    manifest, folder, spoken = _spoken_manifest(lake, part)
    specs = _slide_specs(manifest)
    if len(specs) != len(spoken["slide_times"]):
        raise ValueError(
            "The voiceover was recorded from another version of the script: materialize 'voiceover'."
        )
    started = time.perf_counter()
    slides_dir = folder / "slides"
    slides_dir.mkdir(parents=True, exist_ok=True)
    for old in slides_dir.glob("slide_*.png"):
        old.unlink()
    pngs = [render_slide(spec, lake.path, slides_dir / f"slide_{i:03d}.png") for i, spec in enumerate(specs)]
    render_seconds = time.perf_counter() - started
    video = encode_video(
        pngs,
        [start for start, _ in spoken["slide_times"]],
        spoken["duration_s"],
        folder / spoken["audio"],
        folder / "walkthrough.srt",
        folder / "walkthrough.mp4",
        fps=config.fps,
    )
    encode_seconds = time.perf_counter() - started - render_seconds
    return {
        "video": dg.MetadataValue.path(str(video)),
        "duration_s": round(probe_duration(video), 2),
        "slides": len(pngs),
        "video_bytes": video.stat().st_size,
        "render_seconds": round(render_seconds, 1),
        "encode_seconds": round(encode_seconds, 1),
        "first_code_slide": image_markdown(
            next((p for p, s in zip(pngs, specs, strict=True) if s.target["kind"] == "code"), pngs[0])
        ),
    }


@dg.asset(group_name="teaching", kinds={"html"}, deps=[walkthrough_script, voiceover, *PLOT_ASSETS])
def walkthrough_page(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """``reports/walkthrough.html``: a part selector; per part audio, transcript and a code panel that follows it."""
    from genai_assets.teaching.player import PagePart, render_page

    parts = []
    for part in _rendered_parts(lake):
        manifest, folder, spoken = _spoken_manifest(lake, part)
        parts.append(PagePart(manifest, spoken["cues"], folder / spoken["audio"], spoken["duration_s"]))
    if not parts:
        raise FileNotFoundError(
            "No narration script in the lake: materialize the asset 'walkthrough_script' first."
        )
    page = render_page(parts, lake.path)
    path = atomic_write_text(lake.reports_dir() / "walkthrough.html", page)
    context.log.info(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained)")
    return dg.MaterializeResult(
        metadata={
            "page": dg.MetadataValue.path(str(path)),
            "page_bytes": path.stat().st_size,
            "parts": len(parts),
            "cues": len(parts[0].cues),
            "duration_s": round(parts[0].duration_s, 2),
            **{f"part{n}_cues": len(p.cues) for n, p in enumerate(parts[1:], start=2)},
            **{f"part{n}_duration_s": round(p.duration_s, 2) for n, p in enumerate(parts[1:], start=2)},
        }
    )


@dg.asset(
    group_name="teaching",
    kinds={"pytorch"},
    deps=[
        "scratch_transformer",
        "next_line_transformer",  # its cross-attention figure (part two)
        "rnn_baselines",
        "cooccurrence_embeddings",
        "finetuned_lm",
        "evaluation",
    ],
    config_schema=TheoryNotesConfig.config_schema(),
)
def theory_notes(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """The course's theory questions answered with figures from our trained models (reports/theory.md)."""
    from genai_assets.stages.teaching import run_theory_notes

    started = time.perf_counter()
    result = run_stage(run_theory_notes, TheoryNotesConfig, context, lake)
    context.log.info(
        f"Theory notes with {len(result.figures)} figures in {time.perf_counter() - started:.1f} s"
    )
    metadata: dict[str, object] = {
        "report": dg.MetadataValue.path(str(lake.reports_dir() / "theory.md")),
        "html": dg.MetadataValue.path(str(lake.reports_dir() / "theory.html")),
        "seconds": round(time.perf_counter() - started, 1),
    }
    metadata |= {name: round(value, 6) for name, value in result.numbers.items()}
    metadata |= {f"plot_{name}": image_markdown(path) for name, path in result.figures.items()}
    return dg.MaterializeResult(metadata=metadata)


defs = dg.Definitions(
    assets=[walkthrough_script, voiceover, walkthrough_video, walkthrough_page, theory_notes],
    asset_checks=[narration_symbols_exist, voiceover_duration_in_range, voiceover_pace],
)
