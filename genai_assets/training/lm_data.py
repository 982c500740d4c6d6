"""Batches for the scratch models, read from the ``token_arrays`` folder (contract 4).

* Language models (GPT, RNNs): :func:`random_block_batches` draws windows of ``block_size + 1``
  tokens at random offsets of the flat train stream (nanoGPT's ``get_batch``); offsets come from
  the global torch RNG, which the training loop seeds and checkpoints, so runs are reproducible
  and resumable. Validation uses the non-overlapping blocks of
  :class:`~genai_assets.text.datasets.TokenBlockDataset`, in order.
* Next-line generation (encoder–decoder): :func:`line_pairs` cuts each poem's token ids at the
  tokens that contain a newline character. With the byte-level BPE of the poem tokenizer a
  newline is never merged with letters (the GPT-2 pre-tokenizer splits whitespace runs from
  words), so such tokens are pure whitespace: "\\n", "\\n\\n" (stanza break), "\\n  " (indent).
  Consecutive non-empty lines of the same poem make a (source, target) pair; the line break,
  stanza breaks and indentation are dropped, and the target ends with eos.

Shape letters: B batch, T time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from genai_assets.models.loss import IGNORE_INDEX


def random_block_batches(
    tokens: np.ndarray, block_size: int, batch_size: int, batches_per_epoch: int | None = None
) -> Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """An epoch factory: each call yields ``batches_per_epoch`` batches ``(x, y)`` of shape (B, T).

    Default epoch length: as many batches as it takes to draw about as many tokens as the stream
    holds.
    """
    if len(tokens) < block_size + 2:
        raise ValueError(
            f"The training stream has {len(tokens)} tokens, too few for a block of {block_size} "
            "(+1 target): use a smaller block_size or a larger corpus."
        )
    n_batches = batches_per_epoch or max(1, len(tokens) // (block_size * batch_size))
    n_starts = len(tokens) - block_size - 1

    def epoch() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(n_batches):
            starts = torch.randint(0, n_starts + 1, (batch_size,)).tolist()
            windows = np.stack([np.asarray(tokens[s : s + block_size + 1], dtype=np.int64) for s in starts])
            window = torch.from_numpy(windows)  # (B, T + 1)
            yield window[:, :-1], window[:, 1:]  # inputs and targets shifted by one, (B, T) each

    return epoch


def sequential_block_batches(
    tokens: np.ndarray, block_size: int, batch_size: int
) -> Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """Every non-overlapping block of ``tokens`` once, in order, ``batch_size`` blocks per batch."""
    from genai_assets.text.datasets import TokenBlockDataset

    dataset = TokenBlockDataset(tokens, block_size)

    def epoch() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(dataset), batch_size):
            items = [dataset[index] for index in range(start, min(start + batch_size, len(dataset)))]
            yield torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])  # (B, T) each

    return epoch


def split_validation_stream(
    train_tokens: np.ndarray, val_tokens: np.ndarray, block_size: int
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """``(train, val, note)``: the val stream, or — if it cannot fill one block (tiny corpora) —
    the last 10 % of the train stream carved off as validation (with a note saying so)."""
    if len(val_tokens) >= block_size + 1:
        return train_tokens, val_tokens, None
    cut = len(train_tokens) - max(block_size + 1, len(train_tokens) // 10)
    if cut < block_size + 2:
        raise ValueError(
            f"Neither the val split ({len(val_tokens)} tokens) nor the train split ({len(train_tokens)} "
            f"tokens) is large enough for validation blocks of {block_size} tokens."
        )
    note = f"val split has {len(val_tokens)} tokens (< one block): validated on the last {len(train_tokens) - cut} train tokens"
    return train_tokens[:cut], train_tokens[cut:], note


def newline_token_ids(tokenizer_dir: str | Path) -> set[int]:
    """Ids of the tokens whose text contains a newline, from the tokenizer's ``tokenizer.json``."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    return {index for index in range(tokenizer.get_vocab_size()) if "\n" in tokenizer.decode([index])}


def poem_lines(sequence: Sequence[int], newline_ids: set[int], special_ids: set[int]) -> list[list[int]]:
    """The non-empty lines of one poem's ids (special tokens dropped), split at newline tokens."""
    lines, current = [], []
    for token in sequence:
        token = int(token)
        if token in special_ids:
            continue
        if token in newline_ids:
            if current:
                lines.append(current)
            current = []
        else:
            current.append(token)
    if current:
        lines.append(current)
    return lines


def line_pairs(
    sequences: Sequence[Sequence[int]],
    newline_ids: set[int],
    special_ids: set[int],
    eos_id: int,
    max_source_len: int,
    max_target_len: int,
) -> list[tuple[list[int], list[int]]]:
    """(line, next line + eos) for consecutive lines of each poem, cut to the length limits."""
    if not newline_ids:
        raise ValueError("The tokenizer has no token containing a newline: cannot split poems into lines.")
    pairs = []
    for sequence in sequences:
        lines = poem_lines(sequence, newline_ids, special_ids)
        for line, next_line in zip(lines, lines[1:], strict=False):
            pairs.append((line[:max_source_len], next_line[: max_target_len - 1] + [eos_id]))
    return pairs


def pair_batches(
    pairs: Sequence[tuple[list[int], list[int]]], batch_size: int, pad_id: int, shuffle: bool
) -> Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """Epochs of ``(source (B, S) padded with pad_id, targets (B, T) padded with -100)``.

    With ``shuffle`` the order is a permutation drawn from the global torch RNG at each epoch.
    """
    if not pairs:
        raise ValueError("No line pairs: the poems have no two consecutive non-empty lines.")

    def pad(rows: list[list[int]], value: int) -> torch.Tensor:
        out = torch.full((len(rows), max(len(row) for row in rows)), value, dtype=torch.long)
        for index, row in enumerate(rows):
            out[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out

    def epoch() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(pairs)).tolist() if shuffle else range(len(pairs))
        order = list(order)
        for start in range(0, len(order), batch_size):
            chosen = [pairs[index] for index in order[start : start + batch_size]]
            yield (
                pad([source for source, _ in chosen], pad_id),
                pad([target for _, target in chosen], IGNORE_INDEX),
            )

    return epoch
