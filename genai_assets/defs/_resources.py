"""Dagster resources shared by the stages: where the data lake is, and the Hub client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from genai_assets.lake import default_lake_root, open_lake, recover_interrupted_swap, recover_lake
from genai_assets.publish.hub import TOKEN_ENV_VAR, UploadReport, clean_token, hub_endpoint, upload_folder


class DataLake(dg.ConfigurableResource):
    """The data lake root and its well-known sub-folders (see ``genai_assets.lake``)."""

    root: str = Field(
        default_factory=lambda: str(default_lake_root()),
        description="Data lake root; defaults to $GENAI_DATA_LAKE or ./data_lake.",
    )

    @property
    def path(self) -> Path:
        return Path(self.root)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """On every run start: check the root is our lake (mark or adopt it, else refuse), then recover
        folder swaps a killed run left half done and clean stale temp files, logging each file."""
        info = context.log.info if context.log is not None else None
        warning = context.log.warning if context.log is not None else None
        open_lake(self.path, log=info)
        recover_lake(self.path, log=warning)

    def folder(self, *parts: str) -> Path:
        """``<root>/<parts...>``, created if missing."""
        folder = self.path.joinpath(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def model_dir(self, asset_name: str) -> Path:
        """Where the Hugging Face folder of a model asset lives (not created: it is swapped in whole)."""
        folder = self.folder("models") / asset_name
        recover_interrupted_swap(folder)  # a reader must not see "missing" when only the rename was lost
        return folder

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
    """Creates repos and uploads folders to the Hugging Face Hub (or the endpoint in ``$HF_ENDPOINT``).

    It has no config fields on purpose: a resource field can be set in run config (the Launchpad),
    and a run-config ``endpoint`` or ``token`` would let anyone who can launch a run send
    ``Bearer <HF_TOKEN>`` to their own server. The token is read from ``dg.EnvVar("HF_TOKEN")`` when
    used (trailing ``\\r\\n`` stripped), the endpoint from ``$HF_ENDPOINT`` (see
    ``genai_assets.publish.hub.hub_endpoint``). With no token, assets that publish run in dry-run
    mode (stage only, upload nothing).
    """

    @property
    def token(self) -> str | None:
        return clean_token(dg.EnvVar(TOKEN_ENV_VAR).get_value())

    @property
    def endpoint(self) -> str | None:
        return hub_endpoint()

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
