"""Generated blocks in README.md and docs/*.md: every measured figure comes from the lake.

A block in a Markdown file looks like::

    <!-- BEGIN generated:eval_table -->
    ...anything: replaced on every run...
    <!-- END generated:eval_table -->

``regenerate(paths, lake_root)`` replaces each block's body with its renderer's output, read
from the files the assets wrote (``reports/*.json``, model ``metrics.json``, the Parquet
tables). A block whose inputs are missing is left as it is, and the result says which asset
to materialize. Running it twice changes nothing the second time.

Adding a block: write a function ``(LakeFiles) -> str`` and register it with
``@renderer("name", needs=("relative/path", ...), asset="asset_to_materialize")``; then put
the two marker comments where the figures belong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from genai_assets.escaping import md_code_span, md_inline, md_table
from genai_assets.lake import atomic_write_text
from genai_assets.reporting.bench_tables import (
    BENCH_CLEANSE,
    BENCH_GENERATION,
    cleanse_benchmark_table,
    generation_benchmark_table,
)

BLOCK = re.compile(
    r"(?P<begin><!-- BEGIN generated:(?P<name>[a-z0-9_]+)[^>]*-->\n)(?P<body>.*?)(?P<end><!-- END generated:(?P=name) -->)",
    re.DOTALL,
)
BEGIN_ONLY = re.compile(r"<!-- BEGIN generated:([a-z0-9_]+)")
RUN_TIMINGS = "reports/run_timings.json"
FINETUNE_SWEEP = "reports/finetune_sweep/sweep.json"
SCRATCH_VS_GRU = "reports/scratch_vs_gru.json"


class LakeFiles:
    """Read access to a lake's outputs for renderers (JSON and Parquet, relative paths)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def exists(self, relative: str) -> bool:
        if "*" in relative:
            return any(self.root.glob(relative))
        return (self.root / relative).exists()

    def json(self, relative: str):
        return json.loads((self.root / relative).read_text(encoding="utf-8"))

    def parquet(self, relative: str, columns: list[str] | None = None) -> pd.DataFrame:
        paths = sorted(self.root.glob(relative)) if "*" in relative else [self.root / relative]
        return pd.concat([pd.read_parquet(path, columns=columns) for path in paths], ignore_index=True)


@dataclass(frozen=True)
class Renderer:
    name: str
    render: Callable[[LakeFiles], str]
    needs: tuple[str, ...]  # lake-relative paths (globs allowed) that must exist
    asset: str  # what to materialize when they don't ...
    hint: str = ""  # ... or, for inputs no asset writes, what to run instead


RENDERERS: dict[str, Renderer] = {}


def renderer(name: str, needs: Iterable[str], asset: str = "", hint: str = ""):
    """Register ``function`` as the renderer of block ``name`` (``asset`` or ``hint`` says how to get its inputs)."""

    def register(function: Callable[[LakeFiles], str]) -> Callable[[LakeFiles], str]:
        if name in RENDERERS:
            raise ValueError(f"Renderer {name!r} is registered twice.")
        RENDERERS[name] = Renderer(name, function, tuple(needs), asset, hint)
        return function

    return register


@dataclass
class FileResult:
    path: Path
    regenerated: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # human-readable: block, missing inputs, asset
    changed: bool = False


def regenerate_text(text: str, files: LakeFiles, origin: str = "<text>") -> tuple[str, FileResult]:
    """``text`` with every generated block re-rendered; raises on unknown or unclosed blocks."""
    result = FileResult(Path(origin))
    closed = {match.start() for match in BLOCK.finditer(text)}
    for match in BEGIN_ONLY.finditer(text):
        if match.start() not in closed:
            raise ValueError(f"{origin}: block {match.group(1)!r} has no matching END marker.")
        if match.group(1) not in RENDERERS:
            raise ValueError(
                f"{origin}: unknown generated block {match.group(1)!r}; known: {', '.join(sorted(RENDERERS))}."
            )

    def replace(match: re.Match) -> str:
        block = RENDERERS[match.group("name")]
        missing = [need for need in block.needs if not files.exists(need)]
        if missing:
            how = block.hint or f"materialize `{block.asset}`"
            result.missing.append(f"{block.name}: {', '.join(missing)} not in {files.root} — {how}")
            return match.group(0)
        body = block.render(files).rstrip("\n") + "\n"
        result.regenerated.append(block.name)
        return match.group("begin") + body + match.group("end")

    new_text = BLOCK.sub(replace, text)
    result.changed = new_text != text
    return new_text, result


