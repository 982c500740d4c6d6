"""Benchmark: cleanse and de-duplicate the FULL Gutenberg source (3.08 M lines, every excerpt).

    .venv/bin/python benchmarks/bench_cleanse_gutenberg.py [--num-perm 64] [--no-near-dedup] [--limit N]
        [--out data_lake/reports/bench_cleanse.json]

Loads the excerpts with the scraping stage's loader (``gutenberg_poems(max_excerpts=0)``, the
same rule as the ``raw_poems`` asset), builds the raw_poems table, runs
:func:`genai_assets.cleaning.pipeline.cleanse_poems` with the default (cpu profile) config and
prints wall time, CPU time, peak resident memory, rows/s and what every rule did. CPU time is
reported next to wall time because the benchmark machine may be shared: on a busy machine the
wall time grows while the CPU time stays put. The per-text pass runs on two processes for a corpus
this size (:mod:`genai_assets.cleaning.textpass`): CPU time and the steps' ``cpu_seconds`` count
both, a transform's ``seconds`` is the longer of the two parts, and the peak memory is printed for
this process and for the worker. Target (issue 19): cleanse + dedup < 30 s wall on the 2-core
machine, peak < 2 GiB. ``--save-table`` writes the cleansed table, to check that a speed-up
changed nothing (compare two runs' files with ``pandas.DataFrame.equals``; ``fetched_at`` is
fixed at 2000-01-01 UTC so that runs compare equal). The peak memory of the whole process tree
is sampled as PSS (shared pages counted once, split between the processes that map them) every
50 ms. ``--out`` writes every figure as JSON; ``genai-assets report-docs`` renders it into the
README and docs/cleansing.md (block ``cleanse_benchmark``), so no figure is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from datetime import UTC, datetime
from pathlib import Path


def cpu_seconds(who: tuple[int, ...] = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) -> float:
    """CPU time of this process and of its finished worker processes (or of ``who`` only)."""
    usages = [resource.getrusage(each) for each in who]
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)


def peak_rss_gib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory of this process (or the largest finished child's)."""
    return resource.getrusage(who).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


class TreeMemorySampler(threading.Thread):
    """Peak PSS (GiB) of this process and its children, read from /proc every ``interval`` seconds."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak_kib, self._stop_event = interval, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak_kib = max(self.peak_kib, sum(_pss_kib(pid) for pid in _process_tree(os.getpid())))
            self._stop_event.wait(self.interval)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak_kib / 2**20


def _process_tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid] + [each for child in children for each in _process_tree(int(child))]


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0  # the process ended between listing and reading, or no /proc (not Linux)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-perm", type=int, default=None, help="MinHash permutations (default: config)")
    parser.add_argument("--no-near-dedup", action="store_true", help="Skip the MinHash LSH step")
    parser.add_argument("--limit", type=int, default=0, help="Cleanse only the first N excerpts (0 = all)")
    parser.add_argument("--save-table", default="", help="Write the cleansed table here (to compare runs)")
    parser.add_argument(
        "--out", type=Path, default=None, help="Write every figure here (JSON, for report-docs)"
    )
    args = parser.parse_args()
    sampler = TreeMemorySampler()
    sampler.start()
    load_at_start = os.getloadavg()

    from genai_assets.cleaning.pipeline import CleaningConfig, cleanse_poems
    from genai_assets.schema import raw_poems_frame
    from genai_assets.sources.gutenberg import gutenberg_poems

    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()}")
    started, cpu_started = time.perf_counter(), cpu_seconds()
    scraped = gutenberg_poems(max_excerpts=0)
    raw = raw_poems_frame(scraped.records, fetched_at=datetime(2000, 1, 1, tzinfo=UTC))  # runs compare equal
    del scraped
    if args.limit:
        raw = raw.head(args.limit)
    load_wall, load_cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    print(
        f"loaded {len(raw):,} excerpts in {load_wall:.1f}s wall / {load_cpu:.1f}s CPU (not part of the target)"
    )

    overrides = {"near_dedup": not args.no_near_dedup}
    if args.num_perm:
        overrides["num_perm"] = args.num_perm
    config = CleaningConfig(**overrides)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    worker_cpu_started = cpu_seconds((resource.RUSAGE_CHILDREN,))
    result = cleanse_poems(raw, config)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    worker_cpu = cpu_seconds((resource.RUSAGE_CHILDREN,)) - worker_cpu_started

    steps = result.steps_frame()
    steps[["seconds", "cpu_seconds"]] = steps[["seconds", "cpu_seconds"]].round(2)
    print()
    print(steps.to_markdown(index=False))
    print()
    print(f"config: {config}")
    print(f"rows in {len(raw):,} -> out {len(result.table):,}")
    print(
        f"cleanse + dedup: {wall:.1f}s wall, {cpu:.1f}s CPU ({cpu - worker_cpu:.1f}s this process, "
        f"{worker_cpu:.1f}s the worker), {len(raw) / wall:,.0f} rows/s"
    )
    print(
        f"peak resident memory: {peak_rss_gib():.2f} GiB this process (incl. loading), "
        f"{peak_rss_gib(resource.RUSAGE_CHILDREN):.2f} GiB the worker"
    )
    print(f"splits: {result.table['split'].value_counts().to_dict()}")
    peak_tree = sampler.stop()
    print(f"peak PSS of the process tree (both processes, shared pages counted once): {peak_tree:.2f} GiB")
    print(f"load average at end: {os.getloadavg()}")
    if args.save_table:
        result.table.to_parquet(args.save_table, index=False)
    if args.out:
        figures = {
            "cores": os.cpu_count(), "load_at_start": load_at_start, "load_at_end": os.getloadavg(),
            "rows_in": len(raw), "rows_out": len(result.table), "wall_seconds": wall, "cpu_seconds": cpu,
            "worker_cpu_seconds": worker_cpu, "peak_rss_gib": peak_rss_gib(),
            "peak_rss_worker_gib": peak_rss_gib(resource.RUSAGE_CHILDREN), "peak_tree_pss_gib": peak_tree,
            "steps": steps.to_dict(orient="records"), "config": vars(config),
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
