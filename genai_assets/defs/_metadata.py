"""Asset metadata helpers: plots and table previews shown in the Dagster UI.

Dagster renders Markdown metadata, including images given as ``data:`` URIs, so a plot is
saved as a PNG under ``reports/`` (for people and the README) and embedded in the asset's
metadata (for the UI) by the same call. Library code writes PNGs with
``genai_assets.plotting.write_figure`` and never sees ``MetadataValue``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from genai_assets.escaping import md_fence, md_inline, md_table_from_frame
from genai_assets.plotting import write_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def image_markdown(path: str | Path) -> dg.MetadataValue:
    """Markdown metadata that shows the PNG at ``path`` inline in the UI."""
    encoded = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return dg.MetadataValue.md(f"![{md_inline(Path(path).stem)}](data:image/png;base64,{encoded})")


def save_figure(figure: Figure, path: str | Path) -> dg.MetadataValue:
    """Write ``figure`` as PNG to ``path`` (atomically) and return Markdown metadata showing it."""
    return image_markdown(write_figure(figure, path))


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
    return dg.MetadataValue.md(md_table_from_frame(preview))


def table_markdown(frame, index: bool = False) -> dg.MetadataValue:
    """A whole DataFrame as Markdown metadata, every cell escaped (``DataFrame.to_markdown`` escapes nothing)."""
    return dg.MetadataValue.md(md_table_from_frame(frame, index=index))


def samples_markdown(
    samples, label=lambda sample: "", text=lambda sample: sample["text"]
) -> dg.MetadataValue:
    """Generated or scraped texts as Markdown metadata: a label line, then the text in a fence it cannot close.

    ``label`` returns Markdown built with ``genai_assets.escaping`` helpers; ``text`` the raw text.
    """
    blocks = [f"{label(sample)}\n\n{md_fence(text(sample))}" for sample in samples]
    return dg.MetadataValue.md("\n".join(blocks))
