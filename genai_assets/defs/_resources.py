"""Resources shared by every stage: where the data lake is, and how to find things in it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from genai_assets.lake import default_lake_root


class DataLake(dg.ConfigurableResource):
    """The data lake root and its well-known sub-folders (see ``genai_assets.lake``)."""

    root: str = Field(
        default_factory=lambda: str(default_lake_root()),
        description="Data lake root; defaults to $GENAI_DATA_LAKE or ./data_lake.",
    )

    @property
    def path(self) -> Path:
        return Path(self.root)

    def folder(self, *parts: str) -> Path:
        """``<root>/<parts...>``, created if missing."""
        folder = self.path.joinpath(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def model_dir(self, asset_name: str) -> Path:
        """Where the Hugging Face folder of a model asset lives (not created: it is swapped in whole)."""
        return self.folder("models") / asset_name

    def checkpoint_dir(self, asset_name: str) -> Path:
        return self.folder("checkpoints", asset_name)

    def reports_dir(self) -> Path:
        return self.folder("reports")

    def exports_dir(self) -> Path:
        return self.folder("exports")

    def table_path(self, asset_name: str, partition: str | None = None) -> Path:
        """Path the Parquet IO manager uses for a table asset (for readers outside Dagster)."""
        base = self.path / asset_name
        return base / f"{partition}.parquet" if partition else base.with_suffix(".parquet")
