"""The language-modelling loss every model in this package shares."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # target value skipped by the loss (padding); cross_entropy's default


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (B, T, V) against ``targets`` (B, T), skipping -100 targets."""
    batch, time, vocab = logits.shape
    return F.cross_entropy(
        logits.view(batch * time, vocab),  # (B·T, V)
        targets.reshape(batch * time),  # (B·T,)
        ignore_index=IGNORE_INDEX,
    )
