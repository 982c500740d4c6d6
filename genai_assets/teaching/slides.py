"""Slides for the walkthrough video: code (Pygments, narrated lines highlighted) or a lake plot.

One 1280×720 PNG per segment of the script; :func:`encode_video` joins them with ffmpeg's concat
demuxer (each image held for its segment's spoken duration), adds the narration and soft subtitles.
Still images at a low frame rate with ``-tune stillimage`` keep the encode to seconds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from genai_assets.config_checks import Interval, raise_problems, range_problems
from genai_assets.lake import atomic_path
from genai_assets.teaching.script import SLIDE_CODE_LINES
from genai_assets.teaching.voice import run_ffmpeg

WIDTH, HEIGHT = 1280, 720
HEADER = 64  # pixels of title bar
MAX_CODE_LINES = SLIDE_CODE_LINES  # a longer symbol is windowed to show all its focus lines
BACKGROUND = (250, 250, 250)
MONO_FONT = "DejaVu Sans Mono"


@dataclass
class VideoConfig:
    """How the walkthrough video is encoded (slides are 1280×720 stills)."""

    fps: Annotated[
        int,
        Interval(ge=1, le=30),
        "output frame rate: stills need few frames; slide changes land on 1/fps steps",
    ] = 2

    def __post_init__(self) -> None:
        raise_problems(self, range_problems(self))


class MissingPlotError(FileNotFoundError):
    """A plot the narration shows is not in the lake; the message names the asset to materialize."""


@dataclass
class SlideSpec:
    title: str  # section title
    subtitle: str  # the symbol and its lines, or the plot's file
    target: dict  # a segment target from script_manifest()


def code_window(source: str, start: int, focus_lines: list[int]) -> tuple[list[str], int]:
    """At most MAX_CODE_LINES of ``source`` (file line ``start`` first) showing every focus line.

    The narration's resolution refuses a slide whose focus lines span more than MAX_CODE_LINES, so
    they always fit; up to a third of the spare lines go above the first one, for context.
    """
    lines = source.splitlines()
    if len(lines) <= MAX_CODE_LINES:
        return lines, start
    if not focus_lines:
        return lines[:MAX_CODE_LINES], start
    anchor, last = focus_lines[0] - start, focus_lines[-1] - start  # 0-based within the symbol
    spare = max(0, MAX_CODE_LINES - (last - anchor + 1))
    first = max(0, min(anchor - min(spare // 3, anchor), len(lines) - MAX_CODE_LINES))
    return lines[first : first + MAX_CODE_LINES], start + first


def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(name, size)
    except OSError:  # no DejaVu on this machine: PIL's built-in bitmap font still renders
        return ImageFont.load_default()


def _canvas(spec: SlideSpec):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, WIDTH, HEADER], fill=(32, 46, 64))
    draw.text((24, 8), spec.title, fill=(255, 255, 255), font=_font(24, bold=True))
    draw.text((24, 38), spec.subtitle, fill=(180, 200, 220), font=_font(16))
    return image


def _paste_fitted(image, content) -> None:
    from PIL import Image

    box_w, box_h = WIDTH - 32, HEIGHT - HEADER - 24
    scale = min(box_w / content.width, box_h / content.height, 1.25)
    if scale != 1.0:
        size = (max(1, int(content.width * scale)), max(1, int(content.height * scale)))
        content = content.resize(size, Image.LANCZOS)
    image.paste(content, (16, HEADER + 12))


def render_code_image(source: str, start: int, focus_lines: list[int]):
    """Pygments' ImageFormatter: Python highlighted, file line numbers, focus lines on yellow."""
    from PIL import Image
    from pygments import highlight
    from pygments.formatters import ImageFormatter
    from pygments.lexers import PythonLexer

    lines, first = code_window(source, start, focus_lines)
    relative = [line - first + 1 for line in focus_lines if first <= line < first + len(lines)]
    formatter = ImageFormatter(
        font_name=MONO_FONT,
        font_size=15,
        line_numbers=True,
        line_number_start=first,
        hl_lines=relative,
        hl_color="#fff1a8",
        style="friendly",
        image_pad=6,
    )
    png = highlight("\n".join(lines) + "\n", PythonLexer(), formatter)
    return Image.open(io.BytesIO(png)).convert("RGB")


