"""``genai-assets``: the command line of the project.

    genai-assets materialize [--select ASSET ...] [--sites SITE ...] [--preset tiny|cpu|gpu]
    genai-assets generate --model PATH_OR_ID --prompt "..." [sampling flags]
    genai-assets list

``materialize`` runs the selected assets in dependency order on the Dagster instance in
``$DAGSTER_HOME`` (so the UI shows the runs), one run per site partition for ``raw_poems`` and
one run for everything downstream. Plain Dagster CLI commands work too (see README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from genai_assets.defs._presets import PRESET_NAMES
from genai_assets.sources.sites import ALL_SITES, BUNDLED_SITES


def build_parser() -> argparse.ArgumentParser:
    """The ``genai-assets`` parser: materialize, list, report-docs, generate, playground."""
    parser = argparse.ArgumentParser(prog="genai-assets", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_materialize_command(commands)
    commands.add_parser("list", help="List the assets, their groups and partitions.")

    docs = commands.add_parser(
        "report-docs",
        help="Regenerate the measured tables in README.md and docs/*.md from the lake's reports.",
    )
    docs.add_argument("files", nargs="*", help="Markdown files (default: README.md and docs/*.md).")
    docs.add_argument("--lake", help="Lake root (default: $GENAI_DATA_LAKE or ./data_lake).")
    docs.add_argument("--check", action="store_true", help="Write nothing; exit 1 if a file would change.")

    generate = commands.add_parser(
        "generate", help="Generate poems from a saved model, streamed to the terminal."
    )
    from genai_assets.generation.cli import add_generate_arguments

    add_generate_arguments(generate)

    play = commands.add_parser(
        "playground", help="Serve the Gradio playground: generate, compare and rate the lake's models."
    )
    play.add_argument("--lake", help="Lake root (default: $GENAI_DATA_LAKE or ./data_lake).")
    play.add_argument("--host", default="127.0.0.1", help="Interface to listen on (0.0.0.0: every one).")
    play.add_argument("--port", type=int, default=7860)
    return parser


def _add_materialize_command(commands) -> None:
    """The ``materialize`` subcommand: selection, downstream, sites, preset and extra run config."""
    materialize = commands.add_parser(
        "materialize",
        help="Materialize all assets or a selection, partitions first, in dependency order.",
    )
    materialize.add_argument(
        "--select",
        nargs="+",
        metavar="ASSET",
        help="Asset names to materialize (default: the whole graph).",
    )
    materialize.add_argument(
        "--downstream",
        action="store_true",
        help="Also materialize everything downstream of the selection.",
    )
    materialize.add_argument(
        "--sites",
        nargs="+",
        choices=ALL_SITES,
        default=list(BUNDLED_SITES),
        help="Site partitions of raw_poems to (re)scrape (default: the offline bundled sites).",
    )
    materialize.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        default="cpu",
        help="Hyperparameter preset for every stage (default: cpu, the demo profile).",
    )
    materialize.add_argument(
        "--config-json",
        help='Extra run config merged over the preset, e.g. \'{"ops": {"finetuned_lm": {"config": {"max_steps": 5}}}}\'.',
    )


def merge_run_config(base: dict, extra: dict) -> dict:
    """Deep-merge ``extra`` into a copy of ``base`` (dicts merge, other values replace)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_run_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def run_materialize(args: argparse.Namespace) -> int:
    """Check the input and run config, then materialize the selection in order; the exit code."""
    from genai_assets.cli_input import UsageError, parse_config_json

    try:  # before loading Dagster and the graph: bad input fails in a second, in one line
        extra_config = parse_config_json(args.config_json)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    import dagster as dg

    from genai_assets.definitions import defs
    from genai_assets.defs._config import check_run_config
    from genai_assets.defs._presets import preset_run_config
    from genai_assets.defs._run_owners import fail_runs_of_dead_owners

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    for run_id in fail_runs_of_dead_owners(instance):  # killed earlier: it would stay STARTED forever
        print(f"Marked run {run_id} failed: the process that ran it is gone.", file=sys.stderr)

    run_config = merge_run_config(preset_run_config(args.preset), extra_config)
    selected = _selected_keys(defs.resolve_asset_graph(), args)
    if selected is None:
        return 2
    job = defs.resolve_implicit_global_asset_job_def()
    try:  # the library's value checks of every asset's config, before any step runs
        check_run_config(job, run_config)
    except (ValueError, dg.DagsterInvalidConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    partitioned, unpartitioned = selected
    plan: list[tuple[list, str | None]] = [(partitioned, site) for site in args.sites] if partitioned else []
    if unpartitioned:
        plan.append((unpartitioned, None))
    return _execute_plan(job, instance, plan, run_config)


def _selected_keys(graph, args: argparse.Namespace) -> tuple[list, list] | None:
    """``(partitioned, unpartitioned)`` asset keys of the selection; None (reported) on an unknown name."""
    import dagster as dg

    all_keys = {key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    if args.select:
        unknown = sorted(set(args.select) - {key.to_user_string() for key in all_keys})
        if unknown:
            print(f"Unknown assets: {', '.join(unknown)}. See `genai-assets list`.", file=sys.stderr)
            return None
        selection = dg.AssetSelection.assets(*args.select)
        if args.downstream:
            selection = selection.downstream()
        selected = selection.resolve(graph)
    else:
        selected = all_keys
    partitioned = sorted((key for key in selected if graph.get(key).is_partitioned), key=str)
    unpartitioned = sorted((key for key in selected if not graph.get(key).is_partitioned), key=str)
    return partitioned, unpartitioned


def _execute_plan(job, instance, plan: list[tuple[list, str | None]], run_config: dict) -> int:
    """Run each ``(keys, partition)`` of the plan in process, in order; 1 at the first failure."""
    from genai_assets.defs._run_owners import run_owner_tags

    def config_for(keys) -> dict:
        names = {key.to_user_string() for key in keys}
        ops = {name: cfg for name, cfg in run_config.get("ops", {}).items() if name in names}
        return {**run_config, "ops": ops}

    print(in_process_notice(instance), file=sys.stderr, flush=True)
    started = time.perf_counter()
    for keys, partition in plan:
        label = f"{', '.join(k.to_user_string() for k in keys)}" + (
            f" [partition {partition}]" if partition else ""
        )
        print(f"\n=== materializing {label}", flush=True)
        step_started = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            asset_selection=keys,
            partition_key=partition,
            run_config=config_for(keys),
            raise_on_error=False,
            tags=run_owner_tags(),  # lets a later `materialize` tell a killed run from a live one
        )
        elapsed = time.perf_counter() - step_started
        status = "ok" if result.success else "FAILED"
        print(f"=== {status} in {elapsed:.1f}s: {label}", flush=True)
        if not result.success:
            for event in result.all_events:
                if event.is_failure and event.step_key:
                    print(f"    step {event.step_key}: {event.message}", file=sys.stderr)
            return 1
    print(f"\nAll done in {time.perf_counter() - started:.1f}s.")
    return 0


def in_process_notice(instance) -> str:
    """Say plainly that this command executes runs itself, bypassing the instance's run queue."""
    where = (
        f"the instance in {instance.root_directory}" if not instance.is_ephemeral else "a temporary instance"
    )
    return (
        f"Note: runs execute here, in this process, one after another, and are recorded on {where}. "
        "They do not wait in the instance's run queue (its max_concurrent_runs does not apply). "
        "To queue runs behind others, launch them from the UI (`make dev`, or the deploy/ setup) "
        "where the daemon dequeues them."
    )


def run_list() -> int:
    from genai_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in sorted(graph.get_all_asset_keys(), key=str):
        node = graph.get(key)
        if not node.is_materializable:
            continue
        partitions = node.partitions_def.get_partition_keys() if node.partitions_def else []
        suffix = f"  partitions: {', '.join(partitions)}" if partitions else ""
        print(f"{key.to_user_string():28s} group: {node.group_name}{suffix}")
    return 0


def collect_run_timings(lake_root) -> int:
    """Write ``reports/run_timings.json``: step time of each asset's latest materialization.

    Read from the Dagster instance in ``$DAGSTER_HOME`` (one row per partition for partitioned
    assets), so the docs' timing table is what the last ``make demo`` measured. Returns the row count.
    """
    import datetime

    import dagster as dg

    from genai_assets.definitions import defs
    from genai_assets.lake import atomic_write_text
    from genai_assets.reporting.docs_tables import RUN_TIMINGS

    if not os.environ.get("DAGSTER_HOME"):
        return 0
    instance = dg.DagsterInstance.get()
    graph = defs.resolve_asset_graph()
    rows = []
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if not node.is_materializable:
            continue
        partitions = node.partitions_def.get_partition_keys() if node.partitions_def else [None]
        for partition in partitions:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None),
                limit=1,
            ).records
            if not records:
                continue
            entry = records[0].event_log_entry
            stats = instance.get_run_step_stats(entry.run_id, step_keys=[entry.step_key])
            if not stats or stats[0].start_time is None or stats[0].end_time is None:
                continue
            name = key.to_user_string() + (f"[{partition}]" if partition else "")
            rows.append(
                {
                    "asset": name,
                    "group": node.group_name,
                    "seconds": round(stats[0].end_time - stats[0].start_time, 1),
                    "run_id": entry.run_id,
                }
            )
    if rows:
        collected = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        payload = {"collected_at": collected, "assets": rows, **_runs_span(instance, rows)}
        atomic_write_text(Path(lake_root) / RUN_TIMINGS, json.dumps(payload, indent=2) + "\n")
    return len(rows)


