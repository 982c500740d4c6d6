"""``genai-assets report-docs``: generated blocks in Markdown rewritten from a synthetic lake."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from genai_assets.reporting.docs_tables import RENDERERS, LakeFiles, regenerate, regenerate_text


def write_json(path: Path, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


@pytest.fixture()
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    (root / "raw_poems").mkdir(parents=True)
    pd.DataFrame({"source": ["gutenberg"] * 5}).to_parquet(root / "raw_poems" / "gutenberg.parquet")
    pd.DataFrame({"source": ["shakespeare"] * 2}).to_parquet(root / "raw_poems" / "shakespeare.parquet")
    pd.DataFrame(
        {
            "source": ["gutenberg"] * 4 + ["shakespeare"] * 2,
            "split": ["train", "train", "train", "val", "test", "train"],
        }
    ).to_parquet(root / "cleansed_poems.parquet")
    write_json(
        root / "reports" / "evaluation.json",
        {
            "models": [
                {"model": "base_lm", "perplexity": 127.84, "bits_per_char": 1.9091, "ood_bits_per_char": 1.5,
                 "bleu": 0.84, "chrf": 16.31, "distinct_2": 0.819, "self_bleu": 7.0, "copied_8gram_share": 0.0,
                 "rhyme_rate": 0.03},
                {"model": "reference", "perplexity": None, "bits_per_char": None, "ood_bits_per_char": None,
                 "bleu": None, "chrf": None, "distinct_2": 0.98, "self_bleu": 4.6, "copied_8gram_share": 0.008,
                 "rhyme_rate": 0.23},
            ],
            "skipped": {"scratch_transformer": "no model folder"},
            "settings": {"max_perplexity_poems": 64, "max_chars_per_poem": 1200, "n_prompts": 16,
                         "prompt_lines": 2, "max_new_tokens": 48, "temperature": 0.8, "top_k": 50,
                         "top_p": 0.95, "seed": 1234, "continuation_lines": 4},
        },
    )  # fmt: skip
    return root


DOC = """# Title

Hand-written prose stays.

<!-- BEGIN generated:corpus_counts -->
stale: 19,943 poems
<!-- END generated:corpus_counts -->

<!-- BEGIN generated:eval_table (do not edit) -->
old table
<!-- END generated:eval_table -->

<!-- BEGIN generated:finetune_summary -->
old fine-tune figures
<!-- END generated:finetune_summary -->
"""

EXPECTED_COUNTS = (
    "Demo corpus: 7 raw poems → **6** cleansed (4 gutenberg + 2 shakespeare; 4 / 1 / 1 train / val / test)."
)
EXPECTED_EVAL = """Test split; perplexity and bits per character on 64 poems (cut at 1200 characters); 16 prompts of 2 lines, 48 new tokens, temperature 0.8, top-k 50, top-p 0.95, seed 1234; BLEU/chrF against the next 4 real lines.

| model | perplexity (own tokens) | bits/char | bits/char, out-of-domain | BLEU | chrF | distinct-2 | self-BLEU | copied 8-grams | rhyme rate |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| base_lm | 127.8 | 1.909 | 1.500 | 0.84 | 16.3 | 0.819 | 7.0 | 0.000 | 0.03 |
| real continuations | – | – | – | – | – | 0.980 | 4.6 | 0.008 | 0.23 |

