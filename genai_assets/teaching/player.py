"""``walkthrough.html``: one self-contained page — the narration audio, the transcript, and a code
panel that follows the narration sentence by sentence: each cue change shows its slide, outlines the
lines that sentence names (``[[snippet]]`` in the narration; the slide's own focus lines otherwise)
and scrolls them into the middle of the code panel.

Audio and plots are embedded as data URIs, so the file works when mailed or opened offline.
The page exposes ``window.walkthrough`` (cues, ``showAt(seconds)``) for the browser test.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

from genai_assets.teaching.slides import plot_path

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; display: grid; grid-template-columns: 38% 62%;
       grid-template-rows: auto 1fr; height: 100vh; }
header { grid-column: 1 / 3; background: #202e40; color: #fff; padding: 10px 18px; }
header h1 { font-size: 20px; margin: 0 0 6px 0; }
header audio { width: 100%; }
header nav button { margin: 0 6px 6px 0; padding: 3px 10px; border: 1px solid #8aa; background: #2e4460; color: #fff; cursor: pointer; }
header nav button.selected { background: #fff1a8; color: #202e40; }
#transcript { overflow-y: auto; padding: 10px 18px; border-right: 1px solid #ddd; line-height: 1.5; }
#transcript h2 { font-size: 15px; margin: 16px 0 4px 0; color: #202e40; }
#transcript span.cue { cursor: pointer; }
#transcript span.cue.current { background: #fff1a8; }
#code { overflow-y: auto; padding: 10px 18px; }
.slide { display: none; }
.slide.active { display: block; }
.slide .symbol { font-family: monospace; color: #555; margin-bottom: 6px; }
.slide pre { margin: 0; font-size: 13px; line-height: 1.35; overflow-x: auto; }
.slide .line { display: block; }
.slide .line.focus { background: #fff8d0; }
.slide .line.narrated { background: #ffe066; box-shadow: inset 4px 0 0 #e0a800; }
.slide .lineno { color: #999; display: inline-block; width: 3.5em; user-select: none; }
.slide img { max-width: 100%; }
"""

_SCRIPT = """
const parts = JSON.parse(document.getElementById('part-data').textContent);
let activePart = 0, activeCue = -1;
function el(part, name) { return document.getElementById(parts[part].prefix + name); }
function audioOf(part) { return document.getElementById(parts[part].audio); }
function cueAt(cues, seconds) {
  let found = 0;
  for (let i = 0; i < cues.length; i++) { if (cues[i].start <= seconds) found = i; else break; }
  return found;
}
function showAt(seconds) {
  const cues = parts[activePart].cues;
  const index = cueAt(cues, seconds);
  if (index === activeCue) return index;
  activeCue = index;
  const cue = cues[index];
  document.querySelectorAll('#transcript .cue.current').forEach(e => e.classList.remove('current'));
  const spoken = el(activePart, 'cue-' + index);
  if (spoken) { spoken.classList.add('current'); spoken.scrollIntoView({block: 'nearest'}); }
  document.querySelectorAll('.slide.active').forEach(e => e.classList.remove('active'));
  const slide = el(activePart, 'slide-' + cue.segment);
  slide.classList.add('active');
  document.body.dataset.activeSegment = String(cue.segment);
  document.body.dataset.activeCue = String(index);
  document.querySelectorAll('.line.narrated').forEach(e => e.classList.remove('narrated'));
  const narrated = (cue.lines || []).map(n => slide.querySelector('.line[data-line="' + n + '"]')).filter(e => e);
  narrated.forEach(e => e.classList.add('narrated'));
  centreLines(narrated.length ? narrated : Array.from(slide.querySelectorAll('.line.focus')));
  return index;
}
function centreLines(lines) {
  // Scroll the code panel so the middle of the lines' span is in the middle of the panel.
  if (!lines.length) return;
  const panel = document.getElementById('code');
  const box = panel.getBoundingClientRect();
  const top = lines[0].getBoundingClientRect().top, bottom = lines[lines.length - 1].getBoundingClientRect().bottom;
  panel.scrollTop += (top + bottom) / 2 - (box.top + box.bottom) / 2;
}
function selectPart(part) {
  parts.forEach((p, i) => {
    const audio = audioOf(i);
    if (i !== part) audio.pause();
    audio.hidden = i !== part;
    document.getElementById('transcript-' + i).hidden = i !== part;
    document.getElementById('part-button-' + i).classList.toggle('selected', i === part);
  });
  activePart = part; activeCue = -1;
  document.body.dataset.activePart = String(part);
  window.walkthrough.cues = parts[part].cues;
  return showAt(audioOf(part).currentTime);
}
parts.forEach((p, i) => {
  const audio = audioOf(i);
  audio.addEventListener('timeupdate', () => { if (i === activePart) showAt(audio.currentTime); });
  audio.addEventListener('seeked', () => { if (i === activePart) showAt(audio.currentTime); });
  document.getElementById('part-button-' + i).addEventListener('click', () => selectPart(i));
});
document.querySelectorAll('#transcript .cue').forEach(e => e.addEventListener('click', () => {
  const audio = audioOf(activePart);
  audio.currentTime = parts[activePart].cues[Number(e.dataset.index)].start + 0.01; audio.play();
}));
window.walkthrough = {parts: parts, cues: parts[0].cues, showAt: showAt, selectPart: selectPart};
selectPart(0);
"""