def regenerate(paths: Iterable[str | Path], lake_root: str | Path, check: bool = False) -> list[FileResult]:
    """Rewrite the generated blocks of every file in ``paths`` (atomically; untouched if unchanged).

    With ``check`` nothing is written: the results say which files would change.
    """
    files = LakeFiles(lake_root)
    results = []
    for path in map(Path, paths):
        text = path.read_text(encoding="utf-8")
        new_text, result = regenerate_text(text, files, str(path))
        result.path = path
        if result.changed and not check:
            atomic_write_text(path, new_text)
        results.append(result)
    return results


# ---------------------------------------------------------------- formatting helpers


def _int(value) -> str:
    return f"{int(value):,}"


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def _seconds(value: float) -> str:
    value = float(value)
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds:02d} s"


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    # Cells hold names and text read from the lake: escaped (genai_assets.escaping); code spans built
    # with md_code_span pass through.
    return md_table(header, rows, align).rstrip("\n")


# ---------------------------------------------------------------- renderers


@renderer("corpus_counts", needs=("raw_poems/*.parquet", "cleansed_poems.parquet"), asset="cleansed_poems")
def corpus_counts(files: LakeFiles) -> str:
    raw = files.parquet("raw_poems/*.parquet", columns=["source"])
    clean = files.parquet("cleansed_poems.parquet", columns=["source", "split"])
    splits = clean["split"].value_counts()
    sources = clean["source"].value_counts()
    per_source = " + ".join(f"{_int(count)} {name}" for name, count in sources.items())
    return (
        f"Demo corpus: {_int(len(raw))} raw poems → **{_int(len(clean))}** cleansed ({per_source}; "
        f"{_int(splits.get('train', 0))} / {_int(splits.get('val', 0))} / {_int(splits.get('test', 0))} "
        "train / val / test)."
    )


@renderer(
    "demo_timings",
    needs=(RUN_TIMINGS,),
    hint="run `make demo` (report-docs reads step times from the Dagster instance in $DAGSTER_HOME)",
)
def demo_timings(files: LakeFiles) -> str:
    timings = files.json(RUN_TIMINGS)
    assets = timings["assets"]
    rows = [
        [md_code_span(row["asset"], table_cell=True), row.get("group") or "–", _seconds(row["seconds"])]
        for row in assets
    ]
    total = sum(row["seconds"] for row in assets)
    per_group: dict[str, float] = {}
    for row in assets:
        group = row.get("group") or "–"
        per_group[group] = per_group.get(group, 0.0) + row["seconds"]
    groups = ", ".join(f"{group} {_seconds(seconds)}" for group, seconds in per_group.items())
    lines = [
        _table(["asset (step time, latest materialization)", "group", "time"], ["---", "---", "---:"], rows),
        "",
        f"Sum of the step times: {_seconds(total)}; per group: {groups}.",
    ]
    if "runs_wall_seconds" in timings:
        lines.append(
            f"Wall time of the {timings['runs']} runs behind these materializations, first start to last "
            f"end: {_seconds(timings['runs_wall_seconds'])}."
        )
    lines.append(f"(Read from the Dagster instance on {timings['collected_at']}.)")
    return "\n".join(lines)


EVAL_COLUMNS = [
    ("perplexity", "perplexity (own tokens)", 1),
    ("bits_per_char", "bits/char", 3),
    ("ood_bits_per_char", "bits/char, out-of-domain", 3),
    ("bleu", "BLEU", 2),
    ("chrf", "chrF", 1),
    ("distinct_2", "distinct-2", 3),
    ("self_bleu", "self-BLEU", 1),
    ("copied_8gram_share", "copied 8-grams", 3),
    ("rhyme_rate", "rhyme rate", 2),
]


