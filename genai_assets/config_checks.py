"""Checks shared by the library's config dataclasses (their ``__post_init__`` calls these).

A NaN slips through range checks written as ``if value < 0`` (every comparison with NaN is
false), and ``inf`` passes ``> 0``; so every config rejects non-finite floats by name first.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable


def non_finite_problems(config) -> list[str]:
    """One message per float field (also inside lists/tuples) of ``config`` that is NaN or ±inf."""
    problems = []
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(each, float) and not math.isfinite(each) for each in values):
            problems.append(f"{item.name} must be a finite number, got {value}")
    return problems


def declared_values(config, declaring_class: type) -> dict:
    """``{field: value}`` of ``config`` for the fields ``declaring_class`` declares (a base dataclass
    of ``config``'s class): the part of a stage config that a model or the loop takes."""
    return {item.name: getattr(config, item.name) for item in dataclasses.fields(declaring_class)}


def raise_problems(config, problems: list[str]) -> None:
    """Raise one ``ValueError`` listing every problem, prefixed by the config's class name."""
    if problems:
        raise ValueError(f"Invalid {type(config).__name__}: " + "; ".join(problems) + ".")


#: Upper bounds of size, step and length fields, by field name, wherever they appear. Far above
#: anything this project runs (the gpu presets: block_size 256, n_embd 384, 6 layers, batch 64),
#: low enough that a typo (``block_size: 1e9``, ``max_steps: 1e21``) is refused when the config is
#: read, before anything is allocated or a loop starts that would never end.
UPPER_BOUNDS: dict[str, int] = {
    # model shapes
    "block_size": 1 << 16,
    "vocab_size": 1 << 20,
    "n_embd": 1 << 14,
    "d_model": 1 << 14,
    "hidden_size": 1 << 14,
    "n_head": 256,
    "n_layer": 256,
    "n_encoder_layers": 256,
    "n_decoder_layers": 256,
    "ffn_multiplier": 64,
    "max_line_tokens": 1 << 16,
    # batches and steps
    "batch_size": 1 << 16,
    "grad_accum_steps": 1 << 12,
    "max_steps": 10_000_000,
    "warmup_steps": 10_000_000,
    "eval_every": 10_000_000,
    "eval_batches": 10_000_000,
    "sample_every": 10_000_000,
    "checkpoint_every": 10_000_000,
    "num_threads": 1024,
    # generation and sample counts
    "max_new_tokens": 1 << 16,
    "sample_max_new_tokens": 1 << 16,
    "num_return_sequences": 1024,
    "n_examples": 10_000,
    "no_repeat_ngram_size": 1024,
    "top_k": 1 << 20,
}


def upper_bound_problems(config, names: Iterable[str] | None = None) -> list[str]:
    """One message per integer field of ``config`` named in :data:`UPPER_BOUNDS` that is above it
    (``names``: only these fields; default all)."""
    problems = []
    for name in names if names is not None else [item.name for item in dataclasses.fields(config)]:
        bound = UPPER_BOUNDS.get(name)
        value = getattr(config, name)
        if bound is not None and isinstance(value, int) and not isinstance(value, bool) and value > bound:
            problems.append(f"{name} must be <= {bound:,}, got {value:,}")
    return problems
