"""Poem formatting, tokenizer preparation, packing and per-poem padding (no loss on padding)."""

import numpy as np
import pandas as pd
import pytest
import torch

from genai_assets.finetune.data import (
    IGNORE_INDEX,
    POEM_START,
    RowBatches,
    format_poem_for_lm,
    pack_blocks,
    pad_poems,
    prepare_tokenizer,
    tokenize_poems,
)
from genai_assets_tests.test_finetune_support import fixture_poems, gpt2_tokenizer, prepared_gpt2_tokenizer


def test_format_poem_for_lm():
    assert format_poem_for_lm("Song", "A line\nB line\n") == f"{POEM_START}Song\n\nA line\nB line"
    assert format_poem_for_lm(None, "  A line") == f"{POEM_START}A line"


def test_prepare_tokenizer_adds_marker_and_gpt2s_missing_pad_once():
    tokenizer = prepared_gpt2_tokenizer()
    assert len(tokenizer) == 50259
    assert tokenizer.convert_tokens_to_ids(POEM_START) == 50257 and tokenizer.pad_token_id == 50258
    assert tokenizer(f"{POEM_START}The")["input_ids"] == [50257, 464]  # one id, never split into pieces
    assert prepare_tokenizer(tokenizer) == []  # idempotent
    assert len(gpt2_tokenizer()) == 50257  # the cached base tokenizer is untouched


def test_tokenize_poems_marks_start_and_end_of_each_poem():
    tokenizer = prepared_gpt2_tokenizer()
    poems = fixture_poems(3, 1, 1)
    table = tokenize_poems(poems, tokenizer)
    assert list(table.columns) == ["split", "poem_id", "input_ids"]
    assert list(table["split"]) == ["train"] * 3 + ["val", "test"]
    for ids, (_, poem) in zip(table["input_ids"], poems.iterrows(), strict=True):
        assert ids.dtype == np.int32 and ids[0] == 50257 and ids[-1] == 50256
        assert (
            tokenizer.decode(ids[1:-1]) == format_poem_for_lm(poem["title"], poem["text"])[len(POEM_START) :]
        )


def test_empty_poem_table_is_a_clear_error():
    with pytest.raises(ValueError, match="cleansed_poems table is empty"):
        tokenize_poems(pd.DataFrame(columns=["poem_id", "title", "text", "split"]), prepared_gpt2_tokenizer())


def test_packing_keeps_every_token_exactly_once():
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 1000, size=length) for length in (5, 17, 1, 9, 30)]  # 62 tokens
    packed = pack_blocks(sequences, block_size=16, pad_id=999_999)
    assert packed["input_ids"].shape == (4, 16)  # ceil(62 / 16)
    real = packed["attention_mask"].bool()
    assert int(real.sum()) == 62 and not real[-1, 14:].any() and real[:3].all()
    assert packed["input_ids"][real].tolist() == np.concatenate(sequences).tolist()
    assert (packed["labels"][~real] == IGNORE_INDEX).all()
    assert packed["labels"][real].tolist() == packed["input_ids"][real].tolist()


def test_padding_truncates_each_poem_and_masks_the_rest():
    sequences = [np.arange(1, 6), np.arange(10, 30)]
    padded = pad_poems(sequences, block_size=8, pad_id=0, ignore_ids=(1,))
    assert padded["input_ids"].tolist() == [[1, 2, 3, 4, 5, 0, 0, 0], list(range(10, 18))]
    assert padded["attention_mask"].sum(dim=1).tolist() == [5, 8]
    assert padded["labels"][0].tolist() == [IGNORE_INDEX, 2, 3, 4, 5] + [IGNORE_INDEX] * 3


