"""Plots as files in the lake and as images in the Dagster UI.

Dagster renders Markdown metadata, including images given as ``data:`` URIs, so a plot is
saved as a PNG under ``reports/`` (for people and the README) and embedded in the asset's
metadata (for the UI) by the same call.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

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


def save_figure(figure: Figure, path: str | Path) -> dg.MetadataValue:
    """Write ``figure`` as PNG to ``path`` (atomically) and return Markdown metadata showing it."""
    png = figure_png_bytes(figure)
    atomic_write_bytes(path, png)
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{Path(path).stem}](data:image/png;base64,{encoded})")


def dataframe_markdown(frame, max_rows: int = 10, max_chars: int = 120) -> dg.MetadataValue:
    """A Markdown preview of a DataFrame with long cells shortened (newlines shown as ⏎)."""

    def shorten(value):
        if isinstance(value, str):
            value = value.replace("\n", " ⏎ ")
            return value if len(value) <= max_chars else value[: max_chars - 1] + "…"
        return value

    preview = frame.head(max_rows).copy()
    for column in preview.columns:
        preview[column] = preview[column].map(shorten)
    return dg.MetadataValue.md(preview.to_markdown(index=False))
