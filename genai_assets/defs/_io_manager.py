"""The one Parquet IO manager every table asset goes through.

Files: ``<root>/<asset path>.parquet`` for unpartitioned assets and
``<root>/<asset path>/<partition>.parquet`` for partitioned ones (``raw_poems/gutenberg.parquet``).

Writes are atomic (temp file + rename). Loading several partitions at once (an unpartitioned
asset downstream of ``raw_poems``) returns ``{partition: DataFrame}`` for the partitions that
have been materialized and logs the ones that have not: the offline demo materializes only the
bundled sites, and the cleansing step should run on what exists rather than fail.
Models never pass through here: model assets write Hugging Face folders themselves.

Why not ``dg.UPathIOManager`` (same file layout, and ``dump_to_path`` could write atomically):
its multi-partition load skips a missing partition only when every downstream ``AssetIn`` sets
``allow_missing_partitions`` metadata, returns the bare DataFrame instead of ``{partition: frame}``
whenever exactly one partition key is requested (so the type an asset receives would depend on
how many sites exist), and has no "nothing materialized yet" error. The rule here is one line
instead: a run without a partition key gets the dict of what exists. Remote storage (S3/GCS) is
not needed by this project; if it becomes so, subclass ``UPathIOManager`` with these overrides.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from genai_assets.lake import AssetVersion, complete_publications, default_lake_root, open_lake


def asset_version(root: str, asset_key: dg.AssetKey, partition: str | None, run_id: str) -> AssetVersion:
    """The version this run publishes for ``asset_key`` (and partition): the asset body stages its
    other files in it (same arguments), the IO manager adds the table and publishes it."""
    name = "__".join(asset_key.path) + (f".{partition}" if partition is not None else "")
    return AssetVersion(root, name, run_id)


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores pandas DataFrames as Parquet files under the data lake root."""

    root: str = Field(
        default_factory=lambda: str(default_lake_root()),
        description="Data lake root; defaults to $GENAI_DATA_LAKE or ./data_lake.",
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Write only into this project's lake: mark or adopt the root, or refuse it (``lake.open_lake``);
        then finish any publication a kill interrupted after its commit point, before anything is read."""
        open_lake(self.root, log=context.log.info if context.log is not None else None)
        complete_publications(self.root, log=context.log.warning if context.log is not None else None)

    def path_for(self, asset_key: dg.AssetKey, partition: str | None = None) -> Path:
        base = Path(self.root).joinpath(*asset_key.path)
        return base / f"{partition}.parquet" if partition is not None else base.with_suffix(".parquet")

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:
            # An asset may decline to write (e.g. a collapsed re-scrape keeps the last good file).
            context.log.info("Asset returned None: the existing Parquet file, if any, is kept.")
            partition = context.partition_key if context.has_partition_key else None
            asset_version(self.root, context.asset_key, partition, context.run_id).discard()
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"ParquetIOManager stores pandas DataFrames, but asset {context.asset_key.to_user_string()} "
                f"returned {type(obj).__name__}. Models and folders must be written by the asset itself."
            )
        partition = context.partition_key if context.has_partition_key else None
        target = self.path_for(context.asset_key, partition)
        # The table joins the files the asset body staged in this run (e.g. cleansed_poems' exports):
        # all are published as one version, so a kill never leaves new exports beside an old table.
        version = asset_version(self.root, context.asset_key, partition, context.run_id)
        obj.to_parquet(version.stage(target), index=False)
        version.publish(log=context.log.warning)
        context.add_output_metadata(
            {"path": dg.MetadataValue.path(str(target)), "rows": dg.MetadataValue.int(len(obj))}
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | dict[str, pd.DataFrame]:
        asset_key = context.asset_key
        # A run without a partition key (an unpartitioned asset downstream of raw_poems) reads
        # every partition; a partitioned run reads its own partition only.
        if context.has_asset_partitions and not context.has_partition_key:
            loaded: dict[str, pd.DataFrame] = {}
            missing: list[str] = []
            for partition in context.asset_partition_keys:
                path = self.path_for(asset_key, partition)
                if path.exists():
                    loaded[partition] = pd.read_parquet(path)
                else:
                    missing.append(partition)
            if missing:
                context.log.warning(
                    f"{asset_key.to_user_string()}: partitions {missing} have never been materialized; "
                    f"loading {sorted(loaded)} only."
                )
            if not loaded:
                raise FileNotFoundError(
                    f"No partition of {asset_key.to_user_string()} has been materialized under {self.root}. "
                    "Materialize it first, e.g. `genai-assets materialize --select raw_poems`."
                )
            return loaded
        partition = context.asset_partition_key if context.has_asset_partitions else None
        path = self.path_for(asset_key, partition)
        if not path.exists():
            raise FileNotFoundError(
                f"{asset_key.to_user_string()} has not been materialized: {path} does not exist."
            )
        return pd.read_parquet(path)
