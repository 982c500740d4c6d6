"""Folder swap crash recovery (a kill between the two renames, stale writer leftovers), and a lake
that only touches its own files: marked on first use, adopted or refused, recovery on its own names."""

import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest

from genai_assets.lake import (
    LAKE_MARKER_FILE,
    LAKE_TEMP_PREFIX,
    STALE_LEFTOVER_SECONDS,
    LakeRefusedError,
    atomic_directory,
    clean_stale_leftovers,
    open_lake,
    recover_interrupted_swap,
    recover_lake,
)

REPO_LAKE = Path(__file__).resolve().parents[1] / "data_lake"


def _crash_state(models):
    """What a kill between ``os.replace(target, backup)`` and ``os.replace(staging, target)`` leaves."""
    backup = models / f"{LAKE_TEMP_PREFIX}finetuned_lm.old"
    backup.mkdir(parents=True)
    (backup / "config.json").write_text('{"good": true}')
    staging = models / f"{LAKE_TEMP_PREFIX}finetuned_lm.abc123.staging"
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
    stale_tmp = tmp_path / "reports" / f"{LAKE_TEMP_PREFIX}evaluation.json.x1.tmp"
    stale_tmp.parent.mkdir()
    stale_tmp.write_text("{")
    os.utime(stale_tmp, (time.time() - STALE_LEFTOVER_SECONDS - 5,) * 2)
    fresh_tmp = tmp_path / "reports" / f"{LAKE_TEMP_PREFIX}eda.json.x2.tmp"  # a live writer's file: kept
    fresh_tmp.write_text("{")

    assert open_lake(tmp_path) == "adopted"
    report = recover_lake(tmp_path)

    assert report["recovered"] == ["models/finetuned_lm"]
    assert sorted(report["cleaned"]) == [
        f"models/{LAKE_TEMP_PREFIX}finetuned_lm.abc123.staging",
        f"reports/{LAKE_TEMP_PREFIX}evaluation.json.x1.tmp",
    ]
    assert (tmp_path / "models" / "finetuned_lm" / "config.json").read_text() == '{"good": true}'
    assert not staging.exists() and not stale_tmp.exists() and fresh_tmp.exists()
    assert recover_lake(tmp_path) == {"recovered": [], "cleaned": []}  # idempotent


def test_backup_next_to_a_complete_folder_is_a_leftover(tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    (target / "new").write_text("new")
    backup = tmp_path / f"{LAKE_TEMP_PREFIX}m.old"
    backup.mkdir()
    assert recover_interrupted_swap(target) is False
    assert not backup.exists() and (target / "new").is_file()


def test_young_leftovers_are_not_touched(tmp_path):
    live = tmp_path / f"{LAKE_TEMP_PREFIX}m.live.staging"
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


def _persons_folder(root):
    """A folder of someone's own files, including hidden names the old recovery took for leftovers."""
    old = time.time() - STALE_LEFTOVER_SECONDS - 60
    (root / "thesis").mkdir(parents=True)
    (root / "thesis" / "chapter1.md").write_text("draft")
    (root / ".thesis.old").mkdir()  # the person's own backup folder
    (root / ".thesis.old" / "chapter1.md").write_text("older draft")
    (root / ".notes.tmp").write_text("scratch notes")
    (root / "models").mkdir()
    (root / "models" / ".bert.abc.staging").mkdir()
    for path in (root / ".notes.tmp", root / "models" / ".bert.abc.staging"):
        os.utime(path, (old, old))
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def test_a_folder_holding_other_files_is_refused_and_left_untouched(tmp_path):
    before = _persons_folder(tmp_path)
    with pytest.raises(
        LakeRefusedError,
        match=r"holds files this project did not create \(\.notes\.tmp, \.thesis\.old, thesis\)",
    ) as error:
        open_lake(tmp_path)
    assert "GENAI_DATA_LAKE" in str(error.value) and "empty or new folder" in str(error.value)
    with pytest.raises(LakeRefusedError, match="not a marked data lake"):
        recover_lake(tmp_path)
    assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")) == before
    assert not (tmp_path / LAKE_MARKER_FILE).exists()


def test_recovery_in_a_marked_lake_touches_only_its_own_names_and_logs_each(tmp_path, caplog):
    open_lake(tmp_path)  # empty: created and marked
    _crash_state(tmp_path / "models")
    person = tmp_path / "models" / ".mine.old"  # not a name the lake creates: kept, even if it looks like one
    person.mkdir()
    stale_person_tmp = tmp_path / "reports" / ".my-notes.tmp"
    stale_person_tmp.parent.mkdir()
    stale_person_tmp.write_text("mine")
    os.utime(stale_person_tmp, (time.time() - STALE_LEFTOVER_SECONDS - 60,) * 2)
    with caplog.at_level(logging.WARNING, logger="genai_assets.lake"):
        report = recover_lake(tmp_path)
    assert report == {
        "recovered": ["models/finetuned_lm"],
        "cleaned": [f"models/{LAKE_TEMP_PREFIX}finetuned_lm.abc123.staging"],
    }
    assert person.is_dir() and stale_person_tmp.read_text() == "mine"
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 2
    assert any("moved" in line and "finetuned_lm.old" in line for line in logged)
    assert any("removed" in line and "abc123.staging" in line for line in logged)


def test_the_repository_data_lake_is_adopted_and_marked(tmp_path):
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files", "data_lake"], cwd=REPO_LAKE.parent, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {"data_lake/README.md", "data_lake/.gitkeep", "data_lake/human_eval/README.md"} <= set(tracked)
    root = tmp_path / "data_lake"
    for name in tracked:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_LAKE.parent / name, tmp_path / name)
    (root / "cleansed_poems.parquet").write_bytes(b"PAR1")  # a table the IO manager wrote
    assert open_lake(root) == "adopted"
    marker = json.loads((root / LAKE_MARKER_FILE).read_text())
    assert (marker["project"], marker["layout_version"], marker["how"]) == ("genai_assets", 1, "adopted")
    assert open_lake(root) == "marked"  # from now on a marked lake
    assert open_lake(tmp_path / "new" / "lake") == "created"


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ({"project": "someone_else", "layout_version": 1}, "marked as a data lake of 'someone_else'"),
        ({"project": "genai_assets", "layout_version": 99}, "layout version 99, newer"),
    ],
)
def test_a_foreign_or_newer_marker_is_refused(tmp_path, marker, message):
    (tmp_path / LAKE_MARKER_FILE).write_text(json.dumps(marker))
    with pytest.raises(LakeRefusedError, match=message):
        open_lake(tmp_path)


def test_a_run_pointed_at_a_persons_folder_fails_before_touching_it(tmp_path):
    """Through Dagster: the DataLake resource refuses the root at run start; nothing there changes."""
    import dagster as dg

    from genai_assets.defs._resources import DataLake

    before = _persons_folder(tmp_path)

    @dg.asset
    def writes_a_report(lake: DataLake) -> None:
        (lake.reports_dir() / "x.md").write_text("x")

    result = dg.materialize(
        [writes_a_report], resources={"lake": DataLake(root=str(tmp_path))}, raise_on_error=False
    )
    assert not result.success
    errors = " ".join(repr(event.event_specific_data) for event in result.all_events)
    assert "not a genai_assets data lake" in errors and "thesis" in errors
    assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")) == before
