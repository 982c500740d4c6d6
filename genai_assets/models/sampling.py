"""Next-token sampling shared by every scratch model: temperature, top-k and nucleus (top-p) filtering.

Filtering sets the logits of excluded tokens to ``-inf`` so ``softmax`` gives them probability 0.
The rules follow the Hugging Face logits warpers (``TopKLogitsWarper``, ``TopPLogitsWarper``),
which the tests use as the reference:

* top-k keeps every token whose logit is >= the k-th largest (ties at the boundary survive);
* top-p (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration") keeps the
  smallest set of most likely tokens whose probabilities sum to at least ``p``; the most likely
  token is always kept.

Shape letters: B batch, V vocabulary.
"""

from __future__ import annotations

import torch


def filter_top_k(logits: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """``logits`` (B, V) with everything below the k-th largest value set to ``-inf``."""
    if top_k is None or top_k <= 0 or top_k >= logits.size(-1):
        return logits
    kth_largest = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def filter_top_p(logits: torch.Tensor, top_p: float | None) -> torch.Tensor:
    """``logits`` (B, V) keeping only the nucleus: the top tokens holding probability mass >= ``top_p``."""
    if top_p is None or top_p >= 1.0:
        return logits
    if top_p <= 0.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
    sorted_logits, sorted_index = torch.sort(logits, dim=-1, descending=True)  # (B, V) each
    probabilities = torch.softmax(sorted_logits, dim=-1)
    # Mass of the tokens strictly before each one: a token is dropped once that mass already reaches p.
    mass_before = torch.cumsum(probabilities, dim=-1) - probabilities
    drop_sorted = mass_before >= top_p
    drop_sorted[..., 0] = False  # the most likely token always stays
    drop = drop_sorted.scatter(-1, sorted_index, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token id per row from ``logits`` (B, V) → (B, 1). ``temperature=0`` means greedy."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}.")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = filter_top_p(filter_top_k(logits / temperature, top_k), top_p)
    probabilities = torch.softmax(logits.float(), dim=-1)
    return torch.multinomial(probabilities, num_samples=1, generator=generator)