@renderer("eval_table", needs=("reports/evaluation.json",), asset="evaluation")
def eval_table(files: LakeFiles) -> str:
    report = files.json("reports/evaluation.json")
    models = report["models"]
    columns = [column for column in EVAL_COLUMNS if any(column[0] in row for row in models)]
    rows = []
    for row in models:
        name = "real continuations" if row["model"] == "reference" else row["model"]
        rows.append([name] + [_num(row.get(key), digits) for key, _, digits in columns])
    settings = report["settings"]
    lines = [
        f"Test split; perplexity and bits per character on {settings['max_perplexity_poems']} poems "
        f"(cut at {settings['max_chars_per_poem']} characters); {settings['n_prompts']} prompts of "
        f"{settings['prompt_lines']} lines, {settings['max_new_tokens']} new tokens, temperature "
        f"{settings['temperature']}, top-k {settings['top_k']}, top-p {settings['top_p']}, seed {settings['seed']}; "
        f"BLEU/chrF against the next {settings['continuation_lines']} real lines.",
        "",
        _table(["model"] + [label for _, label, _ in columns], ["---"] + ["---:"] * len(columns), rows),
    ]
    if report.get("skipped"):
        lines += [
            "",
            "Not evaluated: "
            + "; ".join(f"{md_code_span(k)} ({md_inline(v)})" for k, v in report["skipped"].items())
            + ".",
        ]
    return "\n".join(lines)


@renderer("finetune_summary", needs=("models/finetuned_lm/metrics.json",), asset="finetuned_lm")
def finetune_summary(files: LakeFiles) -> str:
    metrics = files.json("models/finetuned_lm/metrics.json")
    config = metrics["config"]
    recipe = (
        f"LoRA r={config['lora_r']} (alpha {config['lora_alpha']}, "
        f"{', '.join(config['lora_target_modules']) or 'peft default modules'})"
        if config.get("lora")
        else "all weights"
    )
    lines = [
        f"Recipe: {recipe}, lr {config['learning_rate']:g}, {metrics['steps']} steps × {config['batch_size']} "
        f"rows × {config['block_size']} tokens ({config['collation']}); "
        f"{_int(metrics['n_trainable_parameters'])} trainable parameters.",
        "",
    ]
    rows = [
        [
            f"held-out perplexity (packed test blocks, {_int(metrics['test_tokens'])} tokens)",
            _num(metrics["base_test_perplexity"], 1),
            _num(metrics["finetuned_test_perplexity"], 1),
            f"{metrics['finetuned_test_perplexity'] / metrics['base_test_perplexity'] - 1:+.1%}",
        ]
    ]
    bpc = metrics.get("bits_per_char")
    if bpc:
        for key, label in (("in_domain", "bits/char, test poems"), ("ood", "bits/char, out-of-domain poems")):
            base, tuned = bpc["base"][key], bpc["finetuned"][key]
            rows.append(
                [f"{label} ({bpc['n_texts'][key]})", _num(base), _num(tuned), f"{tuned / base - 1:+.1%}"]
            )
    lines.append(_table(["measure", "base", "fine-tuned", "change"], ["---", "---:", "---:", "---:"], rows))
    stats = metrics.get("training_stats") or []
    if stats:
        lines += [
            "",
            _table(
                ["epoch", "training loss", "validation loss", "training time", "validation time"],
                ["---:", "---:", "---:", "---:", "---:"],
                [
                    [
                        str(row.get("epoch")),
                        _num(row.get("training_loss"), 2),
                        _num(row.get("validation_loss"), 2),
                        _seconds(row["training_time_s"]) if row.get("training_time_s") is not None else "–",
                        _seconds(row["validation_time_s"])
                        if row.get("validation_time_s") is not None
                        else "–",
                    ]
                    for row in stats
                ],
            ),
        ]
    return "\n".join(lines)


