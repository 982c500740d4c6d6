"""Checks shared by the library's config dataclasses (their ``__post_init__`` calls these).

A NaN slips through range checks written as ``if value < 0`` (every comparison with NaN is
false), and ``inf`` passes ``> 0``; so every config rejects non-finite floats by name first.
"""

from __future__ import annotations

import dataclasses
import math


def non_finite_problems(config) -> list[str]:
    """One message per float field (also inside lists/tuples) of ``config`` that is NaN or ±inf."""
    problems = []
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(each, float) and not math.isfinite(each) for each in values):
            problems.append(f"{item.name} must be a finite number, got {value}")
    return problems


def raise_problems(config, problems: list[str]) -> None:
    """Raise one ``ValueError`` listing every problem, prefixed by the config's class name."""
    if problems:
        raise ValueError(f"Invalid {type(config).__name__}: " + "; ".join(problems) + ".")
