"""Runs whose process died: ``genai-assets materialize`` marks them failed before it starts.

``materialize`` executes runs in its own process (``execute_in_process``), so no daemon watches
them: a process killed mid-run (Ctrl-C twice, OOM killer, a closed laptop lid) leaves its run
STARTED forever in the instance. Each run it starts carries the owner's host and pid as tags;
before starting, it looks at the instance's unfinished runs with those tags, and a run whose
owner process on this host is gone (or whose pid now belongs to a younger process) is reported
failed with ``DagsterInstance.report_run_failed``. Runs launched by the daemon are left to
Dagster's run monitoring (``run_monitoring`` in ``dagster.yaml`` and ``deploy/dagster.yaml``).
"""

from __future__ import annotations

import os
import socket

import dagster as dg

OWNER_HOST_TAG = "genai_assets/owner_host"
OWNER_PID_TAG = "genai_assets/owner_pid"
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def run_owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of a run it executes."""
    return {OWNER_HOST_TAG: socket.gethostname(), OWNER_PID_TAG: str(os.getpid())}


def owner_is_alive(pid: int, run_started_at: float | None) -> bool:
    """Whether process ``pid`` on this host can still be the one that started the run."""
    import psutil  # a dagster dependency

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    # A pid reused by a process younger than the run cannot be its owner (1 s of clock slack).
    return run_started_at is None or created <= run_started_at + 1.0


def fail_runs_of_dead_owners(instance: dg.DagsterInstance) -> list[str]:
    """Report failed every unfinished run this host's ``materialize`` started in a process now gone.

    Returns the run ids marked failed.
    """
    host = socket.gethostname()
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=UNFINISHED, tags={OWNER_HOST_TAG: host}), limit=1000
    )
    failed = []
    for record in records:
        run = record.dagster_run
        pid_text = run.tags.get(OWNER_PID_TAG, "")
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        started = record.start_time or record.create_timestamp.timestamp()
        if owner_is_alive(int(pid_text), started):
            continue
        instance.report_run_failed(
            run,
            f"Marked failed by `genai-assets materialize`: the process that ran it (pid {pid_text} on "
            f"{host}) is gone, so the run can never finish.",
        )
        failed.append(run.run_id)
    return failed
