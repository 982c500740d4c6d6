"""Killed runs do not stay STARTED: `genai-assets materialize` marks runs of its instance whose
process is gone as failed before it starts (on a real SQLite instance, with a real SIGKILL), and
the instance settings of `make dev` and deploy/ turn on Dagster's run monitoring for the daemon."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import yaml

from genai_assets.defs._run_owners import OWNER_PID_TAG, fail_runs_of_dead_owners

REPO = Path(__file__).resolve().parents[1]

# A run that starts, says so, then waits to be killed: executed in process, like `materialize` does.
KILLED_RUN = """
import sys, time
from pathlib import Path
import dagster as dg
from genai_assets.defs._run_owners import run_owner_tags

@dg.op
def wait_to_be_killed():
    Path(sys.argv[1]).write_text("started")
    time.sleep(600)

@dg.job
def slow():
    wait_to_be_killed()

slow.execute_in_process(instance=dg.DagsterInstance.get(), tags=run_owner_tags())
"""


def start_and_kill_a_run(dagster_home: Path, tmp_path: Path) -> str:
    flag = tmp_path / "started.flag"
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(flag)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the run never started"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (record,) = instance.get_run_records()
        assert record.dagster_run.status == dg.DagsterRunStatus.STARTED  # what a kill leaves behind
        assert record.dagster_run.tags[OWNER_PID_TAG] == str(process.pid)
        return record.dagster_run.run_id


def test_materialize_marks_a_killed_run_failed_before_it_starts(tmp_path, monkeypatch, capsys):
    from genai_assets.cli import main

    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    run_id = start_and_kill_a_run(dagster_home, tmp_path)

    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    # An unknown asset stops the command early, after the instance was tidied up.
    assert main(["materialize", "--select", "no_such_asset"]) == 2
    assert f"Marked run {run_id} failed" in capsys.readouterr().err
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.FAILURE
        failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "is gone" in failure[-1].message
        assert fail_runs_of_dead_owners(instance) == []  # nothing left to mark


def test_a_live_owner_keeps_its_run(tmp_path):
    """A run whose owner process still lives (here: the parent of this test process) is not touched."""
    import socket

    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        tags = {"genai_assets/owner_host": socket.gethostname(), OWNER_PID_TAG: str(os.getppid())}
        run = instance.create_run_for_job(dg.GraphDefinition(name="g", node_defs=[]).to_job(), tags=tags)
        assert fail_runs_of_dead_owners(instance) == []
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.NOT_STARTED


def test_instances_with_a_daemon_enable_run_monitoring():
    local, shared = (
        yaml.safe_load(path.read_text()) for path in (REPO / "dagster.yaml", REPO / "deploy" / "dagster.yaml")
    )
    assert local["run_monitoring"]["enabled"] is True and shared["run_monitoring"] == local["run_monitoring"]
    with dg.instance_for_test(overrides={"run_monitoring": local["run_monitoring"]}) as instance:
        assert instance.run_monitoring_enabled  # Dagster accepts and applies the settings
