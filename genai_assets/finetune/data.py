"""Poems → token ids for a pre-trained causal LM, and the two ways to batch them.

Example format (contract 7). ``format_poem_for_lm(title, text)`` returns
``"<|startofpoem|>" + title + "\\n\\n" + text`` (the title part only when there is one), and
``tokenize_poem`` appends the tokenizer's own end-of-sequence id as the end-of-poem marker
(GPT-2 ``<|endoftext|>``, SmolLM2 ``<|im_end|>``): the eos id is appended as an id rather than as
text because not every tokenizer maps its eos text back to the single eos id. This is the
seed's ``<|startoftext|> poem <|endoftext|>`` scheme with a poem-specific start marker.

``prepare_tokenizer`` adds ``<|startofpoem|>`` as a special token, and ``<|pad|>`` when the
tokenizer has no pad token (GPT-2 has none); the model's embeddings must then be resized
(``resize_model_embeddings``).

Batching (``collation``):

- ``packing`` (default): all poems of a split concatenated in table order and cut into full
  blocks of ``block_size`` tokens; only the last block is padded. Every token appears exactly
  once. Attention runs across poem boundaries inside a block (standard packing; the start
  marker tells the model a new poem begins).
- ``padding`` (the seed's): one poem per row, truncated to ``block_size`` and right-padded to
  ``block_size`` with an attention mask (the seed pads to ``max_length``).

In both modes ``labels`` are the input ids with ``-100`` on padding, so padding never
contributes to the loss (transformers shifts labels inside the model).

Hugging Face ``datasets`` (``build_finetune_dataset``, ``collate_dataset``): the ``finetune_dataset``
asset is a ``DatasetDict`` (``train``/``val``/``test``: ``poem_id``, ``input_ids``) built with a
batched ``.map`` of the tokenizer, saved with ``save_to_disk``; ``finetuned_lm`` reads it with
``load_from_disk`` and collates each split with another batched ``.map`` (the whole split as one
batch, so packing keeps its "only the last block is padded" property). Every ``.map`` keeps its
result in memory (``keep_in_memory=True``): no ``cache-*.arrow`` files are written next to the
saved dataset or into ``~/.cache/huggingface``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from genai_assets.models.loss import IGNORE_INDEX  # also what transformers' LM loss ignores
from genai_assets.text.tokenization import PAD_TOKEN, POEM_START

COLLATIONS = ("packing", "padding")


def format_poem_for_lm(title: str | None, text: str) -> str:
    """The text of one training example, without the end marker (see the module docstring)."""
    title = title.strip() if isinstance(title, str) else ""  # None or a pandas NaN: no title
    body = text.strip()
    return f"{POEM_START}{title}\n\n{body}" if title else f"{POEM_START}{body}"


def format_prompt_for_lm(prompt: str) -> str:
    """A generation prompt in the training format: the start marker, then the user's words."""
    return f"{POEM_START}{prompt}"


def prepare_tokenizer(tokenizer) -> list[str]:
    """Add the poem start marker (and a pad token if missing) in place; return the added tokens.

    Deterministic: the same base tokenizer always ends with the same ids, so ``finetune_dataset``
    and ``finetuned_lm`` can each call it on the base tokenizer and agree.
    """
    if tokenizer.eos_token_id is None:
        raise ValueError(f"Tokenizer {type(tokenizer).__name__} has no eos token to end poems with.")
    added = []
    if tokenizer.convert_tokens_to_ids(POEM_START) in (None, tokenizer.unk_token_id):
        tokenizer.add_special_tokens({"additional_special_tokens": [POEM_START]})
        added.append(POEM_START)
    if tokenizer.pad_token_id is None:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        added.append(PAD_TOKEN)
    return added


def poem_start_id(tokenizer) -> int:
    token_id = tokenizer.convert_tokens_to_ids(POEM_START)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError(f"Tokenizer has no {POEM_START} token: call prepare_tokenizer first.")
    return int(token_id)


def resize_model_embeddings(model, tokenizer) -> bool:
    """Grow the input/output embeddings to ``len(tokenizer)`` if tokens were added; True if resized."""
    if model.get_input_embeddings().weight.shape[0] >= len(tokenizer):
        return False
    # transformers initialises the new rows from the mean/covariance of the old ones.
    model.resize_token_embeddings(len(tokenizer))
    return True


def tokenize_poem(tokenizer, title: str | None, text: str) -> list[int]:
    ids = tokenizer(format_poem_for_lm(title, text), add_special_tokens=False)["input_ids"]
    return [*ids, tokenizer.eos_token_id]


def _check_poems_table(poems) -> None:
    """A clear error unless ``poems`` has cleansed_poems' columns and at least one row."""
    required = {"poem_id", "title", "text", "split"}
    missing = required - set(poems.columns)
    if missing:
        raise ValueError(f"Poems table lacks columns {sorted(missing)}.")
    if len(poems) == 0:
        raise ValueError("No poems to tokenize: the cleansed_poems table is empty.")


