"""Generated blocks for the CPU benchmarks' JSON reports (``benchmarks/*.py --out <lake>/reports/...``).

:mod:`genai_assets.reporting.docs_tables` registers them as blocks (``cleanse_benchmark``,
``generation_benchmark``): the figures are rendered from files in the lake, never typed. Run the
benchmark with ``--out``, then ``genai-assets report-docs``; a missing report leaves its block as it is.
"""

from __future__ import annotations

from genai_assets.escaping import md_table

BENCH_CLEANSE = "reports/bench_cleanse.json"
BENCH_GENERATION = "reports/bench_generation.json"
CLEANSE_TARGET_SECONDS, CLEANSE_TARGET_GIB = 30.0, 2.0  # issue 19
GENERATION_TARGET = 1000.0  # issue 24: tokens/s, scratch GPT 4×256, batch 1, course sampling


def _count(value) -> str:
    return f"{int(value):,}"


def _load(report: dict) -> str:
    return f"load average {report['load_at_start'][0]:.2f} → {report['load_at_end'][0]:.2f} on {report['cores']} cores"


def _verdict(ok: bool) -> str:
    return "✔" if ok else "✘"


def cleanse_benchmark_table(report: dict) -> str:
    """``bench_cleanse_gutenberg.py``'s JSON: one row per rule, then the totals against the targets."""
    rows = [
        [
            step["rule"], _count(step["rows_in"]),
            f"{_count(step['rows_changed'])} changed" if step["kind"] == "transform" else f"{_count(step['rows_removed'])} removed",
            f"{step['seconds']:.2f}", f"{step['cpu_seconds']:.2f}",
        ]
        for step in report["steps"]
    ]  # fmt: skip
    table = md_table(
        ["step", "rows in", "changed / removed", "wall s", "CPU s"],
        rows,
        ["---", "---:", "---:", "---:", "---:"],
    ).rstrip()
    wall, peak = report["wall_seconds"], report["peak_tree_pss_gib"]
    return (
        f"{table}\n\n{_count(report['rows_in'])} excerpts → {_count(report['rows_out'])} poems: "
        f"**{wall:.1f} s wall** (target < {CLEANSE_TARGET_SECONDS:.0f} s {_verdict(wall < CLEANSE_TARGET_SECONDS)}), "
        f"{report['cpu_seconds']:.1f} s CPU ({report['cpu_seconds'] - report['worker_cpu_seconds']:.1f} s main process, "
        f"{report['worker_cpu_seconds']:.1f} s the worker); peak memory of the process tree "
        f"**{peak:.2f} GiB** PSS (target < {CLEANSE_TARGET_GIB:.0f} GiB {_verdict(peak < CLEANSE_TARGET_GIB)}; "
        f"RSS {report['peak_rss_gib']:.2f} GiB main incl. loading, {report['peak_rss_worker_gib']:.2f} GiB worker, "
        f"shared pages counted in both). A transform's wall is the longer of its two halves, its CPU both. "
        f"Measured {report['measured_at']}, {_load(report)}."
    )  # fmt: skip


def generation_benchmark_table(report: dict) -> str:
    """``bench_models.py --only generation``'s JSON: tokens/s (fastest run, and per CPU-second)."""
    greedy, course = report["greedy"], report["course"]
    rows = [
        ["greedy, KV cache", f"{greedy['cached']['wall']:,.0f}", f"{greedy['cached']['cpu']:,.0f}", "–"],
        ["greedy, no cache (re-runs the block)", f"{greedy['uncached']['wall']:,.0f}", f"{greedy['uncached']['cpu']:,.0f}", "–"],
        [
            "course sampling (top-k 50, top-p 0.95, repetition 1.2, no repeated 2-grams), KV cache",
            f"{course['wall']:,.0f}", f"{course['cpu']:,.0f}",
            f"≥ {GENERATION_TARGET:,.0f} {_verdict(course['wall'] >= GENERATION_TARGET)}",
        ],
    ]  # fmt: skip
    floor = report.get("weight_read_floor")
    if floor:
        rows.append([
            f"ceiling: the step's {floor['matrices']} matrix–vector products alone ({floor['weight_mb']:.1f} MB of fp32 weights per token), weights in cache / evicted",
            f"{1e3 / floor['hot_ms']:,.0f} / {1e3 / floor['cold_ms']:,.0f}", "–", "–",
        ])  # fmt: skip
    llm = report.get("llm")
    if llm:
        ratio = llm["wall"]["stream"] / llm["wall"]["transformers"]
        rows.append([
            f"135 M LM, course sampling, {report['llm_new_tokens']} tokens: playground stream vs transformers generate",
            f"{llm['wall']['stream']:.1f} vs {llm['wall']['transformers']:.1f}",
            f"{llm['cpu']['stream']:.1f} vs {llm['cpu']['transformers']:.1f}", f"≥ 1.0× {_verdict(ratio >= 1.0)} ({ratio:.2f}×)",
        ])  # fmt: skip
        if "transformers_worker" in llm["wall"]:  # generate where the stream runs it: a worker thread
            worker = llm["wall"]["stream"] / llm["wall"]["transformers_worker"]
            rows.append([
                "… with generate also on a worker thread (as the stream and a Gradio handler run it: one intra-op thread)",
                f"{llm['wall']['stream']:.1f} vs {llm['wall']['transformers_worker']:.1f}",
                f"{llm['cpu']['stream']:.1f} vs {llm['cpu']['transformers_worker']:.1f}", f"({worker:.2f}×)",
            ])  # fmt: skip
    table = md_table(
        ["scratch GPT 4×256, batch 1", "tokens/s", "per CPU-second", "goal"],
        rows,
        ["---", "---:", "---:", "---"],
    ).rstrip()
    return (
        f"{table}\n\n{report['new_tokens']} new tokens, fastest of 3 runs; per CPU-second is the median run's. "
        f"torch {report['torch']}, measured {report['measured_at']}, {_load(report)}."
    )  # fmt: skip