def _code_html(target: dict) -> str:
    """The symbol's lines as Pygments HTML, one ``span.line`` per source line (focus lines marked)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    highlighted = highlight(target["source"], PythonLexer(), HtmlFormatter(nowrap=True, style="friendly"))
    focus = set(target["focus_lines"])
    rows = []
    for offset, line in enumerate(highlighted.rstrip("\n").split("\n")):
        number = target["start"] + offset
        classes = "line focus" if number in focus else "line"
        rows.append(
            f'<span class="{classes}" data-line="{number}"><span class="lineno">{number}</span>{line}</span>'
        )
    return "<pre>" + "".join(rows) + "</pre>"


def cues_with_lines(manifest: dict, cues: list[dict]) -> list[dict]:
    """``cues`` with ``lines``: the file lines each sentence names (cues are spoken in script order)."""
    per_sentence = [
        lines
        for section in manifest["sections"]
        for segment in section["segments"]
        for lines in segment.get("sentence_focus_lines") or [[] for _ in segment["sentences"]]
    ]
    if len(per_sentence) != len(cues):
        raise ValueError(
            "The voiceover was recorded from another version of the script: materialize 'voiceover'."
        )
    return [{**cue, "lines": lines} for cue, lines in zip(cues, per_sentence, strict=True)]


@dataclass
class PagePart:
    """One narrated part on the page: its resolved script, its cues and its audio."""

    manifest: dict
    cues: list[dict]  # {index, segment, start, end, text, section}
    audio_path: Path
    duration_s: float = 0.0


def _part_html(part: PagePart, number: int, lake_root: str | Path) -> tuple[str, str]:
    """(transcript HTML, slides HTML) of one part; part 1's ids are unprefixed, part n's start "p<n>-"."""
    prefix = "" if number == 0 else f"p{number + 1}-"
    cues = part.cues
    slides, transcript = [], [f'<div class="part" id="transcript-{number}">']
    segment_index = 0
    for section_index, section in enumerate(part.manifest["sections"]):
        transcript.append(f"<h2>{section_index + 1}. {html.escape(section['title'])}</h2><p>")
        for segment in section["segments"]:
            target = segment["target"]
            if target["kind"] == "code":
                label = f"{target['symbol']} (lines {target['start']}–{target['end']})"
                body = _code_html(target)
            else:
                png = plot_path(target, lake_root).read_bytes()
                label = f"{target['path']} (from asset {target['asset']})"
                body = f'<img alt="{html.escape(target["path"])}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            slides.append(
                f'<div class="slide" id="{prefix}slide-{segment_index}"><div class="symbol">{html.escape(label)}</div>{body}</div>'
            )
            segment_index += 1
        for cue in cues:
            if cue["section"] == section_index:
                transcript.append(
                    f'<span class="cue" id="{prefix}cue-{cue["index"]}" data-index="{cue["index"]}">{html.escape(cue["text"])}</span> '
                )
        transcript.append("</p>")
    transcript.append("</div>")
    return "".join(transcript), "".join(slides)


def _audio_uri(path: Path) -> str:
    mime = "audio/ogg" if path.suffix == ".ogg" else "audio/mpeg"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def render_page(parts: list[PagePart], lake_root: str | Path) -> str:
    """The whole page as one HTML string: a part selector, then per part its audio, transcript and slides.

    Part 1 keeps the ids ``narration``, ``cue-N``, ``slide-N``; part n uses ``narration-n``,
    ``p<n>-cue-N``, ``p<n>-slide-N``.
    """
    from pygments.formatters import HtmlFormatter

    transcripts, slides, audios, buttons, data = [], [], [], [], []
    for number, part in enumerate(parts):
        cues = cues_with_lines(part.manifest, part.cues)
        transcript, part_slides = _part_html(
            PagePart(part.manifest, cues, part.audio_path), number, lake_root
        )
        transcripts.append(transcript)
        slides.append(part_slides)
        audio_id = "narration" if number == 0 else f"narration-{number + 1}"
        audios.append(
            f'<audio id="{audio_id}" controls preload="auto" src="{_audio_uri(Path(part.audio_path))}"></audio>'
        )
        buttons.append(
            f'<button id="part-button-{number}">Part {number + 1}: {html.escape(part.manifest["title"])}</button>'
        )
        data.append({"prefix": "" if number == 0 else f"p{number + 1}-", "audio": audio_id, "cues": cues})
    part_json = json.dumps(data).replace("</", "<\\/")
    title = parts[0].manifest["title"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}{HtmlFormatter(style="friendly").get_style_defs(".slide pre")}</style></head>
<body>
<header><h1>{html.escape(title)}</h1>
<nav id="parts">{"".join(buttons)}</nav>
{"".join(audios)}</header>
<section id="transcript">{"".join(transcripts)}</section>
<section id="code">{"".join(slides)}</section>
<script type="application/json" id="part-data">{part_json}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
