"""PyTorch datasets and data loaders over the ``token_arrays`` folder (contract 4).

The folder written by the ``token_arrays`` asset holds, per split (``train``, ``val``, ``test``):

* ``<split>.parquet`` with ``poem_id`` (str) and ``input_ids`` (list<int32>): one row per poem,
  each poem encoded as ``[bos] + ids + [eos]`` (the special tokens of the poem tokenizer);
* ``<split>.bin``: the rows of the Parquet file concatenated in table order as one flat array of
  ``meta["dtype"]`` (uint16 when the vocabulary has fewer than 65,536 ids, else uint32), read
  through ``np.memmap`` so training never loads the whole corpus into memory;
* ``meta.json``: ``dtype``, ``vocab_size``, ``bos_id``, ``eos_id``, ``pad_id``,
  ``tokenizer_dir`` and per-split ``n_poems`` / ``n_tokens`` / ``n_chars``.

Two ways to feed a language model, as in the seed material:

* :class:`TokenBlockDataset` cuts the flat stream into non-overlapping blocks of ``block_size``
  tokens; item ``i`` is ``(x, y)`` with ``y`` = ``x`` shifted left by one token (nanoGPT style).
  Blocks cross poem boundaries; the bos/eos tokens tell the model where a poem starts and ends.
* :class:`PoemDataset` yields one poem per item; :class:`PaddingCollator` pads a batch to its
  longest poem with ``pad_id`` and builds the attention mask and the labels (``-100`` on padding,
  the value ``torch.nn.functional.cross_entropy`` ignores by default).

:func:`make_dataloaders` wires either dataset to ``DataLoader``s with a seeded ``RandomSampler``
for training and a ``SequentialSampler`` for evaluation. ``random_split`` appears where a
split must be carved out of another (:func:`split_dataset`): when a tiny corpus has no poem in
the validation split, the validation set is carved out of the training items.

Shape letters: B batch, T time (tokens).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler, Subset, random_split

from genai_assets.cleaning.split import SPLITS
from genai_assets.schema import IGNORE_INDEX

META_FILE = "meta.json"


def read_token_meta(folder: str | Path) -> dict:
    """The ``meta.json`` of a ``token_arrays`` folder (dtype, vocab size, special ids, split sizes)."""
    path = Path(folder) / META_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: {folder} is not a token_arrays folder. "
            "Materialize it first: `genai-assets materialize --select token_arrays`."
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")


def load_token_stream(folder: str | Path, split: str) -> np.ndarray:
    """The flat token stream of ``split`` as a read-only memory map (dtype from ``meta.json``).

    An empty split (possible on tiny corpora) gives an empty array: ``np.memmap`` refuses
    zero-length files.
    """
    _check_split(split)
    meta = read_token_meta(folder)
    path = Path(folder) / f"{split}.bin"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the token_arrays folder {folder}.")
    dtype = np.dtype(meta["dtype"])
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    if path.stat().st_size % dtype.itemsize:
        raise ValueError(f"{path} has {path.stat().st_size} bytes, not a whole number of {dtype} tokens.")
    return np.memmap(path, dtype=dtype, mode="r")


def load_poem_sequences(folder: str | Path, split: str) -> tuple[list[str], list[np.ndarray]]:
    """``(poem_ids, sequences)`` of ``split``: each sequence is one poem's ``[bos] + ids + [eos]``."""
    _check_split(split)
    path = Path(folder) / f"{split}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the token_arrays folder {folder}.")
    table = pd.read_parquet(path, columns=["poem_id", "input_ids"])
    sequences = [np.asarray(ids, dtype=np.int64) for ids in table["input_ids"]]
    return table["poem_id"].astype(str).tolist(), sequences


