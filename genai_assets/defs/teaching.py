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
from genai_assets.lake import atomic_write_text
from genai_assets.teaching.script import ScriptConfig
from genai_assets.teaching.slides import VideoConfig
from genai_assets.teaching.theory import TheoryConfig
from genai_assets.teaching.voice import VoiceConfig

# Assets whose plots the narration may show (``@plot <asset> <path>``): the video and the page
# depend on them, so they run after them. A plot from any other asset is refused by name.
PLOT_ASSETS = (
    "cleansed_poems",
    "scratch_transformer",
    "rnn_baselines",
    "finetuned_lm",
    "evaluation",
    "theory_notes",
)

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

    from genai_assets.teaching.script import NARRATION_PATH, REPO_ROOT

    narration_path, root = narration_path or NARRATION_PATH, root or REPO_ROOT
    digest = hashlib.sha256()
    narration = narration_path.read_text(encoding="utf-8") if narration_path.is_file() else ""
    digest.update(narration.encode())
    for path in sorted(set(re.findall(r"^@code\s+(\S+?\.py)::", narration, flags=re.M))):
        file = root / path
        digest.update(path.encode() + (file.read_bytes() if file.is_file() else b"<missing>"))
    return digest.hexdigest()[:16]


def _teaching_dir(lake: DataLake) -> Path:
    return lake.folder("teaching")


