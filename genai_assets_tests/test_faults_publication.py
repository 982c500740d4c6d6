"""An asset's files change together: cleansed_poems' exports, its plot and its Parquet table are
published as one version (``genai_assets.lake.AssetVersion`` + the IO manager). A forked process
runs the real materialization and is killed (``os._exit``) just before each file rename it makes;
after the next start's recovery every file of the asset must come from one run."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil

import dagster as dg
import pandas as pd
import pytest

import genai_assets.lake as lake_module
from genai_assets.cleaning.exports import read_cleansed_text
from genai_assets.definitions import build_definitions
from genai_assets.lake import LAKE_TEMP_PREFIX, open_lake, recover_lake
from genai_assets_tests.test_cleaning_assets import write_raw_partitions

FILES = (
    "cleansed_poems.parquet",
    "exports/cleansed.txt",
    "exports/raw_poems.json",
    "reports/cleansing_steps.png",
)


@functools.cache
def cleansed_job(root: str):
    """Built once per lake: forked children inherit it warm (a cold run costs seconds more)."""
    return build_definitions(lake_root=root).resolve_implicit_global_asset_job_def()


def materialize_cleansed(root) -> bool:
    return (
        cleansed_job(str(root))
        .execute_in_process(
            asset_selection=[dg.AssetKey("cleansed_poems")],
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
        .success
    )


def run_in_child(root, kill_before_rename: int | None) -> int:
    """Materialize in a forked child; it dies just before its ``kill_before_rename``-th rename.

    Returns the child's exit status: 137 = killed there, else 100 + the number of renames it made.
    """
    pid = os.fork()
    if pid == 0:  # the child: count every rename the lake makes, die at the chosen one
        renames = 0
        real_replace = os.replace

        def counting_replace(source, target):
            nonlocal renames
            renames += 1
            if renames == kill_before_rename:
                os._exit(137)  # like SIGKILL: no cleanup, no finally blocks
            real_replace(source, target)

        lake_module.os.replace = counting_replace  # lake.py calls os.replace for every write
        try:
            ok = materialize_cleansed(root)
        finally:
            lake_module.os.replace = real_replace
        os._exit(100 + renames if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def which_run(root, raws: dict[str, pd.DataFrame]) -> str:
    """The run ('A' or 'B') every file of cleansed_poems comes from; fails if they disagree."""
    table = pd.read_parquet(root / "cleansed_poems.parquet")
    assert read_cleansed_text(root / "exports" / "cleansed.txt") == table["text"].tolist()
    exported_ids = json.loads((root / "exports" / "raw_poems.json").read_text())
    matches = [
        name
        for name, raw in raws.items()
        if [row["poem_id"] for row in exported_ids] == raw["poem_id"].tolist()
    ]
    assert len(matches) == 1
    # The table was cleansed from the same raw input as the JSON export.
    assert set(table["poem_id"]) <= set(raws[matches[0]]["poem_id"])
    manifest = json.loads((root / "versions" / "cleansed_poems.json").read_text())
    for name in FILES:  # every file is byte for byte the one the manifest of its run names
        assert manifest["files"][name] == hashlib.sha256((root / name).read_bytes()).hexdigest(), name
    return matches[0]


def snapshot_before_each_rename(root, snapshots) -> list[str]:
    """Materialize, copying the lake just before each rename: what a kill at that moment leaves on
    disk (a killed process leaves nothing but its files). Returns the rename targets, in order."""
    targets: list[str] = []
    real_replace = os.replace

    def snapshotting_replace(source, target):
        targets.append(os.path.basename(target))
        shutil.copytree(root, snapshots / f"{len(targets):02d}")
        real_replace(source, target)

    lake_module.os.replace = snapshotting_replace
    try:
        assert materialize_cleansed(root)
    finally:
        lake_module.os.replace = real_replace
    return targets


def recovered(root):
    open_lake(root)
    recover_lake(root)  # what the next run's start does
    journals = [path.name for path in root.glob(f"{LAKE_TEMP_PREFIX}*.commit.json")]
    assert journals == []  # every publication past its commit point was finished
    return root


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_kill_at_any_write_leaves_all_files_of_one_run(lake_root, tmp_path):
    partitions = write_raw_partitions(lake_root)
    assert materialize_cleansed(lake_root)
    exported = json.loads((lake_root / "exports" / "raw_poems.json").read_text())
    raws = {"A": pd.DataFrame({"poem_id": [row["poem_id"] for row in exported]})}
    assert len(raws["A"]) == sum(len(frame) for frame in partitions.values())
    state_a = tmp_path / "state_a"
    shutil.copytree(lake_root, state_a)

    # Run B: one source dropped, so every file of the asset differs from run A's.
    dropped = sorted(partitions)[-1]
    (lake_root / "raw_poems" / f"{dropped}.parquet").unlink()
    shutil.copytree(lake_root, tmp_path / "input_b")
    snapshots = tmp_path / "snapshots"
    targets = snapshot_before_each_rename(lake_root, snapshots)
    exported_b = json.loads((lake_root / "exports" / "raw_poems.json").read_text())
    raws["B"] = pd.DataFrame({"poem_id": [row["poem_id"] for row in exported_b]})
    assert which_run(lake_root, raws) == "B" and len(raws["B"]) < len(raws["A"])

    # Every write point: the disk as a kill just before that rename leaves it, then recovered.
    outcomes = [which_run(recovered(snapshot), raws) for snapshot in sorted(snapshots.iterdir())]
    commit = next(index for index, name in enumerate(targets) if name.endswith(".commit.json"))
    # Kills up to the commit point keep run A's set, kills after it give run B's: never a mix.
    assert outcomes == ["A"] * (commit + 1) + ["B"] * (len(targets) - commit - 1)
    assert len(targets) - commit - 1 == len(FILES) + 1  # each file + the manifest renamed after the journal

    # And real kills (a forked child dies with os._exit) on each side of the commit point.
    for kill_at, expected in ((commit + 1, "A"), (commit + 2, "B")):
        shutil.rmtree(lake_root)
        shutil.copytree(state_a, lake_root)
        (lake_root / "raw_poems" / f"{dropped}.parquet").unlink()
        assert run_in_child(lake_root, kill_before_rename=kill_at) == 137
        assert which_run(recovered(lake_root), raws) == expected