Not evaluated: `scratch_transformer` (no model folder)."""


def test_blocks_rewritten_exactly_and_missing_inputs_reported(lake: Path, tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text(DOC)
    [result] = regenerate([doc], lake)
    text = doc.read_text()
    assert result.changed and result.regenerated == ["corpus_counts", "eval_table"]
    assert (
        f"<!-- BEGIN generated:corpus_counts -->\n{EXPECTED_COUNTS}\n<!-- END generated:corpus_counts -->"
        in text
    )
    assert (
        f"<!-- BEGIN generated:eval_table (do not edit) -->\n{EXPECTED_EVAL}\n<!-- END generated:eval_table -->"
        in text
    )
    assert "Hand-written prose stays." in text and "19,943" not in text
    # No fine-tune in the lake: that block keeps its old body and the result names the asset.
    assert "old fine-tune figures" in text
    assert result.missing == [
        f"finetune_summary: models/finetuned_lm/metrics.json not in {lake} — materialize `finetuned_lm`"
    ]


def test_second_run_changes_nothing(lake: Path, tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(DOC)
    regenerate([doc], lake)
    first = doc.read_text()
    [again] = regenerate([doc], lake)
    assert not again.changed and doc.read_text() == first


def test_check_mode_writes_nothing(lake: Path, tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(DOC)
    [result] = regenerate([doc], lake, check=True)
    assert result.changed and doc.read_text() == DOC


def test_unknown_or_unclosed_block_is_an_error(lake: Path) -> None:
    with pytest.raises(ValueError, match="unknown generated block 'eval_tabel'"):
        regenerate_text(
            "<!-- BEGIN generated:eval_tabel -->\nx\n<!-- END generated:eval_tabel -->\n", LakeFiles(lake)
        )
    with pytest.raises(ValueError, match="'eval_table' has no matching END marker"):
        regenerate_text("<!-- BEGIN generated:eval_table -->\nx\n", LakeFiles(lake))


def test_finetune_summary_and_rnn_table_from_their_files(lake: Path) -> None:
    write_json(
        lake / "models" / "finetuned_lm" / "metrics.json",
        {
            "config": {"lora": True, "lora_r": 16, "lora_alpha": 32, "lora_target_modules": ["q_proj", "v_proj"],
                       "learning_rate": 0.002, "batch_size": 4, "block_size": 128, "collation": "packing"},
            "steps": 80, "n_trainable_parameters": 1234567, "test_tokens": 2005,
            "base_test_perplexity": 176.7, "finetuned_test_perplexity": 119.2,
            "bits_per_char": {"base": {"in_domain": 2.0, "ood": 1.0}, "finetuned": {"in_domain": 1.8, "ood": 1.005},
                              "n_texts": {"in_domain": 64, "ood": 32}},
            "training_stats": [{"epoch": 1, "training_loss": 4.62, "validation_loss": 4.74,
                                "training_time_s": 116.0, "validation_time_s": 7.0}],
        },
    )  # fmt: skip
    text = RENDERERS["finetune_summary"].render(LakeFiles(lake))
    assert text.splitlines()[0] == (
        "Recipe: LoRA r=16 (alpha 32, q_proj, v_proj), lr 0.002, 80 steps × 4 rows × 128 tokens (packing); "
        "1,234,567 trainable parameters."
    )
    assert "| held-out perplexity (packed test blocks, 2,005 tokens) | 176.7 | 119.2 | -32.5% |" in text
    assert "| bits/char, test poems (64) | 2.000 | 1.800 | -10.0% |" in text
    assert "| bits/char, out-of-domain poems (32) | 1.000 | 1.005 | +0.5% |" in text
    assert "| 1 | 4.62 | 4.74 | 1 min 56 s | 7.0 s |" in text

    write_json(
        lake / "models" / "rnn_baselines.json",
        {
            "best": "gru", "selection": "lowest validation loss", "budget": "100 steps x 16 x 128 tokens per model",
            "comparison": [{"model": "GRU", "val_loss": 5.66, "val_perplexity": 286.0, "val_bpc": 2.63,
                            "parameters": 900000, "tokens_seen": 204800, "train_seconds": 9.5}],
        },
    )  # fmt: skip
    rnn = RENDERERS["scratch_vs_rnn"].render(LakeFiles(lake))
    assert "| GRU | 5.660 | 286.0 | 2.630 | 900,000 | 204,800 | 9.5 s |" in rnn
    assert rnn.endswith("best RNN: GRU (lowest validation loss).")


def test_cli_check_exit_code_and_message(lake: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from genai_assets.cli import main

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    doc = tmp_path / "doc.md"
    doc.write_text(DOC)
    assert main(["report-docs", "--lake", str(lake), "--check", str(doc)]) == 1
    assert main(["report-docs", "--lake", str(lake), str(doc)]) == 0
    out = capsys.readouterr().out
    assert f"{doc}: updated; regenerated: corpus_counts, eval_table" in out
    assert "left as is — finetune_summary" in out and "materialize `finetuned_lm`" in out
    assert main(["report-docs", "--lake", str(lake), "--check", str(doc)]) == 0
