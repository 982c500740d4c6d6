"""Checks shared by the library's config dataclasses (their ``__post_init__`` calls these).

A field's range is declared with the field, as data, in the same ``Annotated`` that holds its
description: ``top_k: Annotated[int, Ge(1), "rows of the top-words tables"] = 20``. The bounds
are ``annotated_types``' (``Ge``, ``Gt``, ``Le``, ``Lt``, ``Interval``: the vocabulary pydantic
and msgspec read too); :func:`range_problems` checks them and the Launchpad shows them beside
the description (:func:`describe_bounds`), so a range is written once. Checks that relate two
fields stay in code, in the config's own ``__post_init__``.

A NaN slips through range checks written as ``if value < 0`` (every comparison with NaN is
false), and ``inf`` passes ``> 0``; so :func:`range_problems` refuses a non-finite float in any
field it checks, bounded or not, naming it ("must be a finite number") before any bound.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import typing
from collections.abc import Iterable

from annotated_types import BaseMetadata, Ge, GroupedMetadata, Gt, Interval, Le, Lt

__all__ = ["Ge", "Gt", "Interval", "Le", "Lt"]  # re-exported: the configs declare their bounds with these


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


def field_descriptions(config_class: type) -> dict[str, str]:
    """``{field: description}`` from each field's ``Annotated[type, ..., "description"]`` (the
    Launchpad's text; a subclass that redeclares a field to change its default keeps the base's
    description unless it gives one)."""
    return _declared(config_class, lambda extras: " ".join(e for e in extras if isinstance(e, str)))


@functools.cache
def field_bounds(config_class: type) -> dict[str, list[BaseMetadata]]:
    """``{field: [Ge/Gt/Le/Lt, ...]}`` declared in each field's ``Annotated`` (``Interval`` split
    into its two bounds; inherited like :func:`field_descriptions`). Cached: every config's
    ``__post_init__`` reads it."""
    return _declared(config_class, _bounds_in)


def _bounds_in(extras: tuple) -> list[BaseMetadata]:
    bounds: list[BaseMetadata] = []
    for extra in extras:
        if isinstance(extra, GroupedMetadata):
            bounds.extend(extra)  # Interval(gt=0, le=1) → Gt(0), Le(1)
        elif isinstance(extra, (Ge, Gt, Le, Lt)):
            bounds.append(extra)
    return bounds


def _declared(config_class: type, pick) -> dict:
    """``{field: pick(its Annotated extras)}`` over the dataclass and its dataclass bases, base
    first, so a subclass's non-empty pick replaces the base's and an empty one keeps it."""
    result = {}
    for klass in reversed(config_class.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        hints = typing.get_type_hints(klass, include_extras=True)
        for name in vars(klass).get("__annotations__", {}):
            picked = pick(getattr(hints.get(name), "__metadata__", ()))
            if picked:
                result[name] = picked
    return result


def describe_bounds(bounds: list[BaseMetadata]) -> str:
    """``[Ge(1)]`` → ``">= 1"``; ``[Gt(0), Le(1)]`` → ``"in (0, 1]"`` (a lower and an upper bound)."""
    lower = next((bound for bound in bounds if isinstance(bound, (Ge, Gt))), None)
    upper = next((bound for bound in bounds if isinstance(bound, (Le, Lt))), None)
    if lower is not None and upper is not None:
        opening = "[" if isinstance(lower, Ge) else "("
        closing = "]" if isinstance(upper, Le) else ")"
        return f"in {opening}{_limit(lower)}, {_limit(upper)}{closing}"
    return " and ".join(f"{_BOUND_KINDS[type(bound)][2]} {_limit(bound)}" for bound in bounds)


def range_problems(config, names: Iterable[str] | None = None) -> list[str]:
    """One message per field of ``config`` (``names``: only these; default all) outside its range:
    a float that is NaN or ±inf (also inside a list/tuple), else one outside the bounds its
    declaration gives (``"top_k must be >= 1, got 0"``); and an integer field named in
    :data:`UPPER_BOUNDS` above that ceiling."""
    declared = field_bounds(type(config))
    problems = []
    for name in names if names is not None else [item.name for item in dataclasses.fields(config)]:
        value = getattr(config, name)
        bounds = declared.get(name, [])
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(each, float) and not math.isfinite(each) for each in values):
            problems.append(f"{name} must be a finite number, got {value}")  # NaN fails every bound
        elif not all(_within(each, bound) for each in values for bound in bounds):
            problems.append(f"{name} must be {describe_bounds(bounds)}, got {value}")
        ceiling = UPPER_BOUNDS.get(name)
        if ceiling is not None and isinstance(value, int) and not isinstance(value, bool) and value > ceiling:
            problems.append(f"{name} must be <= {ceiling:,}, got {value:,}")
    return problems


#: Each bound type: the attribute holding its limit, the comparison a value must pass, its symbol.
_BOUND_KINDS = {
    Ge: ("ge", operator.ge, ">="),
    Gt: ("gt", operator.gt, ">"),
    Le: ("le", operator.le, "<="),
    Lt: ("lt", operator.lt, "<"),
}


def _limit(bound: BaseMetadata):
    return getattr(bound, _BOUND_KINDS[type(bound)][0])


def _within(value, bound: BaseMetadata) -> bool:
    return _BOUND_KINDS[type(bound)][1](value, _limit(bound))  # False for NaN, whatever the bound