def tokenize_poems(poems, tokenizer):
    """Table ``split, poem_id, input_ids`` (list of int32) from cleansed poems, in table order."""
    import pandas as pd

    _check_poems_table(poems)
    titles = [title if isinstance(title, str) else None for title in poems["title"]]
    encoded = _tokenize_batch({"title": titles, "text": list(poems["text"])}, tokenizer)["input_ids"]
    rows = [np.asarray(ids, dtype=np.int32) for ids in encoded]
    return pd.DataFrame(
        {"split": poems["split"].astype(str).to_numpy(), "poem_id": poems["poem_id"], "input_ids": rows}
    )


def pack_blocks(sequences: list, block_size: int, pad_id: int, ignore_ids: tuple[int, ...] = ()) -> dict:
    """Concatenate ``sequences`` and cut into ``(n_blocks, block_size)`` tensors; pad the last block.

    ``ignore_ids``: token ids never used as targets (e.g. the poem start marker when scoring a
    base model that has never seen it).
    """
    import torch

    check_block_size(block_size)
    stream = (
        np.concatenate([np.asarray(seq, dtype=np.int64) for seq in sequences]) if sequences else np.zeros(0)
    )
    if stream.size == 0:
        raise ValueError("No tokens to pack: the split is empty.")
    n_blocks = -(-stream.size // block_size)  # ceil
    input_ids = np.full(n_blocks * block_size, pad_id, dtype=np.int64)
    input_ids[: stream.size] = stream
    attention_mask = np.zeros_like(input_ids)
    attention_mask[: stream.size] = 1
    labels = np.where(attention_mask == 1, input_ids, IGNORE_INDEX)
    for token_id in ignore_ids:
        labels[input_ids == token_id] = IGNORE_INDEX
    shape = (n_blocks, block_size)
    return {
        "input_ids": torch.from_numpy(input_ids.reshape(shape)),
        "attention_mask": torch.from_numpy(attention_mask.reshape(shape)),
        "labels": torch.from_numpy(labels.reshape(shape)),
    }


def pad_poems(sequences: list, block_size: int, pad_id: int, ignore_ids: tuple[int, ...] = ()) -> dict:
    """One row per poem, truncated to ``block_size`` and right-padded to it (the seed's collation)."""
    import torch

    check_block_size(block_size)
    if not sequences:
        raise ValueError("No poems to pad: the split is empty.")
    input_ids = np.full((len(sequences), block_size), pad_id, dtype=np.int64)
    attention_mask = np.zeros_like(input_ids)
    for row, seq in enumerate(sequences):
        kept = np.asarray(seq[:block_size], dtype=np.int64)
        input_ids[row, : kept.size] = kept
        attention_mask[row, : kept.size] = 1
    labels = np.where(attention_mask == 1, input_ids, IGNORE_INDEX)
    for token_id in ignore_ids:
        labels[input_ids == token_id] = IGNORE_INDEX
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention_mask),
        "labels": torch.from_numpy(labels),
    }


def collate(
    sequences: list, collation: str, block_size: int, pad_id: int, ignore_ids: tuple[int, ...] = ()
) -> dict:
    if collation == "packing":
        return pack_blocks(sequences, block_size, pad_id, ignore_ids)
    if collation == "padding":
        return pad_poems(sequences, block_size, pad_id, ignore_ids)
    raise ValueError(f"collation must be one of {COLLATIONS}, got {collation!r}.")


def check_block_size(block_size: int) -> None:
    if block_size < 2:
        raise ValueError(f"block_size must be >= 2 tokens, got {block_size}.")


