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
import functools
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
    if temperature != 1.0:  # x / 1 is x exactly: skip a pass over the vocabulary
        logits = logits / temperature
    if top_k is not None and 0 < top_k < logits.size(-1) and top_p is not None and 0 < top_p < 1.0:
        logits = filter_top_k_top_p(logits, top_k, top_p)  # the course's settings: one small sort
    else:
        logits = filter_top_p(filter_top_k(logits, top_k), top_p)
    probabilities = torch.softmax(logits.float(), dim=-1)
    return draw_one(probabilities, generator)


def draw_one(probabilities: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``torch.multinomial(probabilities, 1, generator=generator)`` for ``probabilities`` (B, V) → (B, 1).

    For one sample torch draws ``q ~ Exp(1)`` per token and returns ``argmax(p / q)`` (the
    exponential race, equivalent to the Gumbel-max trick); on the CPU this does the same without
    its input checks (a host sync and four passes over V), so the same token and generator state
    (tested). Elsewhere it calls ``torch.multinomial`` itself.
    """
    if probabilities.device.type != "cpu":
        return torch.multinomial(probabilities, num_samples=1, generator=generator)
    race = torch.empty_like(probabilities).exponential_(generator=generator)  # (B, V)
    return torch.div(probabilities, race, out=race).argmax(dim=-1, keepdim=True)


class RepetitionControls:
    """Repetition penalty and no-repeat n-grams kept up to date one token at a time (the fast path).

    Gives the same logits as :func:`apply_repetition_penalty` and :func:`ban_repeated_ngrams` on
    the whole sequence (tested), without rescanning the sequence every step. The penalty is
    :func:`apply_repetition_penalty` itself: a gather and a scatter over the T ids so far, cheaper
    than elementwise passes over the V logits while T < V. For the n-gram ban on the CPU each row
    keeps a dict from an (n-1)-token prefix to the tokens that followed it, extended by one entry
    per new token, so the banned ids are one dict lookup. On an accelerator the ban is computed
    with a few tensor operations instead (no copy to the host, so no device sync per token).
    """

    def __init__(self, prompt: torch.Tensor, penalty: float, ngram_size: int):
        if not penalty > 0:
            raise ValueError(f"repetition_penalty must be > 0, got {penalty}.")
        self.penalty, self.ngram_size = penalty, ngram_size
        self.on_host = ngram_size > 0 and prompt.device.type == "cpu"
        self.rows: list[list[int]] = prompt.tolist() if self.on_host else []  # the ids so far, per row
        self.followers: list[dict[tuple[int, ...], set[int]]] = [{} for _ in self.rows]
        for row, ids in enumerate(self.rows):
            for end in range(ngram_size, len(ids) + 1):
                self._record(row, end)

    def _record(self, row: int, end: int) -> None:
        """Note the n-gram of row ``row`` that ends before position ``end``: its prefix -> its last id."""
        ids = self.rows[row]
        prefix = tuple(ids[end - self.ngram_size : end - 1])
        self.followers[row].setdefault(prefix, set()).add(ids[end - 1])

    def observe(self, token: torch.Tensor) -> None:
        """Record the new column ``token`` (B, 1)."""
        if self.on_host:
            for row, new_id in enumerate(token[:, 0].tolist()):
                self.rows[row].append(new_id)
                if len(self.rows[row]) >= self.ngram_size:
                    self._record(row, len(self.rows[row]))

    def apply(self, logits: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
        """``logits`` (B, V) for the token after ``sequence`` (B, T), both controls applied."""
        logits = apply_repetition_penalty(logits, sequence, self.penalty)
        if self.ngram_size <= 0 or sequence.size(1) < self.ngram_size:  # no complete n-gram yet
            return logits
        if not self.on_host:
            return _ban_repeated_ngrams_on_device(logits, sequence, self.ngram_size)
        banned = []
        for row, ids in enumerate(self.rows):
            prefix = tuple(ids[len(ids) - self.ngram_size + 1 :]) if self.ngram_size > 1 else ()
            banned.append(self.followers[row].get(prefix))
        if not any(banned):
            return logits
        logits = logits.clone()
        for row, ids in enumerate(banned):
            if ids:
                index = torch.tensor(sorted(ids), device=logits.device)
                logits[row].index_fill_(0, index, float("-inf"))
        return logits


def _ban_repeated_ngrams_on_device(logits: torch.Tensor, sequence: torch.Tensor, size: int) -> torch.Tensor:
    """:func:`ban_repeated_ngrams` as tensor operations: every n-gram of ``sequence`` (B, T) compared at once."""
    windows = sequence.unfold(1, size, 1)  # (B, W, n): every n-gram so far
    prefix = sequence[:, sequence.size(1) - size + 1 :]  # (B, n-1): the n-gram being completed
    matches = (windows[:, :, :-1] == prefix[:, None, :]).all(dim=-1)  # (B, W)
    # A window that does not match points at a spare column V, dropped after the scatter.
    candidates = torch.where(matches, windows[:, :, -1], logits.size(-1))  # (B, W)
    banned = torch.zeros(logits.size(0), logits.size(-1) + 1, dtype=torch.bool, device=logits.device)
    banned.scatter_(1, candidates, True)
    return logits.masked_fill(banned[:, :-1], float("-inf"))


@contextlib.contextmanager
def _one_thread_at_batch_one(idx: torch.Tensor, one_token_steps: bool = True) -> Iterator[None]:
    """One intra-op CPU thread, for torch and for NumPy's BLAS, while decoding a single row one
    token per step (the previous counts restored after).

    A cached batch-1 step is a few dozen tiny operations; splitting each over threads costs more
    in synchronisation than it saves, and on a busy machine a thread waiting for a descheduled
    partner can make a step an order of magnitude slower (measured: 2 ms vs 28 ms per forward).
    The step's matrix–vector products go through NumPy's OpenBLAS
    (:class:`~genai_assets.models.gpt_decoding.GPTDecoder`), whose own pool would spin on the
    second core beside torch's thread, so it is held to one thread too (``threadpoolctl``).
    Without a cache (``one_token_steps`` False) every step re-runs the whole window, real matrix
    products that a second thread does speed up, so the counts are left alone.
    """
    if not one_token_steps or idx.size(0) != 1 or idx.device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _blas_threads().limit(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)


@functools.cache
def _blas_threads():
    """The process's BLAS thread pools (found once: scanning the loaded libraries takes ~1 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


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
    one_token_steps: bool = True,
) -> torch.Tensor:
    """Append up to ``max_new_tokens`` tokens to ``idx`` (B, T) → (B, T + new): the one decoding loop.

    ``next_logits(idx)`` gets the whole sequence so far and returns the next-token logits (B, V);
    a model with a cache feeds itself only the tokens it has not seen. ``eos_token_id`` (one id
    or several, e.g. eos and the start-of-poem marker): stop once every row has produced one;
    rows that finished early are padded with the first. ``on_token`` sees each new (B, 1) column
    as it is chosen (streaming). ``one_token_steps``: ``next_logits`` runs the model on the newest
    token only (a cache), which decides the thread count at batch 1 (below).

    At batch 1 the model's arithmetic per token is tiny, so this loop's own overhead matters: the
    sequence lives in one buffer allocated up front (no ``torch.cat`` per token), the repetition
    controls are updated incrementally (:class:`RepetitionControls`), the draw skips
    ``torch.multinomial``'s input checks (:func:`draw_one`), and the loop runs under
    ``torch.inference_mode`` (less autograd bookkeeping per operation than ``no_grad``) on one
    CPU thread when there is one row (:func:`_one_thread_at_batch_one`).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}.")
    stops = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
    batch, length = idx.shape
    with torch.inference_mode(), _one_thread_at_batch_one(idx, one_token_steps):
        buffer = idx.new_empty(batch, length + max_new_tokens)  # (B, T + new): filled as we go
        buffer[:, :length] = idx
        stop_ids = torch.tensor(stops, dtype=idx.dtype, device=idx.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=idx.device)
        controls = RepetitionControls(idx, repetition_penalty, no_repeat_ngram_size)
        for _ in range(max_new_tokens):
            sequence = buffer[:, :length]  # (B, T) view, no copy
            logits = controls.apply(next_logits(sequence), sequence)  # (B, V)
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
            return generate_tokens(
                next_logits,
                start,
                max_new_tokens,
                temperature,
                top_k,
                top_p,
                one_token_steps=use_cache,
                **options,
            )

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
