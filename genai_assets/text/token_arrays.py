"""Encode the cleansed poems per split into the ``token_arrays`` folder (contract 4).

For every split: ``<split>.parquet`` (``poem_id``, ``input_ids`` list<int32>, one row per poem
framed as ``[bos] + ids + [eos]``), ``<split>.bin`` (those rows concatenated in table order, as
uint16 when the vocabulary has < 65,536 ids, else uint32) and one ``meta.json`` for the folder.
Readers are in :mod:`genai_assets.text.datasets`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from genai_assets.text.datasets import META_FILE, SPLITS
from genai_assets.text.tokenization import POEM_SPECIAL_TOKENS, encode_poems

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id: uint16 below 65,536 ids, else uint32."""
    return np.dtype(np.uint16) if vocab_size < 2**16 else np.dtype(np.uint32)


def check_poem_table(poems: pd.DataFrame) -> pd.DataFrame:
    """The ``poem_id``, ``text``, ``split`` columns of ``cleansed_poems``, validated (clear errors)."""
    missing = [column for column in ("poem_id", "text", "split") if column not in poems.columns]
    if missing:
        raise ValueError(f"cleansed_poems lacks the column(s) {missing} (contract 2).")
    if poems.empty:
        raise ValueError("cleansed_poems is empty: there is nothing to tokenize.")
    table = poems[["poem_id", "text", "split"]].reset_index(drop=True)
    bad_splits = sorted(set(table["split"].astype(str)) - set(SPLITS))
    if bad_splits:
        raise ValueError(f"cleansed_poems has unknown split values {bad_splits}; expected {list(SPLITS)}.")
    duplicated = table["poem_id"][table["poem_id"].duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(
            f"cleansed_poems repeats {len(duplicated)} poem_id(s) (e.g. {duplicated[:3]}): a poem could "
            "land in two splits."
        )
    if table["text"].isna().any():
        raise ValueError("cleansed_poems has null text.")
    for token in POEM_SPECIAL_TOKENS:
        holders = table["poem_id"][table["text"].str.contains(token, regex=False)].tolist()
        if holders:
            raise ValueError(
                f"{len(holders)} poem(s) contain the special token {token!r} in their text (e.g. "
                f"{holders[:3]}); it would be read as a poem boundary. Cleanse it away first."
            )
    if not (table["split"] == "train").any():
        raise ValueError("cleansed_poems has no poem in the train split.")
    return table


@dataclass
class SplitArrays:
    """One encoded split: ids of all poems back to back, and where each poem starts."""

    poem_ids: list[str]
    flat_ids: np.ndarray  # int64 (N,), poems framed by bos/eos, in table order
    offsets: np.ndarray  # int64 (P + 1,), poem i = flat_ids[offsets[i]:offsets[i + 1]]
    n_chars: int

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def encode_splits(tokenizer: PreTrainedTokenizerFast, poems: pd.DataFrame) -> dict[str, SplitArrays]:
    """Encode every split of a checked poem table (see :func:`check_poem_table`)."""
    encoded = {}
    for split in SPLITS:
        part = poems[poems["split"] == split]
        texts = part["text"].tolist()
        flat_ids, offsets = encode_poems(tokenizer, texts)
        encoded[split] = SplitArrays(
            poem_ids=part["poem_id"].astype(str).tolist(),
            flat_ids=flat_ids,
            offsets=offsets,
            n_chars=int(sum(len(text) for text in texts)),
        )
    return encoded


def write_token_arrays(
    encoded: dict[str, SplitArrays], folder: Path, tokenizer: PreTrainedTokenizerFast, tokenizer_dir: Path
) -> dict:
    """Write the Parquet, ``.bin`` and ``meta.json`` files into ``folder``; returns the meta."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    vocab_size = len(tokenizer)
    dtype = token_dtype(vocab_size)
    meta = {
        "dtype": dtype.name,
        "vocab_size": vocab_size,
        "bos_id": tokenizer.bos_token_id,
        "eos_id": tokenizer.eos_token_id,
        "pad_id": tokenizer.pad_token_id,
        "tokenizer_dir": str(Path(tokenizer_dir).resolve()),
        "poem_format": "[bos] + ids + [eos] per poem; .bin = Parquet rows concatenated in table order",
        "splits": {},
    }
    for split, arrays in encoded.items():
        if arrays.flat_ids.size and int(arrays.flat_ids.max()) >= vocab_size:
            raise ValueError(f"{split}: token id {int(arrays.flat_ids.max())} >= vocab size {vocab_size}.")
        if arrays.offsets[-1] >= 2**31:
            raise ValueError(f"{split}: {arrays.offsets[-1]} tokens exceed a Parquet list<int32> column.")
        input_ids = pa.ListArray.from_arrays(
            pa.array(arrays.offsets.astype(np.int32)), pa.array(arrays.flat_ids.astype(np.int32))
        )
        table = pa.table({"poem_id": pa.array(arrays.poem_ids, type=pa.string()), "input_ids": input_ids})
        pq.write_table(table, folder / f"{split}.parquet")
        arrays.flat_ids.astype(dtype).tofile(folder / f"{split}.bin")
        meta["splits"][split] = {
            "n_poems": len(arrays.poem_ids),
            "n_tokens": int(arrays.offsets[-1]),
            "n_chars": arrays.n_chars,
        }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return meta
