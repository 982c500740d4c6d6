"""Choose the CPU fine-tuning recipe by measurement: learning vs forgetting, per recipe.

For each recipe (full weights or LoRA, learning rate, steps, block size) the packaged base
model is fine-tuned on the demo lake's ``finetune_dataset`` with the project's own
``finetune()`` and then scored in bits per character on

- in-domain: the test split's poems (the same selection and truncation as the ``evaluation``
  asset: ``perplexity_texts`` with its default settings), and
- out-of-domain: ``genai_assets.evaluation.ood_poems`` (20th-century verse in no training source),

against the base model on the same texts. The goal (issue 13): in-domain at least 10 % below
the base while out-of-domain gets no more than 1 % worse, within the demo's time budget.

    .venv/bin/python benchmarks/sweep_finetune.py --only lora_r16_lr2e-3_s80   # one recipe
    .venv/bin/python benchmarks/sweep_finetune.py --table                       # print the table

Every recipe writes ``<out>/<name>.json`` (``<out>`` defaults to ``<lake>/reports/finetune_sweep``) (so recipes can run as separate processes, one
thread each, on a shared machine); ``--table`` collects them into ``<out>/sweep.json`` and
``<out>/sweep.md``. The lake is ``$GENAI_DATA_LAKE`` (default ``data_lake``); it needs
``base_lm``, ``finetune_dataset`` and ``cleansed_poems`` materialized. Train times are wall
seconds and depend on the machine's load: compare them only within one sweep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd  # noqa: E402

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# name -> FinetuneConfig overrides. The first is the old demo recipe (40 full-weight steps at 5e-4).
RECIPES: dict[str, dict] = {
    "full_lr5e-4_s40": {"learning_rate": 5e-4, "max_steps": 40},
    "full_lr1e-4_s60": {"learning_rate": 1e-4, "max_steps": 60},
    "full_lr3e-5_s60": {"learning_rate": 3e-5, "max_steps": 60},
    "full_lr2e-4_s60": {"learning_rate": 2e-4, "max_steps": 60},
    "full_lr1e-4_s30_b256": {"learning_rate": 1e-4, "max_steps": 30, "block_size": 256},
    "lora_r16_lr1e-3_s80": {
        "lora": True,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_target_modules": ALL_LINEAR,
        "learning_rate": 1e-3,
        "max_steps": 80,
    },
    "lora_r16_lr3e-3_s80": {
        "lora": True,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_target_modules": ALL_LINEAR,
        "learning_rate": 3e-3,
        "max_steps": 80,
    },
    "lora_r8_qv_lr3e-3_s80": {"lora": True, "learning_rate": 3e-3, "max_steps": 80},
}


def lake_root() -> Path:
    return Path(os.environ.get("GENAI_DATA_LAKE", "data_lake"))


def eval_texts(lake: Path) -> dict[str, list[str]]:
    from genai_assets.evaluation.ood_poems import ood_texts
    from genai_assets.evaluation.runner import EvaluationSettings, perplexity_texts

    poems = pd.read_parquet(lake / "cleansed_poems.parquet", columns=["poem_id", "text", "split"])
    test = poems[poems["split"] == "test"]
    return {"in_domain": perplexity_texts(test, EvaluationSettings()), "ood": ood_texts()}


def bits_per_char(folder: Path, texts: dict[str, list[str]]) -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genai_assets.evaluation.perplexity import evaluate_perplexity

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    context = getattr(model.config, "max_position_embeddings", None)
    return {
        name: evaluate_perplexity(model, tokenizer, items, context).bits_per_char
        for name, items in texts.items()
    }


def base_scores(lake: Path, texts: dict, out: Path) -> dict:
    """Base model's bits/char, computed once per sweep folder (every recipe compares with it)."""
    path = out / "base.json"
    if path.is_file():
        return json.loads(path.read_text())
    scores = bits_per_char(lake / "models" / "base_lm", texts)
    path.write_text(json.dumps(scores, indent=2) + "\n")
    return scores


def run_recipe(name: str, lake: Path, out: Path) -> dict:
    from genai_assets.finetune.train import FinetuneConfig, finetune

    texts = eval_texts(lake)
    base = base_scores(lake, texts, out)
    overrides = RECIPES[name]
    config = FinetuneConfig(**overrides, sample_every=0, checkpoint_every=0, resume=False, eval_batches=4)
    folder_form = lake / "datasets" / "finetune_dataset"
    dataset = folder_form if folder_form.is_dir() else pd.read_parquet(lake / "finetune_dataset.parquet")
    folder = Path(tempfile.mkdtemp(prefix=f"sweep-{name}-"))
    try:
        started = time.perf_counter()
        result = finetune(lake / "models" / "base_lm", dataset, config, folder)
        wall = time.perf_counter() - started
        tuned = bits_per_char(folder, texts)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    row = {
        "recipe": name,
        "overrides": overrides,
        "steps": result.steps,
        "train_tokens": result.steps * config.batch_size * config.block_size * config.grad_accum_steps,
        "trainable_parameters": result.n_trainable_parameters,
        "train_seconds": round(result.train_seconds, 1),
        "finetune_seconds": round(wall, 1),
        "val_loss": result.final_val_loss,
        "base_in_domain_bpc": base["in_domain"],
        "base_ood_bpc": base["ood"],
        "in_domain_bpc": tuned["in_domain"],
        "ood_bpc": tuned["ood"],
        "in_domain_change": tuned["in_domain"] / base["in_domain"] - 1,
        "ood_change": tuned["ood"] / base["ood"] - 1,
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
    }
    row["meets_goal"] = row["in_domain_change"] <= -0.10 and row["ood_change"] <= 0.01
    (out / f"{name}.json").write_text(json.dumps(row, indent=2) + "\n")
    return row


def table(out: Path) -> str:
    """Collect the finished recipes into ``sweep.json`` (read by ``report-docs``) and ``sweep.md``."""
    from genai_assets.reporting.docs_tables import sweep_table

    rows = [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]
    rows = [row for row in rows if "recipe" in row]
    (out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    text = sweep_table(rows) + "\n"
    (out / "sweep.md").write_text(text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(RECIPES), help="Recipes to run (default: all).")
    parser.add_argument("--table", action="store_true", help="Only collect finished recipes into a table.")
    parser.add_argument("--out", type=Path, help="Results folder (default: <lake>/reports/finetune_sweep).")
    args = parser.parse_args()
    lake = lake_root()
    args.out = args.out or lake / "reports" / "finetune_sweep"
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table:
        missing = [
            path
            for path in ("models/base_lm/config.json", "cleansed_poems.parquet")
            if not (lake / path).exists()
        ]
        if missing:
            print(
                f"The lake {lake} lacks {', '.join(missing)}: materialize base_lm and finetune_dataset first."
            )
            return 2
        for name in args.only or list(RECIPES):
            print(json.dumps(run_recipe(name, lake, args.out)), flush=True)
    print(table(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
