"""Plots as PNG files in the lake (for people and the README), with no Dagster in sight.

Library code draws on :func:`new_figure` and writes with :func:`write_figure`; the Dagster layer
(``genai_assets.defs._metadata.save_figure``) writes the same PNG and embeds it in an asset's
metadata for the UI.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from genai_assets.lake import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(width: float = 7.0, height: float = 4.0) -> Figure:
    """A matplotlib figure on the headless Agg backend (no display, no pyplot global state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def figure_png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as PNG to ``path`` (atomically) and return the path."""
    atomic_write_bytes(path, figure_png_bytes(figure))
    return Path(path)
