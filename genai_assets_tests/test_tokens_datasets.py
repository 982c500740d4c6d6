"""PyTorch datasets over a token_arrays folder: block shapes, shifted targets, padding collate."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from genai_assets.text.datasets import (
    PaddingCollator,
    PoemDataset,
    TokenBlockDataset,
    load_token_stream,
    make_dataloaders,
    read_token_meta,
)

BOS, EOS, PAD = 1, 2, 0


def write_token_folder(folder, splits: dict[str, list[list[int]]]) -> None:
    """A hand-made token_arrays folder: poems given as their inner ids, framed by bos/eos here."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"dtype": "uint16", "vocab_size": 50, "bos_id": BOS, "eos_id": EOS, "pad_id": PAD,
            "tokenizer_dir": "/nowhere", "splits": {}}  # fmt: skip
    for split, poems in splits.items():
        framed = [[BOS, *poem, EOS] for poem in poems]
        pd.DataFrame({"poem_id": [f"{split}{i}" for i in range(len(poems))], "input_ids": framed}).to_parquet(
            folder / f"{split}.parquet"
        )
        flat = np.array([token for poem in framed for token in poem], dtype=np.uint16)
        flat.tofile(folder / f"{split}.bin")
        meta["splits"][split] = {"n_poems": len(poems), "n_tokens": int(flat.size), "n_chars": 0}
    (folder / "meta.json").write_text(json.dumps(meta))


def test_token_block_dataset_blocks_and_shifted_targets():
    tokens = np.arange(23, dtype=np.uint16)
    dataset = TokenBlockDataset(tokens, block_size=5)
    assert len(dataset) == 4  # (23 - 1) // 5
    x, y = dataset[1]
    assert x.dtype == torch.int64 and x.shape == (5,) and y.shape == (5,)
    assert x.tolist() == [5, 6, 7, 8, 9]
    assert y.tolist() == [6, 7, 8, 9, 10]
    assert dataset[-1][1].tolist() == [16, 17, 18, 19, 20]
    with pytest.raises(IndexError):
        dataset[4]


def test_token_block_dataset_rejects_too_short_stream():
    with pytest.raises(ValueError, match="cannot fill one block"):
        TokenBlockDataset(np.arange(5), block_size=5)


def test_padding_collate_pads_and_masks():
    dataset = PoemDataset([[1, 7, 8, 2], [1, 9, 2], [1, 5, 6, 7, 8, 2]], max_length=5)
    batch = PaddingCollator(pad_id=PAD)([dataset[0], dataset[1], dataset[2]])
    assert batch["input_ids"].tolist() == [[1, 7, 8, 2, 0], [1, 9, 2, 0, 0], [1, 5, 6, 7, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].tolist() == [[1, 7, 8, 2, -100], [1, 9, 2, -100, -100], [1, 5, 6, 7, 8]]


def test_make_dataloaders_blocks_and_poems(tmp_path):
    folder = tmp_path / "token_arrays"
    train = [list(range(3, 3 + n)) for n in (10, 4, 7, 12, 5, 9)]
    write_token_folder(folder, {"train": train, "val": [[3, 4, 5, 6, 7, 8]], "test": [[9, 10]]})
    assert read_token_meta(folder)["splits"]["train"]["n_tokens"] == sum(len(p) + 2 for p in train)
    stream = load_token_stream(folder, "train")
    assert isinstance(stream, np.memmap) and stream.dtype == np.uint16 and stream[0] == BOS

    loaders = make_dataloaders(folder, mode="blocks", block_size=4, batch_size=3, seed=0)
    x, y = next(iter(loaders.train))
    assert x.shape == (3, 4) and torch.equal(x[:, 1:], y[:, :-1])
    val_x, _ = next(iter(loaders.val))
    assert val_x[0].tolist() == [BOS, 3, 4, 5]  # sequential: the first val block comes first
    assert loaders.test is None and loaders.notes  # 4 test tokens cannot fill a 4-token block + target
    # The same seed draws the same training order.
    again = make_dataloaders(folder, mode="blocks", block_size=4, batch_size=3, seed=0)
    assert torch.equal(next(iter(again.train))[0], x)

    poems = make_dataloaders(folder, mode="poems", batch_size=2, seed=0)
    seen = []
    for batch in poems.train:
        assert batch["input_ids"].shape == batch["attention_mask"].shape
        seen.extend(
            row[mask.bool()].tolist()
            for row, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
        )
    assert sorted(map(tuple, seen)) == sorted(tuple([BOS, *p, EOS]) for p in train)
    assert next(iter(poems.test))["input_ids"].tolist() == [[BOS, 9, 10, EOS]]


def test_make_dataloaders_carves_val_when_val_split_empty(tmp_path):
    folder = tmp_path / "token_arrays"
    write_token_folder(folder, {"train": [list(range(3, 40))], "val": [], "test": []})
    loaders = make_dataloaders(folder, block_size=4, batch_size=2, fallback_val_fraction=0.25)
    assert len(loaders.val.dataset) == 2 and len(loaders.train.dataset) == 7  # 9 blocks of 4
    assert any("random_split" in note for note in loaders.notes)
