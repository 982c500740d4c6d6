"""Decoding shared by every scratch model: one token loop, repetition control, temperature, top-k, top-p.

:func:`generate_tokens` is the only decoding loop: each model's ``generate`` supplies a
``next_logits`` function (which is where its KV cache or recurrent state lives) and the loop
does the rest. Filtering sets the logits of excluded tokens to ``-inf`` so ``softmax`` gives
them probability 0. The rules follow the Hugging Face logits processors and warpers
(``RepetitionPenaltyLogitsProcessor``, ``NoRepeatNGramLogitsProcessor``, ``TopKLogitsWarper``,
``TopPLogitsWarper``), which the tests use as the reference, applied in the same order:

* repetition penalty (Keskar et al. 2019, CTRL): a token already in the sequence (prompt
  included) has its logit divided by the penalty when positive, multiplied when negative;
* no-repeat n-grams: a token that would complete an n-gram already in the sequence is banned;
* top-k keeps every token whose logit is >= the k-th largest (ties at the boundary survive);
* top-p (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration") keeps the
  smallest set of most likely tokens whose probabilities sum to at least ``p``; the most likely
  token is always kept.

Shape letters: B batch, T sequence so far, V vocabulary.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch

# The settings these functions take, declared once (in a torch-free module: configs read at import use it).
from genai_assets.models.sampling_settings import SamplingConfig as SamplingConfig


def apply_repetition_penalty(
    logits: torch.Tensor, previous_ids: torch.Tensor, penalty: float
) -> torch.Tensor:
    """``logits`` (B, V) with every token of ``previous_ids`` (B, T) made less likely by ``penalty``."""
    if penalty == 1.0 or previous_ids.numel() == 0:
        return logits
    if not penalty > 0:
        raise ValueError(f"repetition_penalty must be > 0, got {penalty}.")
    seen = torch.gather(logits, 1, previous_ids)  # (B, T): a repeated token gets the same value twice
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(1, previous_ids, seen)


def ban_repeated_ngrams(logits: torch.Tensor, previous_ids: torch.Tensor, size: int) -> torch.Tensor:
    """``logits`` (B, V) with ``-inf`` on each token that would repeat an n-gram of ``previous_ids`` (B, T).

    An n-gram (n = ``size``) is repeated when the last n-1 tokens followed by the candidate already
    occur somewhere in the row; ``size=1`` bans every token seen so far. O(T) per row and step.
    """
    if size <= 0 or previous_ids.size(1) + 1 < size:
        return logits
    logits = logits.clone()
    for row, ids in enumerate(previous_ids.tolist()):
        prefix = ids[len(ids) - size + 1 :] if size > 1 else []
        banned = {
            ids[start + size - 1]
            for start in range(len(ids) - size + 1)
            if ids[start : start + size - 1] == prefix
        }
        if banned:
            logits[row, sorted(banned)] = float("-inf")
    return logits


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


def filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """``filter_top_p(filter_top_k(logits, top_k), top_p)`` without sorting the whole vocabulary.

    Top-k leaves only the k largest logits with any probability, so the nucleus is found among
    those k (``torch.topk`` returns them sorted); every token at or above the smallest kept value
    survives. Equal to the two filters in turn whenever no other logit ties the k-th (tested).
    """
    values = torch.topk(logits, top_k, dim=-1).values  # (B, k), descending
    probabilities = torch.softmax(values, dim=-1)
    mass_before = torch.cumsum(probabilities, dim=-1) - probabilities  # as in filter_top_p
    kept = (mass_before < top_p).sum(dim=-1, keepdim=True).clamp(min=1)  # (B, 1): the first always stays
    threshold = values.gather(-1, kept - 1)  # (B, 1): the smallest kept logit
    return logits.masked_fill(logits < threshold, float("-inf"))


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    *,
    previous_ids: torch.Tensor | None = None,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
) -> torch.Tensor:
    """Draw one token id per row from ``logits`` (B, V) → (B, 1). ``temperature=0`` means greedy.

    ``repetition_penalty`` and ``no_repeat_ngram_size`` look at ``previous_ids`` (B, T), the
    sequence so far, and apply to greedy decoding too (as in transformers).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}.")
    if previous_ids is not None:
        logits = apply_repetition_penalty(logits, previous_ids, repetition_penalty)
        logits = ban_repeated_ngrams(logits, previous_ids, no_repeat_ngram_size)
    elif repetition_penalty != 1.0 or no_repeat_ngram_size > 0:
        raise ValueError(
            "repetition_penalty and no_repeat_ngram_size need previous_ids (the sequence so far)."
        )
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None and 0 < top_k < logits.size(-1) and top_p is not None and 0 < top_p < 1.0:
        logits = filter_top_k_top_p(logits, top_k, top_p)  # the course's settings: one small sort
    else:
        logits = filter_top_p(filter_top_k(logits, top_k), top_p)
    probabilities = torch.softmax(logits.float(), dim=-1)
    return torch.multinomial(probabilities, num_samples=1, generator=generator)


