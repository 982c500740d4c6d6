"""The demo-timings block: step times and run wall time read from a real Dagster instance."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from genai_assets.reporting.docs_tables import RENDERERS, RUN_TIMINGS, LakeFiles


def test_demo_timings_block_sums_per_group_and_reports_the_runs_wall_time(tmp_path: Path):
    timings = {
        "collected_at": "2026-12-03 04:00 UTC",
        "assets": [
            {"asset": "raw_poems[gutenberg]", "group": "data", "seconds": 6.8, "run_id": "a"},
            {"asset": "scratch_transformer", "group": "scratch", "seconds": 150.0, "run_id": "b"},
            {"asset": "voiceover", "group": "teaching", "seconds": 70.0, "run_id": "b"},
            {"asset": "walkthrough_video", "group": "teaching", "seconds": 31.0, "run_id": "b"},
        ],
        "runs": 2,
        "runs_wall_seconds": 275.4,
    }
    (tmp_path / "reports").mkdir()
    (tmp_path / RUN_TIMINGS).write_text(json.dumps(timings))
    block = RENDERERS["demo_timings"].render(LakeFiles(tmp_path))
    assert "| `voiceover` | teaching | 1 min 10 s |" in block
    assert (
        "Sum of the step times: 4 min 18 s; per group: data 6.8 s, scratch 2 min 30 s, teaching 1 min 41 s."
        in block
    )
    assert (
        "Wall time of the 2 runs behind these materializations, first start to last end: 4 min 35 s." in block
    )


def test_collect_run_timings_reads_step_times_and_run_span_from_the_instance(tmp_path, monkeypatch):
    from genai_assets import cli

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    lake = tmp_path / "lake"

    @dg.asset(group_name="demo")
    def first_asset() -> None:
        return None

    @dg.asset(group_name="demo", deps=[first_asset])
    def second_asset() -> None:
        return None

    monkeypatch.setattr(
        "genai_assets.definitions.defs", dg.Definitions(assets=[first_asset, second_asset]), raising=True
    )
    with dg.DagsterInstance.get() as instance:
        assert dg.materialize([first_asset, second_asset], instance=instance).success
        assert dg.materialize([first_asset], instance=instance).success

    assert cli.collect_run_timings(lake) == 2
    payload = json.loads((lake / RUN_TIMINGS).read_text())
    assert [row["asset"] for row in payload["assets"]] == ["first_asset", "second_asset"]
    assert {row["group"] for row in payload["assets"]} == {"demo"}
    # first_asset's latest materialization is the second run; second_asset's the first: two runs.
    assert payload["runs"] == 2
    assert len({row["run_id"] for row in payload["assets"]}) == 2
    assert payload["runs_wall_seconds"] >= max(row["seconds"] for row in payload["assets"])