@dataclass
class RowBatches:
    """A callable giving a fresh iterable of ``batch_size``-row dicts over collated tensors.

    ``shuffle`` draws a permutation from torch's global RNG, which the training loop seeds and
    saves in checkpoints, so a resumed run replays the same order.
    """

    tensors: dict[str, Any]
    batch_size: int
    shuffle: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}.")
        if len(self) == 0:
            raise ValueError("No rows to batch.")

    def __len__(self) -> int:
        return int(self.tensors["input_ids"].shape[0])

    def n_batches(self) -> int:
        return -(-len(self) // self.batch_size)

    def __call__(self) -> Iterator[dict]:
        import torch

        order = torch.randperm(len(self)) if self.shuffle else torch.arange(len(self))
        for start in range(0, len(self), self.batch_size):
            index = order[start : start + self.batch_size]  # (B,)
            yield {name: tensor[index] for name, tensor in self.tensors.items()}


FINETUNE_SPLITS = ("train", "val", "test")


def finetune_features():
    """Typed columns of every ``finetune_dataset`` split."""
    from datasets import Features, List, Value

    return Features({"poem_id": Value("string"), "input_ids": List(Value("int32"))})


def _tokenize_batch(batch: dict, tokenizer) -> dict:
    """Batched ``.map`` function: titles + texts → ``input_ids`` with the start/end markers."""
    pairs = zip(batch["title"], batch["text"], strict=True)
    texts = [format_poem_for_lm(title, text) for title, text in pairs]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return {"input_ids": [[*ids, tokenizer.eos_token_id] for ids in encoded]}


def build_finetune_dataset(poems, tokenizer, num_proc: int | None = None):
    """``DatasetDict`` train/val/test (``poem_id``, ``input_ids`` int32) from the cleansed poems.

    The split of every poem is the one ``cleansed_poems`` assigned (by poem, so nothing leaks);
    table order is kept inside each split. ``num_proc``: tokenizer processes for ``.map`` (None =
    in this process; on a 2-core machine the batched fast tokenizer is already quicker alone).
    """
    from datasets import Dataset, DatasetDict, Features, Value

    _check_poems_table(poems)
    unknown = set(poems["split"].astype(str)) - set(FINETUNE_SPLITS)
    if unknown:
        raise ValueError(f"Unknown split names {sorted(unknown)}; expected {FINETUNE_SPLITS}.")
    text_features = Features({"poem_id": Value("string"), "title": Value("string"), "text": Value("string")})
    splits = {}
    for split in FINETUNE_SPLITS:
        rows = poems.loc[poems["split"].astype(str) == split, ["poem_id", "title", "text"]]
        rows = rows.assign(title=[title if isinstance(title, str) else None for title in rows["title"]])
        splits[split] = Dataset.from_pandas(rows, features=text_features, preserve_index=False, split=split)
    return DatasetDict(splits).map(
        _tokenize_batch,
        batched=True,
        fn_kwargs={"tokenizer": tokenizer},
        remove_columns=["title", "text"],
        features=finetune_features(),
        num_proc=num_proc,
        keep_in_memory=True,
        desc="tokenize",
    )


def finetune_splits(dataset):
    """The fine-tuning data as a ``DatasetDict`` with all three splits, from any form it comes in.

    Accepts the ``DatasetDict`` itself, the folder ``finetune_dataset`` saved (``load_from_disk``),
    or a table with ``split, poem_id, input_ids`` columns (the older Parquet form, handy in sweeps).
    """
    from pathlib import Path

    from datasets import Dataset, DatasetDict, load_from_disk

    if isinstance(dataset, str | Path):
        folder = Path(dataset)
        if not (folder / "dataset_dict.json").is_file():
            raise FileNotFoundError(
                f"{folder} is not a saved DatasetDict (no dataset_dict.json): materialize finetune_dataset."
            )
        dataset = load_from_disk(str(folder))
    if not isinstance(dataset, DatasetDict):
        columns = getattr(dataset, "columns", None)
        if columns is None or not {"split", "poem_id", "input_ids"} <= set(columns):
            raise TypeError(
                "Fine-tuning data must be a DatasetDict, its save_to_disk folder, or a table with "
                f"split, poem_id and input_ids columns; got {type(dataset).__name__}."
            )
        table, splits = dataset, {}
        for split in FINETUNE_SPLITS:
            rows = table[table["split"] == split]
            columns = {
                "poem_id": [str(poem_id) for poem_id in rows["poem_id"]],
                "input_ids": [np.asarray(ids, dtype=np.int32) for ids in rows["input_ids"]],
            }
            splits[split] = Dataset.from_dict(columns, features=finetune_features())
        dataset = DatasetDict(splits)
    missing = [split for split in FINETUNE_SPLITS if split not in dataset]
    if missing:
        raise ValueError(f"Fine-tuning data lacks the splits {missing}; it needs {FINETUNE_SPLITS}.")
    return dataset


def max_token_id(dataset) -> int:
    """The largest token id in any split of a ``finetune_splits`` DatasetDict (-1 if all are empty)."""
    largest = -1
    for split in dataset.values():
        for ids in split.with_format("numpy")["input_ids"]:
            if len(ids):
                largest = max(largest, int(np.max(ids)))
    return largest


def _collate_batch(batch: dict, collation: str, block_size: int, pad_id: int, ignore_ids: tuple) -> dict:
    """Batched ``.map`` function: one batch of poems → rows of ``input_ids``/``attention_mask``/``labels``."""
    tensors = collate(batch["input_ids"], collation, block_size, pad_id, ignore_ids)
    return {name: tensor.numpy() for name, tensor in tensors.items()}  # (rows, block_size) each


def collate_dataset(
    split_dataset, collation: str, block_size: int, pad_id: int, ignore_ids: tuple[int, ...] = ()
) -> dict:
    """``collate`` over a ``datasets.Dataset`` split with a batched ``.map``; torch tensors (rows, block_size).

    ``batch_size=None`` hands the map the whole split at once: packing then concatenates every
    poem and pads only the very last block, as ``pack_blocks`` does (a per-1000-poem batch would
    pad one block per batch).
    """
    if len(split_dataset) == 0:
        raise ValueError("No poems to collate: the split is empty.")
    rows = split_dataset.map(
        _collate_batch,
        batched=True,
        batch_size=None,
        fn_kwargs={
            "collation": collation,
            "block_size": block_size,
            "pad_id": pad_id,
            "ignore_ids": tuple(ignore_ids),
        },
        remove_columns=split_dataset.column_names,
        keep_in_memory=True,
        desc=f"{collation} to {block_size}-token rows",
    )
    return rows.with_format("torch")[:]
