"""Loss, held-out perplexity and the seed's per-epoch training-stats table for fine-tuning."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from genai_assets.finetune.data import RowBatches


def lm_loss(model, batch: dict) -> tuple[Any, Any]:
    """Mean next-token loss over the non-padding targets of ``batch`` and their count (a 0-d tensor).

    The count stays on the device: reading it here would make the host wait for the GPU every batch.
    """
    device = next(model.parameters()).device
    batch = {name: tensor.to(device) for name, tensor in batch.items()}
    output = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
    )
    n_targets = (batch["labels"][:, 1:] != -100).sum()  # the model shifts labels by one
    return output.loss, n_targets


def heldout_perplexity(model, batches: RowBatches, precision=None) -> dict:
    """Token-weighted mean loss and perplexity of ``model`` over every batch of ``batches``.

    ``precision``: the run's :class:`~genai_assets.training.loop.Precision` (autocast); None = as loaded.
    """
    from genai_assets.training.loop import evaluate

    total_tokens = sum(int((batch["labels"][:, 1:] != -100).sum()) for batch in batches())  # on the host
    if total_tokens == 0:
        raise ValueError("The test split has no target tokens: cannot compute perplexity.")
    mean = evaluate(model, batches, lm_loss, max_batches=0, precision=precision)
    return {
        "loss": mean,
        "perplexity": math.exp(min(mean, 700.0)),
        "n_tokens": total_tokens,
        "n_blocks": len(batches),
    }


class TimedLoss:
    """``lm_loss`` that also times validation passes (calls made in eval mode), one entry per pass."""

    def __init__(self) -> None:
        self.eval_pass_seconds: list[float] = []
        self._last_was_eval = False

    def __call__(self, model, batch):
        if model.training:
            self._last_was_eval = False
            return lm_loss(model, batch)
        started = time.perf_counter()
        result = lm_loss(model, batch)
        if not self._last_was_eval:
            self.eval_pass_seconds.append(0.0)
            self._last_was_eval = True
        self.eval_pass_seconds[-1] += time.perf_counter() - started
        return result


def training_stats(history: list[dict], steps_per_epoch: int, eval_seconds: dict[int, float]) -> list[dict]:
    """The seed's table: one row per (possibly partial) epoch with mean train loss and end val loss."""
    rows, previous_elapsed = [], 0.0
    by_epoch: dict[int, list[dict]] = {}
    for row in history:
        by_epoch.setdefault((row["step"] - 1) // steps_per_epoch + 1, []).append(row)
    for epoch, epoch_rows in sorted(by_epoch.items()):
        last = epoch_rows[-1]
        val_rows = [row for row in epoch_rows if "val_loss" in row]
        rows.append(
            {
                "epoch": epoch,
                "training_loss": float(np.mean([row["train_loss"] for row in epoch_rows])),
                "validation_loss": val_rows[-1]["val_loss"] if val_rows else None,
                "training_time_s": round(last["elapsed_s"] - previous_elapsed, 2),
                "validation_time_s": round(sum(eval_seconds.get(row["step"], 0.0) for row in val_rows), 2)
                if val_rows
                else None,
                "steps": len(epoch_rows),
            }
        )
        previous_elapsed = last["elapsed_s"]
    return rows