def _runs_span(instance, rows: list[dict]) -> dict:
    """Wall time from the first to the last of the runs behind ``rows`` (what `materialize` took).

    Step times alone miss run start-up and the gaps between runs; the span is what a user waits.
    """
    starts, ends = [], []
    for run_id in {row["run_id"] for row in rows}:
        record = instance.get_run_record_by_id(run_id)
        if record is None or record.start_time is None or record.end_time is None:
            continue
        starts.append(record.start_time)
        ends.append(record.end_time)
    if not starts:
        return {}
    return {"runs": len(starts), "runs_wall_seconds": round(max(ends) - min(starts), 1)}


def run_report_docs(args: argparse.Namespace) -> int:
    from genai_assets.lake import default_lake_root
    from genai_assets.reporting.docs_tables import regenerate

    lake_root = Path(args.lake) if args.lake else default_lake_root()
    files = args.files or ["README.md", *sorted(str(path) for path in Path("docs").glob("*.md"))]
    if not args.check:
        collect_run_timings(lake_root)
    try:
        results = regenerate(files, lake_root, check=args.check)
    except (OSError, ValueError) as error:
        print(f"report-docs: {error}", file=sys.stderr)
        return 2
    for result in results:
        state = ("would change" if args.check else "updated") if result.changed else "unchanged"
        print(f"{result.path}: {state}; regenerated: {', '.join(result.regenerated) or 'none'}")
        for missing in result.missing:
            print(f"  left as is — {missing}")
    return 1 if args.check and any(result.changed for result in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "materialize":
        return run_materialize(args)
    if args.command == "list":
        return run_list()
    if args.command == "report-docs":
        return run_report_docs(args)
    if args.command == "playground":
        from genai_assets.lake import default_lake_root
        from genai_assets.playground.app import launch

        launch(args.lake or default_lake_root(), host=args.host, port=args.port)
        return 0
    from genai_assets.generation.cli import run_generate

    return run_generate(args)


if __name__ == "__main__":
    sys.exit(main())
