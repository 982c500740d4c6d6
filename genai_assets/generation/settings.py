"""Decoding settings shared by every model this project generates from: :class:`SamplingConfig`
(declared in :mod:`genai_assets.models.sampling_settings`, re-exported here) and the defaults a model
folder saved."""

from __future__ import annotations

import json
from pathlib import Path

from genai_assets.models.sampling_settings import SamplingConfig

__all__ = ["SamplingConfig", "saved_sampling_defaults"]


def saved_sampling_defaults(folder: Path) -> dict:
    """The values written to ``generation_config.json`` (transformers saves only non-default ones)."""
    path = Path(folder) / "generation_config.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
