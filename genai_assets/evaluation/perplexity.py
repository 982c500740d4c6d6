"""Perplexity and bits per character of any of our language models on a list of texts.

Perplexity is per token of the model's *own* tokenizer, so it only compares models that share
a tokenizer. Bits per character does not depend on the tokenizer: the total negative
log-likelihood of the same characters, in bits, divided by the number of characters
(Graves 2013, "Generating Sequences With Recurrent Neural Networks", sec. 3).

Every text is scored after a short context prefix that is itself not scored: the poem start
marker ``<|startofpoem|>`` when the tokenizer knows it (fine-tuned and scratch models are
trained that way), else the tokenizer's bos (or eos, GPT-2's document separator). No end
marker is scored, so every model is scored on exactly the characters of the text.
Texts longer than the model's context are scored with a sliding window (stride = half the
context), each token once, always with at least half a context of history.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from genai_assets.text.tokenization import POEM_START


@dataclass(frozen=True)
class PerplexityResult:
    n_texts: int
    n_tokens: int  # scored tokens (model's own tokenizer)
    n_chars: int  # characters of the scored texts
    total_nll_nats: float  # summed negative log-likelihood
    perplexity: float  # exp(total_nll / n_tokens)
    bits_per_char: float  # total_nll / ln 2 / n_chars


def context_prefix_ids(tokenizer) -> list[int]:
    """Unscored start context: the poem marker if known, else bos, else eos (see module doc)."""
    marker = tokenizer.convert_tokens_to_ids(POEM_START)
    if isinstance(marker, int) and marker != tokenizer.unk_token_id:
        return [marker]
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return [int(token_id)]
    raise ValueError("Tokenizer has no poem marker, bos or eos token to start the scored context with.")


def logits_function(model) -> Callable[[Any], Any]:
    """ids (B, T) → logits (B, T, V) for a transformers model or a scratch model (``forward(idx)``)."""
    if hasattr(model, "generation_config"):  # transformers PreTrainedModel
        return lambda ids: model(input_ids=ids).logits
    return lambda ids: model(ids)[0]


def truncate_at_line(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` at a line break (so no model sees half a word)."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    cut = text.rfind("\n", 0, max_chars + 1)
    return text[: cut if cut > 0 else max_chars].rstrip()


def _score_sequence(logits_of, ids: list[int], first_target: int, context: int | None) -> tuple[float, int]:
    """Summed NLL (nats) and count of the tokens ``ids[first_target:]``, each predicted from its past."""
    import torch
    import torch.nn.functional as F

    total, count = 0.0, 0
    length = len(ids)
    stride = max(1, context // 2) if context else length
    target_start = first_target
    while target_start < length:
        target_end = (
            min(length, context) if (context and target_start == first_target) else target_start + stride
        )
        target_end = min(length, max(target_end, target_start + 1))
        window_start = max(0, target_end - context) if context else 0
        window = torch.tensor([ids[window_start:target_end]])  # (1, L)
        logits = logits_of(window)  # (1, L, V)
        if logits.shape[1] != window.shape[1]:
            raise ValueError(f"Model returned logits for {logits.shape[1]} of {window.shape[1]} positions.")
        # logits at position i predict token i + 1: targets [target_start, target_end).
        predicting = logits[0, target_start - 1 - window_start : target_end - 1 - window_start]  # (n, V)
        targets = window[0, target_start - window_start : target_end - window_start]  # (n,)
        total += float(F.cross_entropy(predicting.float(), targets, reduction="sum"))
        count += int(targets.numel())
        target_start = target_end
    return total, count


def evaluate_perplexity(
    model, tokenizer, texts: Sequence[str], context_length: int | None = None
) -> PerplexityResult:
    """Perplexity and bits/char of ``model`` on ``texts`` (see the module docstring for the scheme)."""
    import torch

    texts = [text for text in texts if text]
    if not texts:
        raise ValueError("No texts to score.")
    if context_length is not None and context_length < 2:
        raise ValueError(f"context_length must be >= 2, got {context_length}.")
    prefix = context_prefix_ids(tokenizer)
    logits_of = logits_function(model)
    total_nll, n_tokens, n_chars = 0.0, 0, 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for text in texts:
                ids = prefix + list(tokenizer(text, add_special_tokens=False)["input_ids"])
                nll, count = _score_sequence(logits_of, ids, len(prefix), context_length)
                total_nll += nll
                n_tokens += count
                n_chars += len(text)
    finally:
        model.train(was_training)
    return PerplexityResult(
        n_texts=len(texts),
        n_tokens=n_tokens,
        n_chars=n_chars,
        total_nll_nats=total_nll,
        perplexity=math.exp(total_nll / n_tokens),
        bits_per_char=total_nll / math.log(2) / n_chars,
    )
