"""The language-modelling loss every model in this package shares, and the label value it skips.

``IGNORE_INDEX`` is defined here only; the LM batches (``training.lm_data``, ``text.datasets``,
``finetune.data``) import it. torch is imported inside the function so the numpy-only data code
can import the constant without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100  # target value skipped by the loss (padding); cross_entropy's default


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (B, T, V) against ``targets`` (B, T), skipping -100 targets."""
    import torch.nn.functional as F

    batch, time, vocab = logits.shape
    return F.cross_entropy(
        logits.view(batch * time, vocab),  # (B·T, V)
        targets.reshape(batch * time),  # (B·T,)
        ignore_index=IGNORE_INDEX,
    )
