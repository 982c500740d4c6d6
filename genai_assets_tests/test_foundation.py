"""The shared foundation: atomic writes, the Parquet IO manager, Definitions loading."""

import dagster as dg
import pandas as pd
import pytest

from genai_assets.defs._io_manager import ParquetIOManager
from genai_assets.defs._partitions import ALL_SITES, site_partitions
from genai_assets.lake import atomic_directory, atomic_write_text, default_lake_root


def test_default_lake_root_follows_env_var(lake_root):
    assert default_lake_root() == lake_root.resolve()


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "table.txt"
    atomic_write_text(target, "good")
    from genai_assets.lake import atomic_path

    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a fi")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "good"
    assert target.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.txt"]


def test_atomic_directory_swaps_whole_folder_or_nothing(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as staging:
        (staging / "config.json").write_text("{}")
    assert (target / "config.json").exists()
    with pytest.raises(ValueError), atomic_directory(target) as staging:
        (staging / "other.bin").write_text("x")
        raise ValueError("save_pretrained failed")
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_parquet_io_manager_round_trips_partitions(lake_root):
    @dg.asset(partitions_def=site_partitions)
    def raw(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"site": [context.partition_key] * 2, "n": [1, 2]})

    @dg.asset
    def combined(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(raw.values(), ignore_index=True)

    resources = {"io_manager": ParquetIOManager(root=str(lake_root))}
    for site in ("gutenberg", "shakespeare"):
        assert dg.materialize([raw], partition_key=site, resources=resources).success
    assert (lake_root / "raw" / "gutenberg.parquet").exists()
    result = dg.materialize([raw, combined], selection=[combined], resources=resources)
    assert result.success
    out = pd.read_parquet(lake_root / "combined.parquet")
    # Only the two materialized partitions are loaded; the online ones were never scraped.
    assert sorted(out["site"].unique()) == ["gutenberg", "shakespeare"]
    assert len(out) == 4


def test_parquet_io_manager_rejects_non_dataframes(lake_root):
    @dg.asset
    def not_a_table() -> dict:
        return {"weights": [1.0]}

    with pytest.raises(TypeError, match="stores pandas DataFrames"):
        dg.materialize([not_a_table], resources={"io_manager": ParquetIOManager(root=str(lake_root))})


def test_site_partitions_are_the_four_sites():
    assert site_partitions.get_partition_keys() == list(ALL_SITES)
    assert ALL_SITES == ("gutenberg", "shakespeare", "poetrydb", "poets_org")
