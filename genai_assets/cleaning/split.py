"""Train/validation/test assignment per poem, from a hash of its id (no poem in two splits).

A poem's split depends only on ``(seed, poem_id)``: re-running the pipeline, adding or removing
other poems, or re-ordering the table never moves a poem to another split, so a model evaluated
on ``test`` never saw those poems in an earlier ``train``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

SPLITS: tuple[str, ...] = ("train", "val", "test")


def split_fraction(poem_id: str, seed: int) -> float:
    """A uniform number in [0, 1) derived from sha256(``seed:poem_id``)."""
    digest = hashlib.sha256(f"{seed}:{poem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(poem_ids: Iterable[str], train_ratio: float, val_ratio: float, seed: int) -> np.ndarray:
    """``train`` if the poem's fraction < train_ratio, ``val`` below train+val, else ``test``."""
    if not (0.0 < train_ratio <= 1.0 and val_ratio >= 0.0 and train_ratio + val_ratio <= 1.0):
        raise ValueError(
            f"split ratios need 0 < train_ratio <= 1, val_ratio >= 0 and train+val <= 1; "
            f"got train_ratio={train_ratio}, val_ratio={val_ratio}."
        )
    # split_fraction for all ids at once: the digests' first 8 bytes as big-endian uint64, then the
    # same correctly rounded division by 2**64 (float64 rounding commutes with the power of two).
    heads = b"".join([hashlib.sha256(f"{seed}:{poem_id}".encode()).digest()[:8] for poem_id in poem_ids])
    fractions = np.frombuffer(heads, dtype=">u8").astype(np.float64) / 2**64
    labels = np.full(len(fractions), "test", dtype=object)
    labels[fractions < train_ratio + val_ratio] = "val"
    labels[fractions < train_ratio] = "train"
    return labels