@renderer("scratch_vs_rnn", needs=("models/rnn_baselines.json",), asset="rnn_baselines")
def scratch_vs_rnn(files: LakeFiles) -> str:
    record = files.json("models/rnn_baselines.json")
    rows = [
        [
            row["model"],
            _num(row["val_loss"], 3),
            _num(row["val_perplexity"], 1),
            _num(row["val_bpc"], 3),
            _int(row["parameters"]),
            _int(row["tokens_seen"]),
            _seconds(row["train_seconds"]),
        ]
        for row in record["comparison"]
    ]
    return "\n".join(
        [
            _table(
                [
                    "model",
                    "val loss",
                    "val perplexity",
                    "val bits/char",
                    "parameters",
                    "tokens seen",
                    "train time",
                ],
                ["---", "---:", "---:", "---:", "---:", "---:", "---:"],
                rows,
            ),
            "",
            f"RNN budget: {record['budget']}; best RNN: {record['best'].upper()} ({record['selection']}).",
        ]
    )


@renderer("embedding_agreement", needs=("embeddings/meta.json",), asset="cooccurrence_embeddings")
def embedding_agreement(files: LakeFiles) -> str:
    meta = files.json("embeddings/meta.json")
    overlap = meta.get("mean_neighbour_overlap")
    return (
        f"Demo agreement with GloVe ({_int(meta['n_sentences'])} lines, {_int(meta['vocab_size'])}-word "
        f"vocabulary, {_int(meta['shared_vocab_with_glove'])} shared): mean top-{meta['config']['neighbours']} "
        f"neighbour overlap {'–' if overlap is None else f'{overlap:.0%}'}, Spearman ρ of pairwise cosines "
        f"{meta['spearman_rho']:.2f} over {_int(meta['spearman_pairs'])} pairs, analogies "
        f"{meta['analogies_ours_correct']}/{meta['analogies_answered']} for ours and "
        f"{meta['analogies_glove_correct']}/{meta['analogies_answered']} for GloVe."
    )


def sweep_table(rows: list[dict]) -> str:
    """The fine-tuning recipe sweep (``benchmarks/sweep_finetune.py``) as a Markdown table."""
    table = _table(
        [
            "recipe",
            "steps",
            "train tokens",
            "trainable params",
            "in-domain bits/char (vs base)",
            "out-of-domain bits/char (vs base)",
            "goal met",
            "fine-tune time (under load)",
        ],
        ["---", "---:", "---:", "---:", "---:", "---:", ":-:", "---:"],
        [
            [
                md_code_span(row["recipe"], table_cell=True),
                str(row["steps"]),
                _int(row["train_tokens"]),
                _int(row["trainable_parameters"]),
                f"{row['in_domain_bpc']:.3f} ({row['in_domain_change']:+.1%})",
                f"{row['ood_bpc']:.3f} ({row['ood_change']:+.1%})",
                "yes" if row["meets_goal"] else "no",
                f"{row['finetune_seconds']:.0f} s",
            ]
            for row in rows
        ],
    )
    if not rows:
        return table
    return (
        f"{table}\n\nBase model: in-domain {rows[0]['base_in_domain_bpc']:.3f}, "
        f"out-of-domain {rows[0]['base_ood_bpc']:.3f} bits/char."
    )


@renderer("finetune_sweep", needs=(FINETUNE_SWEEP,), hint="run `benchmarks/sweep_finetune.py`")
def finetune_sweep(files: LakeFiles) -> str:
    return sweep_table(files.json(FINETUNE_SWEEP))


def scratch_gru_table(rows: list[dict]) -> str:
    """Equal-budget runs of ``benchmarks/scratch_vs_gru.py``, by budget then val loss."""
    return _table(
        ["run", "model", "tokens", "parameters", "lr", "val loss", "val bits/char", "time (under load)"],
        ["---", "---", "---:", "---:", "---:", "---:", "---:", "---:"],
        [
            [
                md_code_span(row["run"], table_cell=True),
                row["model"].upper(),
                _int(row["tokens"]),
                _int(row["parameters"]),
                f"{row['learning_rate']:g}",
                _num(row["val_loss"]),
                _num(row["val_bpc"]),
                f"{row['seconds']:.0f} s",
            ]
            for row in sorted(rows, key=lambda row: (row["tokens"], row["val_loss"]))
        ],
    )


@renderer("scratch_vs_gru", needs=(SCRATCH_VS_GRU,), hint="run `benchmarks/scratch_vs_gru.py`")
def scratch_vs_gru(files: LakeFiles) -> str:
    return scratch_gru_table(files.json(SCRATCH_VS_GRU))


