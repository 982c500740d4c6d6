"""Asset hub_upload on a temp lake: dry run, upload through a recording client, token redaction."""

import json

import dagster as dg
import pandas as pd
import pytest

from genai_assets.defs._resources import DataLake, HubClient
from genai_assets.defs.publish import hub_upload
from genai_assets.publish.hf_dataset import poems_dataset_card, poems_dataset_dict, save_hub_dataset_folder
from genai_assets_tests.test_publish_hf_dataset import cleansed_poems_table
from genai_assets_tests.test_publish_hub import FAKE_TOKEN, save_tiny_gpt2

UPLOADS: list = []  # calls recorded by RecordingHubClient (a resource cannot hold mutable state)


class RecordingApi:
    def create_repo(self, repo_id, **kwargs):
        UPLOADS.append(("create_repo", repo_id, kwargs))
        return f"https://hub.example/{kwargs.get('repo_type', 'model')}s/{repo_id}"

    def upload_folder(self, **kwargs):
        from pathlib import Path

        files = sorted(
            p.relative_to(kwargs["folder_path"]).as_posix()
            for p in Path(kwargs["folder_path"]).rglob("*")
            if p.is_file()
        )
        UPLOADS.append(("upload_folder", kwargs["repo_id"], {**kwargs, "files": files}))
        return "https://hub.example/commit/0123"


class RecordingHubClient(HubClient):
    """The real HubClient logic with the HfApi seam replaced: nothing leaves the machine."""

    def api(self):
        return RecordingApi()


@pytest.fixture
def publish_lake(tmp_path):
    root = tmp_path / "lake"
    save_tiny_gpt2(root / "models" / "finetuned_lm")
    (root / "models" / "finetuned_lm" / "metrics.json").write_text(
        json.dumps(
            {
                "base_model": {"name": "smollm2-135m", "kind": "packaged", "license": "Apache-2.0"},
                "config": {"learning_rate": 5e-5, "max_steps": 40, "block_size": 128},
                "final_val_loss": 3.21,
                "steps": 40,
            }
        )
    )
    reports = root / "reports"
    reports.mkdir(parents=True)
    (reports / "evaluation.json").write_text(
        json.dumps(
            {"models": [{"model": "finetuned_lm", "perplexity": 30.2, "bits_per_char": 1.8, "bleu": 4.1}]}
        )
    )
    pd.DataFrame(
        {
            "prompt_id": [0],
            "prompt": ["The moon\nabove\n"],
            "model": ["finetuned_lm"],
            "text": ["the sea below"],
        }
    ).to_parquet(reports / "evaluation_samples.parquet")
    pd.DataFrame(
        {
            "poem_id": ["a", "b", "c"],
            "source": ["shakespeare"] * 3,
            "license": ["public-domain"] * 3,
            "text": ["x y", "y z", "z w"],
            "n_words": [2, 2, 2],
            "split": ["train", "train", "test"],
        }
    ).to_parquet(root / "cleansed_poems.parquet")
    # what asset poems_hf_dataset writes (hub_upload publishes it next to the model by default)
    hf_dataset = poems_dataset_dict(cleansed_poems_table())
    save_hub_dataset_folder(
        hf_dataset, poems_dataset_card(hf_dataset), root / "datasets" / "poems_hf_dataset"
    )
    return root


def _materialize(root, hub, config=None, instance=None):
    return dg.materialize(
        [hub_upload],
        resources={"lake": DataLake(root=str(root)), "hub": hub},
        run_config={"ops": {"hub_upload": {"config": config or {}}}},
        instance=instance,
    )