class TokenBlockDataset(Dataset):
    """Non-overlapping blocks of a flat token stream for next-token prediction.

    Item ``i`` is ``(x, y)``: ``x = tokens[i*T : i*T + T]`` and ``y = tokens[i*T + 1 : i*T + T + 1]``
    as int64 tensors of shape ``(T,)``. There are ``(len(tokens) - 1) // T`` blocks; the tail that
    does not fill a block is dropped.
    """

    def __init__(self, tokens: np.ndarray, block_size: int):
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}.")
        if len(tokens) < block_size + 1:
            raise ValueError(
                f"A token stream of {len(tokens)} tokens cannot fill one block of {block_size} tokens "
                f"(plus one for the shifted target): use a smaller block_size or a larger corpus."
            )
        self.tokens = tokens
        self.block_size = block_size

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.block_size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"block {index} out of range for {len(self)} blocks")
        index %= len(self)
        start = index * self.block_size
        # One read of T + 1 tokens serves both x and y; int64 is what nn.Embedding and cross_entropy take.
        window = torch.from_numpy(
            np.asarray(self.tokens[start : start + self.block_size + 1], dtype=np.int64)
        )
        return window[:-1], window[1:]


class PoemDataset(Dataset):
    """One poem per item: ``{"input_ids": LongTensor (T_i,)}``, optionally cut to ``max_length`` tokens.

    Cutting keeps the beginning of the poem (with its bos token); the eos token is lost then.
    """

    def __init__(self, sequences: Sequence[Sequence[int] | np.ndarray], max_length: int | None = None):
        if max_length is not None and max_length < 2:
            raise ValueError(f"max_length must be >= 2 (bos + one token) or None, got {max_length}.")
        self.sequences = [np.asarray(sequence, dtype=np.int64) for sequence in sequences]
        empty = [index for index, sequence in enumerate(self.sequences) if len(sequence) == 0]
        if empty:
            raise ValueError(f"PoemDataset got {len(empty)} empty sequences (first at index {empty[0]}).")
        self.max_length = max_length

    @classmethod
    def from_folder(cls, folder: str | Path, split: str, max_length: int | None = None) -> PoemDataset:
        _, sequences = load_poem_sequences(folder, split)
        return cls(sequences, max_length=max_length)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sequence = self.sequences[index]
        if self.max_length is not None:
            sequence = sequence[: self.max_length]
        return {"input_ids": torch.from_numpy(sequence.copy())}