def _read_json(path: Path, asset: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize the asset '{asset}' first.")
    return json.loads(path.read_text(encoding="utf-8"))


def _usable_manifest(lake: DataLake) -> dict:
    """The resolved script, refused when it still has stale references or unknown plot assets."""
    manifest = _read_json(_teaching_dir(lake) / "script.json", "walkthrough_script")
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


def _spoken_manifest(lake: DataLake) -> tuple[dict, Path, dict]:
    """The usable script, the teaching folder and the voiceover's cues; refused when a shown plot is missing."""
    from genai_assets.teaching.slides import MissingPlotError, missing_plots

    manifest = _usable_manifest(lake)
    folder = _teaching_dir(lake)
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
    """The narration, parsed and resolved against the live source (stale symbols listed, not raised)."""
    from genai_assets.teaching.script import NarrationFormatError, load_script, script_manifest

    config: ScriptConfig = WalkthroughScriptConfig.from_context(context).to_library()
    script = load_script(config.narration_file(), config.root())  # {facts} read from the same tree
    if script.words < config.min_words:
        raise NarrationFormatError(
            f"{config.narration_file()} has only {script.words} spoken words (< min_words={config.min_words})."
        )
    manifest = script_manifest(script, config.root())
    path = atomic_write_text(_teaching_dir(lake) / "script.json", json.dumps(manifest, indent=1))
    targets = _segment_targets(manifest)
    symbols = sorted({t["symbol"] for t in targets if t["kind"] in ("code", "stale")})
    outline = "\n".join(
        f"| {i + 1} | {s['title']} | {s['words']} |" for i, s in enumerate(manifest["sections"])
    )
    if manifest["stale"]:
        context.log.warning("Stale narration references: " + "; ".join(manifest["stale"]))
    return dg.MaterializeResult(
        metadata={
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
    )


@dg.asset_check(asset=walkthrough_script, blocking=True)
def narration_symbols_exist(lake: DataLake) -> dg.AssetCheckResult:
    """Every symbol and focus line the narration names exists in the current source."""
    manifest = _read_json(_teaching_dir(lake) / "script.json", "walkthrough_script")
    stale = manifest["stale"]
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
    """The narration spoken offline (Piper), compressed, with WebVTT/SRT cues from the real audio lengths."""
    import tempfile

    from genai_assets.teaching.voice import (
        SentenceSynthesizer,
        audio_suffix,
        encode_audio,
        record,
        write_subtitles,
        write_wav,
    )

    config: VoiceConfig = VoiceoverConfig.from_context(context).to_library()
    manifest = _usable_manifest(lake)
    folder = _teaching_dir(lake)
    started = time.perf_counter()
    synthesizer = SentenceSynthesizer(config, folder / "tts_cache")
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
        f"{recording.duration_s / 60:.2f} min of speech: {recording.synthesized} sentences synthesized, "
        f"{recording.cached} from the cache, in {synth_seconds:.1f} s"
    )
    return dg.MaterializeResult(
        metadata={
            "audio": dg.MetadataValue.path(str(audio)),
            "webvtt": dg.MetadataValue.path(str(vtt)),
            "srt": dg.MetadataValue.path(str(srt_path)),
            "duration_s": round(recording.duration_s, 2),
            "duration_min": round(recording.duration_s / 60, 2),
            "min_minutes": config.min_minutes,
            "max_minutes": config.max_minutes,
            "cues": len(cues),
            "words": manifest["words"],
            "words_per_minute": round(manifest["words"] / (recording.duration_s / 60), 1),
            "max_words_per_minute": config.max_words_per_minute,
            "length_scale": config.length_scale,
            "sentences_synthesized": recording.synthesized,
            "sentences_cached": recording.cached,
            "synthesis_seconds": round(synth_seconds, 1),
            "voice": config.voice,
            "audio_bytes": audio.stat().st_size,
        }
    )


@dg.asset_check(asset=voiceover)
def voiceover_duration_in_range(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """The spoken walkthrough lasts between min_minutes and max_minutes (the course asks for ~10)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("voiceover"))
    metadata = event.asset_materialization.metadata
    minutes = metadata["duration_min"].value
    low, high = metadata["min_minutes"].value, metadata["max_minutes"].value
    return dg.AssetCheckResult(
        passed=bool(low <= minutes <= high),
        description=f"{minutes:.2f} min (allowed {low}–{high} min)",
        metadata={"duration_min": minutes},
    )


@dg.asset_check(asset=voiceover)
def voiceover_pace(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """A lecture pace: at most max_words_per_minute spoken words per minute of audio (pauses included)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("voiceover"))
    metadata = event.asset_materialization.metadata
    pace, limit = metadata["words_per_minute"].value, metadata["max_words_per_minute"].value
    return dg.AssetCheckResult(
        passed=bool(pace <= limit),
        description=f"{pace:.1f} words per minute of audio (at most {limit:g}; slow it with length_scale)",
        metadata={"words_per_minute": pace},
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
    """An MP4 of code slides (narrated lines highlighted) and lake plots, with the voiceover and subtitles."""
    from genai_assets.teaching.slides import encode_video, probe_duration, render_slide

    config: VideoConfig = WalkthroughVideoConfig.from_context(context).to_library()
    manifest, folder, spoken = _spoken_manifest(lake)
    specs = _slide_specs(manifest)
    if len(specs) != len(spoken["slide_times"]):
        raise ValueError(
            "The voiceover was recorded from another version of the script: materialize 'voiceover'."
        )
    started = time.perf_counter()
    slides_dir = lake.folder("teaching", "slides")
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
    return dg.MaterializeResult(
        metadata={
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
    )


@dg.asset(group_name="teaching", kinds={"html"}, deps=[walkthrough_script, voiceover, *PLOT_ASSETS])
def walkthrough_page(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """``reports/walkthrough.html``: audio, transcript and a code panel that follows the narration."""
    from genai_assets.teaching.player import render_page

    manifest, folder, spoken = _spoken_manifest(lake)
    page = render_page(manifest, spoken["cues"], folder / spoken["audio"], lake.path)
    path = atomic_write_text(lake.reports_dir() / "walkthrough.html", page)
    context.log.info(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained)")
    return dg.MaterializeResult(
        metadata={
            "page": dg.MetadataValue.path(str(path)),
            "page_bytes": path.stat().st_size,
            "cues": len(spoken["cues"]),
            "duration_s": round(spoken["duration_s"], 2),
        }
    )


@dg.asset(
    group_name="teaching",
    kinds={"pytorch"},
    deps=["scratch_transformer", "rnn_baselines", "cooccurrence_embeddings", "finetuned_lm"],
    config_schema=TheoryNotesConfig.config_schema(),
)
def theory_notes(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """The course's theory questions answered with figures from our trained models (reports/theory.md)."""
    from genai_assets.teaching.theory import TheoryInputs, write_theory_notes

    config: TheoryConfig = TheoryNotesConfig.from_context(context).to_library()
    started = time.perf_counter()
    result = write_theory_notes(TheoryInputs.from_lake(lake.path), config, lake.reports_dir())
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
