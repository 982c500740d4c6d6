"""The language-modelling loss every model in this package shares, and the label value it skips.

``IGNORE_INDEX`` comes from :mod:`genai_assets.schema` (the core layer), where the LM batches
(``training.lm_data``, ``text.datasets``, ``finetune.data``) read it too. torch is imported inside the function so the numpy-only data code
can import the constant without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from genai_assets.schema import IGNORE_INDEX  # target value skipped by the loss (padding)

if TYPE_CHECKING:
    import torch


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (B, T, V) against ``targets`` (B, T), skipping -100 targets."""
    import torch.nn.functional as F

    batch, time, vocab = logits.shape
    return F.cross_entropy(
        logits.view(batch * time, vocab),  # (B·T, V)
        targets.reshape(batch * time),  # (B·T,)
        ignore_index=IGNORE_INDEX,
    )