def render_slide(spec: SlideSpec, lake_root: str | Path, target_png: str | Path) -> Path:
    """Write one slide PNG; a missing plot raises :class:`MissingPlotError` naming its asset."""
    from PIL import Image

    image = _canvas(spec)
    target = spec.target
    if target["kind"] == "code":
        content = render_code_image(target["source"], target["start"], list(target["focus_lines"]))
    else:
        content = Image.open(plot_path(target, lake_root)).convert("RGB")
    _paste_fitted(image, content)
    with atomic_path(target_png) as tmp:
        image.save(tmp, format="PNG")
    return Path(target_png)


def plot_path(target: dict, lake_root: str | Path) -> Path:
    path = Path(lake_root) / target["path"]
    if not path.is_file():
        raise MissingPlotError(
            f"The narration shows the plot {target['path']}, which is not in the lake ({path}): "
            f"materialize the asset '{target['asset']}' first."
        )
    return path


def missing_plots(targets: list[dict], lake_root: str | Path) -> list[str]:
    """Messages for every plot target whose file the lake lacks (empty when all are there)."""
    problems = []
    for target in targets:
        if target["kind"] == "plot":
            try:
                plot_path(target, lake_root)
            except MissingPlotError as error:
                problems.append(str(error))
    return problems


def encode_video(
    slide_pngs: list[Path],
    slide_starts: list[float],
    duration_s: float,
    audio: str | Path,
    subtitles_srt: str | Path,
    target: str | Path,
    fps: int = 2,
) -> Path:
    """MP4 (H.264 + AAC + mov_text subtitles): slide i from ``slide_starts[i]`` to the next start."""
    if len(slide_pngs) != len(slide_starts) or not slide_pngs:
        raise ValueError("need one start time per slide, and at least one slide")
    target = Path(target)
    ends = [*slide_starts[1:], duration_s]
    lines = ["ffconcat version 1.0"]
    for png, start, end in zip(slide_pngs, [0.0, *slide_starts[1:]], ends, strict=True):
        lines += [f"file '{Path(png).resolve()}'", f"duration {max(end - start, 0.05):.3f}"]
    lines.append(f"file '{Path(slide_pngs[-1]).resolve()}'")  # the demuxer needs the last file twice
    # An explicit -t, not -shortest: with a subtitle stream -shortest never ends (ffmpeg waits on it).
    with atomic_path(target.with_suffix(".ffconcat")) as concat_file:
        concat_file.write_text("\n".join(lines) + "\n")
        with atomic_path(target) as tmp:
            run_ffmpeg(
                [
                    "-f", "concat", "-safe", "0", "-i", str(concat_file),
                    "-i", str(audio),
                    "-i", str(subtitles_srt),
                    "-map", "0:v", "-map", "1:a", "-map", "2:s",
                    "-vf", f"fps={fps},format=yuv420p",
                    "-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage", "-crf", "28",
                    "-c:a", "aac", "-b:a", "64k",
                    "-c:s", "mov_text", "-metadata:s:s:0", "language=eng",
                    "-movflags", "+faststart", "-t", f"{duration_s:.3f}", "-f", "mp4", str(tmp),
                ]
            )  # fmt: skip
    target.with_suffix(".ffconcat").unlink(missing_ok=True)
    return target


def probe_duration(path: str | Path) -> float:
    """Duration of a media file in seconds, read from ffmpeg's own report (no ffprobe bundled)."""
    import re
    import subprocess

    from genai_assets.teaching.voice import ffmpeg_exe

    completed = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    match = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", completed.stderr)
    if not match:
        raise RuntimeError(f"ffmpeg could not read a duration from {path}: {completed.stderr[-500:]}")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
