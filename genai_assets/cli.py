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

from genai_assets.defs._presets import PRESET_NAMES
from genai_assets.sources.sites import ALL_SITES, BUNDLED_SITES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genai-assets", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

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

    commands.add_parser("list", help="List the assets, their groups and partitions.")

    generate = commands.add_parser(
        "generate", help="Generate poems from a saved model, streamed to the terminal."
    )
    from genai_assets.generation.cli import add_generate_arguments

    add_generate_arguments(generate)
    return parser


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
    import dagster as dg

    from genai_assets.definitions import defs
    from genai_assets.defs._presets import preset_run_config

    run_config = preset_run_config(args.preset)
    if args.config_json:
        run_config = merge_run_config(run_config, json.loads(args.config_json))

    graph = defs.resolve_asset_graph()
    all_keys = {key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    if args.select:
        unknown = sorted(set(args.select) - {key.to_user_string() for key in all_keys})
        if unknown:
            print(f"Unknown assets: {', '.join(unknown)}. See `genai-assets list`.", file=sys.stderr)
            return 2
        selection = dg.AssetSelection.assets(*args.select)
        if args.downstream:
            selection = selection.downstream()
        selected = selection.resolve(graph)
    else:
        selected = all_keys
    partitioned = sorted((key for key in selected if graph.get(key).is_partitioned), key=str)
    unpartitioned = sorted((key for key in selected if not graph.get(key).is_partitioned), key=str)

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    job = defs.resolve_implicit_global_asset_job_def()
    plan: list[tuple[list, str | None]] = [(partitioned, site) for site in args.sites] if partitioned else []
    if unpartitioned:
        plan.append((unpartitioned, None))

    def config_for(keys) -> dict:
        names = {key.to_user_string() for key in keys}
        ops = {name: cfg for name, cfg in run_config.get("ops", {}).items() if name in names}
        return {**run_config, "ops": ops}

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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "materialize":
        return run_materialize(args)
    if args.command == "list":
        return run_list()
    from genai_assets.generation.cli import run_generate

    return run_generate(args)


if __name__ == "__main__":
    sys.exit(main())
