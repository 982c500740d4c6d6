"""Named decoding presets: ``genai-assets generate --preset NAME`` and ``generated_poems``' ``preset``.

``course`` is the course's final generation setup for the fine-tuned GPT-2 (the seed notebook's
last ``model.generate`` call): sampling at temperature 1.0 with top-k 50 and nucleus 0.95, a
repetition penalty of 1.2, no repeated bigram, three poems per prompt. A preset fills only the
values it names; flags given on the command line win over it, and the model folder's saved
``generation_config.json`` (then ``SamplingConfig``'s defaults) fills the rest (e.g. the length).
"""

from __future__ import annotations

SAMPLING_PRESETS: dict[str, dict] = {
    "course": {
        "do_sample": True,
        "temperature": 1.0,
        "top_k": 50,
        "top_p": 0.95,
        "repetition_penalty": 1.2,
        "no_repeat_ngram_size": 2,
        "num_return_sequences": 3,
    },
    # Deterministic: always the most likely token (the penalties still apply, as in transformers).
    "greedy": {"do_sample": False, "repetition_penalty": 1.2, "no_repeat_ngram_size": 2},
}


def sampling_preset(name: str) -> dict:
    """The values of preset ``name`` (a copy); a clear error for an unknown name."""
    if name not in SAMPLING_PRESETS:
        raise ValueError(f"Unknown sampling preset {name!r}; choose one of {', '.join(SAMPLING_PRESETS)}.")
    return dict(SAMPLING_PRESETS[name])


def merge_sampling_values(preset: str | None, explicit: dict) -> dict:
    """``explicit`` values (None = not given) over preset ``preset``'s (none if empty/None)."""
    values = sampling_preset(preset) if preset else {}
    values.update({key: value for key, value in explicit.items() if value is not None})
    return values
