"""Folder swap crash recovery: a kill between the two renames, and stale writer leftovers."""

import os
import time

from genai_assets.lake import (
    STALE_LEFTOVER_SECONDS,
    atomic_directory,
    clean_stale_leftovers,
    recover_interrupted_swap,
    recover_lake,
)


def _crash_state(models):
    """What a kill between ``os.replace(target, backup)`` and ``os.replace(staging, target)`` leaves."""
    backup = models / ".finetuned_lm.old"
    backup.mkdir(parents=True)
    (backup / "config.json").write_text('{"good": true}')
    staging = models / ".finetuned_lm.abc123.staging"
    staging.mkdir()
    (staging / "config.json").write_text('{"half": true}')
    old = time.time() - STALE_LEFTOVER_SECONDS - 10
    os.utime(staging, (old, old))
    return backup, staging


def test_next_swap_recovers_the_backup_instead_of_deleting_it(tmp_path):
    models = tmp_path / "models"
    backup, _ = _crash_state(models)
    target = models / "finetuned_lm"
    # The next writer fails mid-write: the last good folder must still be there afterwards.
    try:
        with atomic_directory(target) as staging:
            (staging / "config.json").write_text("{")
            raise RuntimeError("killed mid-write")
    except RuntimeError:
        pass
    assert (target / "config.json").read_text() == '{"good": true}'
    assert not backup.exists()
    assert sorted(p.name for p in models.iterdir()) == ["finetuned_lm"]  # stale staging cleaned too


def test_recover_lake_on_start_restores_and_cleans(tmp_path):
    backup, staging = _crash_state(tmp_path / "models")
    stale_tmp = tmp_path / "reports" / ".evaluation.json.x1.tmp"
    stale_tmp.parent.mkdir()
    stale_tmp.write_text("{")
    os.utime(stale_tmp, (time.time() - STALE_LEFTOVER_SECONDS - 5,) * 2)
    fresh_tmp = tmp_path / "reports" / ".eda.json.x2.tmp"  # a live writer's file: kept
    fresh_tmp.write_text("{")

    report = recover_lake(tmp_path)

    assert report["recovered"] == ["models/finetuned_lm"]
    assert sorted(report["cleaned"]) == [
        "models/.finetuned_lm.abc123.staging",
        "reports/.evaluation.json.x1.tmp",
    ]
    assert (tmp_path / "models" / "finetuned_lm" / "config.json").read_text() == '{"good": true}'
    assert not staging.exists() and not stale_tmp.exists() and fresh_tmp.exists()
    assert recover_lake(tmp_path) == {"recovered": [], "cleaned": []}  # idempotent


def test_backup_next_to_a_complete_folder_is_a_leftover(tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    (target / "new").write_text("new")
    backup = tmp_path / ".m.old"
    backup.mkdir()
    assert recover_interrupted_swap(target) is False
    assert not backup.exists() and (target / "new").is_file()


def test_young_leftovers_are_not_touched(tmp_path):
    live = tmp_path / ".m.live.staging"
    live.mkdir()
    assert clean_stale_leftovers(tmp_path) == []
    assert live.is_dir()


def test_a_run_start_recovers_the_lake_through_the_resource(tmp_path):
    """Through Dagster: the DataLake resource's setup recovers the model folder before the asset reads it."""
    import dagster as dg

    from genai_assets.defs._resources import DataLake

    _crash_state(tmp_path / "models")

    @dg.asset
    def reads_the_model(lake: DataLake) -> dg.MaterializeResult:
        config = lake.path / "models" / "finetuned_lm" / "config.json"  # read without model_dir()
        return dg.MaterializeResult(metadata={"config": config.read_text()})

    result = dg.materialize([reads_the_model], resources={"lake": DataLake(root=str(tmp_path))})
    assert (
        result.asset_materializations_for_node("reads_the_model")[0].metadata["config"].value
        == '{"good": true}'
    )
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["finetuned_lm"]