def test_dry_run_without_token_stages_a_complete_folder(publish_lake, monkeypatch):
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.delenv("HF_TOKEN", raising=False)
    UPLOADS.clear()
    result = _materialize(publish_lake, RecordingHubClient(), {"repo_id": "me/poems-tiny"})
    metadata = result.asset_materializations_for_node("hub_upload")[0].metadata
    assert metadata["uploaded"].value is False
    assert metadata["status"].value.startswith("dry run: nothing was uploaded because HF_TOKEN is not set")
    assert UPLOADS == []
    staged = publish_lake / "hub_staging" / "poems-tiny"
    assert "metrics.json" not in {p.name for p in staged.iterdir()}
    AutoModelForCausalLM.from_pretrained(staged)
    AutoTokenizer.from_pretrained(staged)
    card = ModelCard.load(staged / "README.md")
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert card.data.license == "apache-2.0"
    assert "| learning_rate | 5e-05 |" in card.text and "the sea below" in card.text
    assert "| shakespeare |" in card.text  # training data table from the cleansed poems
    assert card.data.datasets == ["genai-assets/cleansed-poems"]  # the dataset staged next to it
    dataset_card = (publish_lake / "hub_staging" / "cleansed-poems" / "README.md").read_text()
    assert 'load_dataset("genai-assets/cleansed-poems")' in dataset_card


def test_upload_sends_the_staged_folder_and_never_leaks_the_token(publish_lake, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    UPLOADS.clear()
    instance = dg.DagsterInstance.ephemeral()
    config = {
        "repo_id": "me/poems-tiny",
        "private": False,
        "commit_message": "poems v1",
        "publish_dataset": True,
    }
    result = _materialize(publish_lake, RecordingHubClient(), config, instance)
    assert result.success
    assert [(call[0], call[1]) for call in UPLOADS] == [
        ("create_repo", "me/poems-tiny"),
        ("upload_folder", "me/poems-tiny"),
        ("create_repo", "genai-assets/cleansed-poems"),
        ("upload_folder", "genai-assets/cleansed-poems"),
    ]
    assert UPLOADS[0][2] == {"repo_type": "model", "private": False, "exist_ok": True}
    sent = UPLOADS[1][2]
    assert sent["commit_message"] == "poems v1" and sent["repo_type"] == "model"
    assert sent["files"] == [
        "README.md",
        "config.json",
        "generation_config.json",
        "merges.txt",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
    ]
    assert UPLOADS[3][2]["repo_type"] == "dataset"
    assert UPLOADS[3][2]["files"] == [
        "README.md",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet",
    ]
    metadata = result.asset_materializations_for_node("hub_upload")[0].metadata
    assert (
        metadata["uploaded"].value is True
        and metadata["commit_url"].value == "https://hub.example/commit/0123"
    )

    # The token appears nowhere: not in the event log (run config, logs, metadata), not in files.
    run_records = instance.get_run_records()
    serialized = "".join(
        dg.serialize_value(entry)
        for record in run_records
        for entry in instance.all_logs(record.dagster_run.run_id)
    )
    serialized += "".join(dg.serialize_value(record.dagster_run) for record in run_records)
    assert "poems v1" in serialized  # the scan does see run config and metadata ...
    assert FAKE_TOKEN not in serialized  # ... and no token in them
    assert FAKE_TOKEN not in json.dumps({key: str(value) for key, value in metadata.items()})
    for path in (publish_lake / "hub_staging").rglob("*"):
        if path.is_file():
            assert FAKE_TOKEN.encode() not in path.read_bytes(), path


def test_missing_model_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="materialize the model asset first"):
        _materialize(tmp_path / "empty_lake", RecordingHubClient())


def test_scraped_license_and_generated_sample_cannot_add_markup_to_the_card(publish_lake, monkeypatch):
    from genai_assets_tests.test_publish_model_card import _rendered

    monkeypatch.delenv("HF_TOKEN", raising=False)
    poems = pd.read_parquet(publish_lake / "cleansed_poems.parquet")
    poems["license"] = "PD | <img src=x onerror=alert(1)>"
    poems.to_parquet(publish_lake / "cleansed_poems.parquet")
    sample = "the sea below\n```\n# Fake heading\n<script>alert(1)</script>"
    samples = pd.read_parquet(publish_lake / "reports" / "evaluation_samples.parquet").assign(text=sample)
    samples.to_parquet(publish_lake / "reports" / "evaluation_samples.parquet")
    _materialize(publish_lake, RecordingHubClient(), {"repo_id": "me/poems-tiny"})
    card_text = (publish_lake / "hub_staging" / "poems-tiny" / "README.md").read_text().split("---\n", 2)[2]
    page = _rendered(card_text)
    assert not {"img", "script"} & set(page.tags) and "Fake heading" not in page.headings
    assert any(sample in block for block in page.code)