BENCH_GPU = "reports/bench_gpu.json"
NOT_MEASURED = "not measured (no GPU lent to this session)"
# benchmarks/bench_gpu.py's cases: (key, what, before = issue 16's H200 figures of the old loop, goal)
GPU_BENCHMARK_CASES = [
    ("ours_gpt2_small_fp32", "our GPT, GPT-2-small shape (12×12×768, block 1024, batch 8), train(), fp32",
     "50,394 tok/s, 5.6 % (fp32, no TF32)", "–"),
    ("ours_gpt2_small", "same, train(), precision: auto (bf16)", "50,394 tok/s, 5.6 %", "≥ 45 % MFU"),
    ("ours_gpt2_small_fp16", "same, precision: fp16 forced (the T4 path: fp16 autocast + GradScaler)", "–",
     "runs, finite loss"),
    ("hf_gpt2_small", "HF GPT2LMHeadModel, same shape, same loop and precision", "–",
     "ours ≥ 2× this"),
    ("minimal_gpt2_small", "our GPT, minimal bf16 + TF32 + fused AdamW loop (the ceiling)",
     "323,685 tok/s, 35.7 %", "–"),
    ("gpu_preset", "scratch_transformer gpu preset (6×6×384, block 256, batch 64), train(), bf16 + compile",
     "380,725 tok/s, 4.0 % (fp32)", "≥ 1.2 M tok/s"),
    ("minimal_gpu_preset", "same model and batches, minimal bf16 + compile loop", "1,364,799 tok/s, 14.3 %", "–"),
    ("finetune_gpt2_124m", "GPT-2 124M (random init), fine-tune loss on packed poems, train(), bf16",
     "–", "≥ 40 % MFU"),
]  # fmt: skip


def gpu_benchmark_table(report: dict | None) -> str:
    """``benchmarks/bench_gpu.py``'s JSON as the Benchmarks table; a run without CUDA is "not measured"."""
    measured = report is not None and report.get("device_type") == "cuda"
    by_case = {row["case"]: row for row in report["cases"]} if measured else {}
    rows = []
    for case, what, before, goal in GPU_BENCHMARK_CASES:
        row = by_case.get(case)
        figures = (
            [f"{row['tokens_per_second']:,.0f}", f"{100 * row['mfu']:.1f} %"] if row else [NOT_MEASURED] * 2
        )
        rows.append([what, before, *figures, goal])
    table = _table(
        ["case", "before (issue 16, H200)", "tokens/s", "MFU", "goal"],
        ["---", "---:", "---:", "---:", "---"],
        rows,
    )
    if not measured:
        return table
    ratios = ", ".join(f"{name.replace('_', ' ')} {value:.2f}×" for name, value in report["ratios"].items())
    return (
        f"{table}\n\nMeasured on {report['device']} (torch {report['torch']}), {report['steps']} steps per case, "
        f"compile {'on' if report['compile'] else 'off'} for cases 2–4; MFU against the {report['peak_basis']} "
        f"({report['peak_flops'] / 1e12:.0f} TFLOP/s). Ratios: {ratios}."
    )


@renderer(
    "gpu_benchmark",
    needs=(BENCH_GPU,),
    hint=f"run `benchmarks/bench_gpu.py --out <lake>/{BENCH_GPU}` on a GPU",
)
def gpu_benchmark(files: LakeFiles) -> str:
    return gpu_benchmark_table(files.json(BENCH_GPU))


@renderer(
    "cleanse_benchmark",
    needs=(BENCH_CLEANSE,),
    hint=f"run `benchmarks/bench_cleanse_gutenberg.py --out <lake>/{BENCH_CLEANSE}`",
)
def cleanse_benchmark(files: LakeFiles) -> str:
    return cleanse_benchmark_table(files.json(BENCH_CLEANSE))


@renderer(
    "generation_benchmark",
    needs=(BENCH_GENERATION,),
    hint=f"run `benchmarks/bench_models.py --only generation --llm --out <lake>/{BENCH_GENERATION}`",
)
def generation_benchmark(files: LakeFiles) -> str:
    return generation_benchmark_table(files.json(BENCH_GENERATION))