@dataclass(frozen=True)
class PaddingCollator:
    """Pads a list of ``PoemDataset`` items on the right into one batch.

    Returns ``input_ids`` (B, T) padded with ``pad_id``, ``attention_mask`` (B, T) with 1 on real
    tokens and 0 on padding, and ``labels`` (B, T) = ``input_ids`` with ``-100`` on padding (the
    model shifts labels itself, as Hugging Face causal LMs do).
    """

    pad_id: int

    def __call__(self, items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if not items:
            raise ValueError("Cannot collate an empty batch.")
        lengths = [len(item["input_ids"]) for item in items]
        longest = max(lengths)
        input_ids = torch.full((len(items), longest), self.pad_id, dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros((len(items), longest), dtype=torch.long)  # (B, T)
        for row, (item, length) in enumerate(zip(items, lengths, strict=True)):
            input_ids[row, :length] = item["input_ids"]
            attention_mask[row, :length] = 1
        labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def split_dataset(dataset: Dataset, fractions: Sequence[float], seed: int = 0) -> list[Subset]:
    """``torch.utils.data.random_split`` with a seeded generator, so the split is reproducible."""
    generator = torch.Generator().manual_seed(seed)
    return random_split(dataset, list(fractions), generator=generator)


@dataclass
class DataLoaders:
    """The loaders :func:`make_dataloaders` builds, with the token meta they came from."""

    train: DataLoader
    val: DataLoader
    test: DataLoader | None
    meta: dict
    notes: list[str]  # what was done differently from the on-disk splits, if anything (for metadata)


def _build_dataset(
    folder: Path, split: str, mode: str, block_size: int, max_length: int | None
) -> Dataset | None:
    """The dataset of one split, or ``None`` when the split holds too few tokens for one item."""
    if mode == "blocks":
        tokens = load_token_stream(folder, split)
        return TokenBlockDataset(tokens, block_size) if len(tokens) >= block_size + 1 else None
    _, sequences = load_poem_sequences(folder, split)
    return PoemDataset(sequences, max_length=max_length) if sequences else None


def _check_loader_arguments(mode: str, batch_size: int, fallback_val_fraction: float) -> None:
    """Refuse an unknown mode, an empty batch or a fallback fraction outside (0, 1)."""
    if mode not in ("blocks", "poems"):
        raise ValueError(f"mode must be 'blocks' or 'poems', got {mode!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if not 0.0 < fallback_val_fraction < 1.0:
        raise ValueError(f"fallback_val_fraction must be in (0, 1), got {fallback_val_fraction}.")


def _build_splits(
    folder: Path,
    mode: str,
    block_size: int,
    max_length: int | None,
    seed: int,
    fallback_val_fraction: float,
    meta: dict,
) -> tuple[Dataset, Dataset, Dataset | None, list[str]]:
    """``(train, val, test or None, notes)``: val carved out of train when its own split is too small."""
    notes: list[str] = []
    train_set = _build_dataset(folder, "train", mode, block_size, max_length)
    if train_set is None:
        raise ValueError(
            f"The train split of {folder} is too small for one {mode[:-1]} "
            f"(block_size={block_size}, {meta['splits']['train']['n_tokens']} tokens)."
        )
    val_set = _build_dataset(folder, "val", mode, block_size, max_length)
    if val_set is None:
        if len(train_set) < 2:
            raise ValueError(f"The val split of {folder} is empty and train has a single item to carve from.")
        n_val = max(1, round(len(train_set) * fallback_val_fraction))
        train_set, val_set = split_dataset(train_set, [len(train_set) - n_val, n_val], seed=seed)
        notes.append(f"val split too small: carved {n_val} {mode} out of train with random_split")
    test_set = _build_dataset(folder, "test", mode, block_size, max_length)
    if test_set is None:
        notes.append("test split too small for one item: test loader is None")
    return train_set, val_set, test_set, notes


def make_dataloaders(
    folder: str | Path,
    *,
    mode: Literal["blocks", "poems"] = "blocks",
    block_size: int = 128,
    batch_size: int = 16,
    max_length: int | None = None,
    seed: int = 1337,
    fallback_val_fraction: float = 0.1,
    num_workers: int = 0,
) -> DataLoaders:
    """Train / val / test ``DataLoader``s over a ``token_arrays`` folder.

    ``mode="blocks"``: batches are ``(x, y)`` int64 tensors of shape (B, block_size) from
    :class:`TokenBlockDataset`. ``mode="poems"``: batches are the dicts of :class:`PaddingCollator`
    (``input_ids``, ``attention_mask``, ``labels``; ``max_length`` cuts long poems).

    Training draws items with a ``RandomSampler`` seeded by ``seed`` (a new order each epoch,
    the same sequence of orders on every run); val and test use a ``SequentialSampler``. If the
    val split is too small for one item (tiny corpora), ``fallback_val_fraction`` of the training
    items is carved out with ``random_split`` instead and a note says so; in blocks mode those
    val blocks come from training poems, so the val loss is optimistic then. A missing test
    split gives ``test=None``. A train split too small for one item raises ``ValueError``.
    """
    folder = Path(folder)
    _check_loader_arguments(mode, batch_size, fallback_val_fraction)
    meta = read_token_meta(folder)
    train_set, val_set, test_set, notes = _build_splits(
        folder, mode, block_size, max_length, seed, fallback_val_fraction, meta
    )
    collate = PaddingCollator(int(meta["pad_id"])) if mode == "poems" else None
    generator = torch.Generator().manual_seed(seed)

    def evaluation_loader(dataset: Dataset) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=SequentialSampler(dataset),
            collate_fn=collate,
            num_workers=num_workers,
        )

    train_loader = DataLoader(
        train_set,
        batch_size=batch_size,
        sampler=RandomSampler(train_set, generator=generator),
        collate_fn=collate,
        num_workers=num_workers,
        # Full batches only, unless the split is smaller than one batch (then keep what there is).
        drop_last=len(train_set) >= batch_size,
    )
    return DataLoaders(
        train=train_loader,
        val=evaluation_loader(val_set),
        test=evaluation_loader(test_set) if test_set is not None else None,
        meta=meta,
        notes=notes,
    )
