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
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
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
    return meta_sizes(build)[0]


def meta_sizes(build: Callable[[], object]) -> tuple[int, int]:
    """``(parameter values, buffer values)`` of the model ``build()`` makes, built on the ``meta``
    device (shapes only, no memory): buffers such as a sinusoidal position table count too."""
    import torch

    with torch.device("meta"):
        model = build()
    parameters = sum(parameter.numel() for parameter in model.parameters())
    return parameters, sum(buffer.numel() for buffer in model.buffers())


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
    parameters, buffers = meta_sizes(build)
    # Buffers count too: a sinusoidal table is no parameter and is not stored, yet a crafted
    # block_size makes it gigabytes (an honest model's buffers fit in the slack).
    implied = parameters + buffers
    if implied > stored * SLACK_FACTOR + SLACK_ABSOLUTE:
        raise ModelSizeError(
            f"{config_path} describes a model with {parameters:,} parameters and {buffers:,} buffer values "
            f"but the weights in {folder} hold {stored:,} values; refusing to allocate it "
            "(a crafted or mismatched config.json)."
        )
    return parameters


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


# -- memory estimate before a model or batch is built ------------------------------------------

#: Environment variable capping the memory a training run may plan for (GiB); default: what the
#: machine (or the CUDA device) has available now.
MEMORY_CAP_ENV = "GENAI_MEMORY_CAP_GB"
_GIB = 1 << 30


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training run will need, by part, and which config fields drive each part."""

    parts: dict[str, int]  # "parameters", "gradients", "optimizer_state", "buffers", "activations", "logits"
    fields: dict[str, str]  # part -> the config fields that set its size

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        shown = ", ".join(f"{part} {size / _GIB:.2f} GiB" for part, size in self.parts.items())
        return f"{self.total / _GIB:.2f} GiB ({shown})"


def estimate_gpt_training_memory(config, batch_size: int, bytes_per_value: int = 4) -> MemoryEstimate:
    """Memory of training :class:`~genai_assets.models.transformer.GPT` (``config``: a GPTConfig)
    with AdamW on ``batch_size`` sequences of ``block_size`` tokens, before building anything.

    Parameters and buffers are counted exactly on the ``meta`` device; gradients and AdamW's two
    moments are one and two more copies of the parameters; activations kept for the backward pass
    follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
    Models", §4.1): ``T·B·C·(34 + 5·nh·T/C)`` bytes per layer at 2 bytes a value, scaled to
    ``bytes_per_value``; the logits (``B·T·V``) are held three times (logits, log-softmax, grad).
    An estimate for refusing absurd settings, not a profiler.
    """
    from genai_assets.models.transformer import GPT

    parameters, buffers = meta_sizes(lambda: GPT(config))
    tokens = batch_size * config.block_size
    per_layer = tokens * config.n_embd * (34 + 5 * config.n_head * config.block_size / config.n_embd)
    parts = {
        "parameters": parameters * bytes_per_value,
        "gradients": parameters * bytes_per_value,
        "optimizer_state": 2 * parameters * bytes_per_value,
        "buffers": buffers * bytes_per_value,
        "activations": int(per_layer * config.n_layer * bytes_per_value / 2),
        "logits": 3 * tokens * config.vocab_size * bytes_per_value,
    }
    model_fields = "n_layer, n_embd, ffn_multiplier, vocab_size"
    fields = {
        "parameters": model_fields,
        "gradients": model_fields,
        "optimizer_state": model_fields,
        "buffers": "block_size (sinusoidal position table), n_embd",
        "activations": "batch_size, block_size, n_layer, n_embd, n_head",
        "logits": "batch_size, block_size, vocab_size",
    }
    return MemoryEstimate(parts, fields)


def available_memory(device: str = "cpu") -> tuple[int, str]:
    """``(bytes, what they are)``: the ``GENAI_MEMORY_CAP_GB`` cap if set, else the device's
    free memory (CUDA: ``torch.cuda.mem_get_info``; CPU: ``MemAvailable`` in /proc/meminfo)."""
    cap = os.environ.get(MEMORY_CAP_ENV, "").strip()
    if cap:
        try:
            return int(float(cap) * _GIB), f"the ${MEMORY_CAP_ENV} cap"
        except ValueError:
            raise ModelSizeError(f"${MEMORY_CAP_ENV}={cap!r} is not a number of GiB.") from None
    if str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return free, f"free memory on {device}"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "available memory"
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "physical memory"


def check_memory(estimate: MemoryEstimate, what: str, device: str = "cpu") -> MemoryEstimate:
    """Raise :class:`ModelSizeError` naming the largest part's fields if ``estimate`` exceeds
    :func:`available_memory`; else return it (for logs and metadata)."""
    budget, source = available_memory(device)
    if estimate.total > budget:
        largest = max(estimate.parts, key=estimate.parts.__getitem__)
        raise ModelSizeError(
            f"{what} needs an estimated {estimate.describe()}, more than {source} "
            f"({budget / _GIB:.2f} GiB); the largest part is {largest}: lower {estimate.fields[largest]}."
        )
    return estimate