def test_padding_never_contributes_to_the_loss():
    """The loss of a padded batch equals the token-weighted mean of each poem's loss alone."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from genai_assets.finetune.train import lm_loss

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2)).eval()
    sequences = [np.array([3, 7, 9, 11, 2]), np.array([4, 8, 2]), np.array([5, 6, 7, 8, 9, 10, 2])]
    with torch.no_grad():
        batch_loss, n_targets = lm_loss(model, pad_poems(sequences, block_size=12, pad_id=49))
        other_pad_loss, _ = lm_loss(model, pad_poems(sequences, block_size=12, pad_id=0))
        alone = [lm_loss(model, pad_poems([seq], block_size=len(seq), pad_id=0)) for seq in sequences]
    expected = sum(float(loss) * int(count) for loss, count in alone) / sum(int(count) for _, count in alone)
    assert n_targets == sum(len(seq) - 1 for seq in sequences) == 12
    assert float(batch_loss) == pytest.approx(expected, rel=1e-5)
    assert float(other_pad_loss) == pytest.approx(float(batch_loss), rel=1e-6)


def test_row_batches_shuffle_visits_every_row_once():
    tensors = {"input_ids": torch.arange(10).unsqueeze(1), "labels": torch.arange(10).unsqueeze(1)}
    batches = RowBatches(tensors, batch_size=4, shuffle=True)
    torch.manual_seed(1)
    seen = [int(value) for batch in batches() for value in batch["input_ids"][:, 0]]
    assert sorted(seen) == list(range(10)) and seen != list(range(10)) and batches.n_batches() == 3
    with pytest.raises(ValueError, match="batch_size"):
        RowBatches(tensors, batch_size=0)


def test_hf_dataset_matches_the_table_and_packs_like_pack_blocks(tmp_path, monkeypatch):
    """finetune_dataset as a datasets.DatasetDict: same ids per split, saved/loaded offline, same blocks."""
    from datasets import load_from_disk

    from genai_assets.finetune.data import FINETUNE_SPLITS, build_finetune_dataset, collate_dataset

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    tokenizer = prepared_gpt2_tokenizer()
    poems = fixture_poems(5, 2, 3)
    table = tokenize_poems(poems, tokenizer)
    built = build_finetune_dataset(poems, tokenizer)
    assert list(built) == list(FINETUNE_SPLITS)
    assert {split: len(part) for split, part in built.items()} == {"train": 5, "val": 2, "test": 3}
    built.save_to_disk(str(tmp_path / "saved"))
    saved = load_from_disk(str(tmp_path / "saved"))
    for split in FINETUNE_SPLITS:
        expected = table[table["split"] == split]
        assert saved[split]["poem_id"][:] == list(expected["poem_id"])  # split and order kept
        assert [list(ids) for ids in saved[split]["input_ids"]] == [
            list(ids) for ids in expected["input_ids"]
        ]
    files = sorted(path.name for path in (tmp_path / "saved" / "train").iterdir())
    assert files == ["data-00000-of-00001.arrow", "dataset_info.json", "state.json"]
    sequences = list(table.loc[table["split"] == "train", "input_ids"])
    for collation, reference in (("packing", pack_blocks), ("padding", pad_poems)):
        rows = collate_dataset(saved["train"], collation, 16, tokenizer.pad_token_id, ignore_ids=(50257,))
        expected_rows = reference(sequences, 16, tokenizer.pad_token_id, ignore_ids=(50257,))
        for name, tensor in expected_rows.items():
            torch.testing.assert_close(rows[name], tensor, rtol=0, atol=0)
    # collating never writes cache-*.arrow files next to the saved dataset
    assert sorted(path.name for path in (tmp_path / "saved" / "train").iterdir()) == files


def test_hf_dataset_rejects_unknown_splits_and_foreign_inputs():
    from genai_assets.finetune.data import build_finetune_dataset, finetune_splits

    poems = fixture_poems(2, 1, 1).assign(split=["train", "train", "dev", "test"])
    with pytest.raises(ValueError, match=r"Unknown split names \['dev'\]"):
        build_finetune_dataset(poems, prepared_gpt2_tokenizer())
    with pytest.raises(TypeError, match="DatasetDict"):
        finetune_splits([1, 2, 3])
    with pytest.raises(FileNotFoundError, match="materialize finetune_dataset"):
        finetune_splits("/nonexistent/finetune_dataset")