class RepetitionControls:
    """Repetition penalty and no-repeat n-grams kept up to date one token at a time (the fast path).

    Gives the same logits as :func:`apply_repetition_penalty` and :func:`ban_repeated_ngrams` on
    the whole sequence (tested), without their per-step cost: the set of tokens seen so far is a
    (B, V) mask updated by one scatter per new token, and the n-gram ban compares the last n-1
    tokens with every earlier window in a few tensor operations (no Python loop over the
    sequence, no copy to the host, so no device sync on a GPU).
    """

    def __init__(self, prompt: torch.Tensor, vocab_size: int, penalty: float, ngram_size: int):
        if not penalty > 0:
            raise ValueError(f"repetition_penalty must be > 0, got {penalty}.")
        self.penalty, self.ngram_size = penalty, ngram_size
        self.seen = None
        if penalty != 1.0:
            self.seen = torch.zeros(prompt.size(0), vocab_size, dtype=torch.bool, device=prompt.device)
            self.seen.scatter_(1, prompt, True)  # (B, V)

    def observe(self, token: torch.Tensor) -> None:
        """Record the new column ``token`` (B, 1)."""
        if self.seen is not None:
            self.seen.scatter_(1, token, True)

    def apply(self, logits: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
        """``logits`` (B, V) for the token after ``sequence`` (B, T), both controls applied."""
        if self.seen is not None:
            penalised = torch.where(logits < 0, logits * self.penalty, logits / self.penalty)
            logits = torch.where(self.seen, penalised, logits)
        size = self.ngram_size
        if size > 0 and sequence.size(1) >= size:  # else no complete n-gram yet
            windows = sequence.unfold(1, size, 1)  # (B, W, n): every n-gram so far
            prefix = sequence[:, sequence.size(1) - size + 1 :]  # (B, n-1): the n-gram being completed
            matches = (windows[:, :, :-1] == prefix[:, None, :]).all(dim=-1)  # (B, W)
            # A window that does not match points at a spare column V, dropped after the scatter.
            candidates = torch.where(matches, windows[:, :, -1], logits.size(-1))  # (B, W)
            banned = torch.zeros(logits.size(0), logits.size(-1) + 1, dtype=torch.bool, device=logits.device)
            banned.scatter_(1, candidates, True)
            logits = logits.masked_fill(banned[:, :-1], float("-inf"))
        return logits


def generate_tokens(
    next_logits: Callable[[torch.Tensor], torch.Tensor],
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    *,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    eos_token_id: int | Sequence[int] | None = None,
    generator: torch.Generator | None = None,
    on_token: Callable[[torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Append up to ``max_new_tokens`` tokens to ``idx`` (B, T) → (B, T + new): the one decoding loop.

    ``next_logits(idx)`` gets the whole sequence so far and returns the next-token logits (B, V);
    a model with a cache feeds itself only the tokens it has not seen. ``eos_token_id`` (one id
    or several, e.g. eos and the start-of-poem marker): stop once every row has produced one;
    rows that finished early are padded with the first. ``on_token`` sees each new (B, 1) column
    as it is chosen (streaming).

    At batch 1 the model's arithmetic per token is tiny, so this loop's own overhead matters: the
    sequence lives in one buffer allocated up front (no ``torch.cat`` per token), the repetition
    controls are updated incrementally (:class:`RepetitionControls`), and the loop runs under
    ``torch.inference_mode`` (less autograd bookkeeping per operation than ``no_grad``).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}.")
    stops = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
    batch, length = idx.shape
    with torch.inference_mode():
        buffer = idx.new_empty(batch, length + max_new_tokens)  # (B, T + new): filled as we go
        buffer[:, :length] = idx
        stop_ids = torch.tensor(stops, dtype=idx.dtype, device=idx.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=idx.device)
        controls = None
        for _ in range(max_new_tokens):
            sequence = buffer[:, :length]  # (B, T) view, no copy
            logits = next_logits(sequence)  # (B, V)
            if controls is None:  # the vocabulary size is known once the model answered
                controls = RepetitionControls(idx, logits.size(-1), repetition_penalty, no_repeat_ngram_size)
            logits = controls.apply(logits, sequence)
            next_token = sample_next_token(logits, temperature, top_k, top_p, generator)  # (B, 1)
            if stops:
                next_token = next_token.masked_fill(finished[:, None], stops[0])
                finished |= torch.isin(next_token[:, 0], stop_ids)
            buffer[:, length : length + 1] = next_token
            length += 1
            controls.observe(next_token)
            if on_token is not None:
                on_token(next_token)
            if stops and bool(finished.all()):
                break
    return buffer[:, :length].clone()  # a normal tensor again (inference tensors refuse autograd)


class GeneratesTokens:
    """Mixin giving a scratch ``nn.Module`` its ``generate``: the model only says how to get logits.

    A model implements :meth:`next_token_logits` (or :meth:`start_generation`, when what it extends
    is not ``idx``, as for an encoder-decoder); ``generate`` puts it in eval mode for the call and
    runs :func:`generate_tokens` (``**options``: ``eos_token_id``, ``generator``,
    ``repetition_penalty``, ``no_repeat_ngram_size``, ``on_token``).
    """

    def next_token_logits(self, use_cache: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        """A fresh function ``sequence (B, T) → next-token logits (B, V)`` holding one call's cache."""
        raise NotImplementedError

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        *,
        use_cache: bool = True,
        **options,
    ) -> torch.Tensor:
        """Append up to ``max_new_tokens`` tokens to ``idx`` (B, T) → (B, T + new). ``temperature=0`` is greedy."""
        with self.evaluating():
            next_logits, start = self.start_generation(idx, use_cache)
            return generate_tokens(next_logits, start, max_new_tokens, temperature, top_k, top_p, **options)

    def start_generation(self, idx: torch.Tensor, use_cache: bool) -> tuple[Callable, torch.Tensor]:
        """``(next_logits, sequence to extend)``: a decoder-only model extends ``idx`` itself."""
        return self.next_token_logits(use_cache), idx

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode (dropout off) for the block; the module's previous mode is restored after."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)
