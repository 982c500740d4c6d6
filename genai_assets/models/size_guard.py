"""Refuse a model folder whose ``config.json`` describes a far bigger model than its weights hold.

A crafted ``config.json`` (``vocab_size: 10**9``, ``n_embd: 10**6``) would make the model
constructor allocate gigabytes before the weights are ever read: an out-of-memory kill instead
of an error. So, before building anything for real:

1. layer counts are bounded (building millions of modules is slow even without memory);
2. the model is built on PyTorch's ``meta`` device (shapes only, no memory) and its parameter
   count compared with the number of values stored in the folder's ``*.safetensors`` headers
   (read without loading the tensors).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from pathlib import Path

MAX_LAYERS = 1024  # far above any model this project trains or loads
# Allowed excess of parameters over stored values: tied weights are stored once; a little slack
# for buffers registered as parameters. A crafted config is off by orders of magnitude.
SLACK_FACTOR = 1.5
SLACK_ABSOLUTE = 1_000_000
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
LAYER_KEYS = (
    "n_layer",
    "n_layers",
    "num_layers",
    "num_hidden_layers",
    "n_encoder_layers",
    "n_decoder_layers",
    "num_encoder_layers",
    "num_decoder_layers",
)


class ModelSizeError(ValueError):
    """The config describes a model the weights cannot be (too big, or too many layers)."""


def stored_values(folder: str | Path) -> int:
    """Number of tensor values in the folder's ``*.safetensors`` files, from their headers only."""
    total = 0
    paths = sorted(Path(folder).glob("*.safetensors"))
    if not paths:
        raise FileNotFoundError(f"{folder} has no *.safetensors weights.")
    for path in paths:
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise ModelSizeError(f"{path} is shorter than a safetensors header.")
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES:
                raise ModelSizeError(f"{path} declares a {length}-byte header; not a safetensors file.")
            try:
                header = json.loads(handle.read(length))
            except ValueError as error:
                raise ModelSizeError(f"{path} has an unreadable header: {error}") from None
        for name, entry in header.items():
            if name != "__metadata__":
                total += math.prod(int(size) for size in entry["shape"])
    return total


def check_layer_counts(config: dict, config_path: str | Path) -> None:
    """Refuse absurd layer counts before any module is built."""
    for key in LAYER_KEYS:
        value = config.get(key)
        if isinstance(value, int) and value > MAX_LAYERS:
            raise ModelSizeError(f"{config_path}: {key}={value} is above the limit of {MAX_LAYERS} layers.")


def meta_parameter_count(build: Callable[[], object]) -> int:
    """Parameters of the model ``build()`` makes, built on the ``meta`` device (no memory used)."""
    import torch

    with torch.device("meta"):
        model = build()
    return sum(parameter.numel() for parameter in model.parameters())


def check_config_fits_weights(
    folder: str | Path, build: Callable[[], object], config: dict | None = None
) -> int:
    """Raise :class:`ModelSizeError` if the model ``build()`` makes is much larger than the stored weights.

    ``config``: the parsed ``config.json``, for the layer-count check. Returns the parameter count.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if config is not None:
        check_layer_counts(config, config_path)
    stored = stored_values(folder)
    implied = meta_parameter_count(build)
    if implied > stored * SLACK_FACTOR + SLACK_ABSOLUTE:
        raise ModelSizeError(
            f"{config_path} describes a model with {implied:,} parameters but the weights in {folder} hold "
            f"{stored:,} values; refusing to allocate it (a crafted or mismatched config.json)."
        )
    return implied


def check_transformers_folder(folder: str | Path) -> int:
    """:func:`check_config_fits_weights` for a ``transformers`` causal-LM folder (``AutoConfig``)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = Path(folder)
    raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ModelSizeError(f"{folder / 'config.json'} is not a JSON object.")
    check_layer_counts(raw, folder / "config.json")
    config = AutoConfig.from_pretrained(str(folder))
    return check_config_fits_weights(folder, lambda: AutoModelForCausalLM.from_config(config))
