"""Dagster resources shared by the stages: where the data lake is, and the Hub client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from genai_assets.lake import default_lake_root
from genai_assets.publish.hub import UploadReport, upload_folder


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


class HubClient(dg.ConfigurableResource):
    """Creates repos and uploads folders to the Hugging Face Hub (or a compatible endpoint).

    Bind ``token`` to ``dg.EnvVar("HF_TOKEN")`` so the secret stays out of run config; with no
    token, assets that publish run in dry-run mode (stage only, upload nothing). The upload
    itself (and the redaction of the token from errors) is ``genai_assets.publish.hub.upload_folder``.
    """

    token: str | None = Field(default=None, description="Hub access token (write scope); from $HF_TOKEN.")
    endpoint: str | None = Field(
        default=None,
        description="Hub URL; None = huggingface_hub's default ($HF_ENDPOINT or huggingface.co).",
    )

    @property
    def has_token(self) -> bool:
        return bool(self.token)

    def api(self) -> Any:
        """The ``HfApi`` that does the work (the seam tests replace)."""
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token)

    def upload_folder(
        self, folder: Path, repo_id: str, *, private: bool, commit_message: str, repo_type: str = "model"
    ) -> UploadReport:
        """``create_repo(exist_ok=True)`` then ``upload_folder``; errors come back with the token redacted."""
        return upload_folder(
            self.api,
            folder,
            repo_id,
            token=self.token,
            private=private,
            commit_message=commit_message,
            repo_type=repo_type,
        )
