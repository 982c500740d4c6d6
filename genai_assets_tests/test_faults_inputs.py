"""Bad input gets a clear one-line error: crafted model configs, CLI --output/--model/--config-json."""

import json
import resource
import time

import pytest
import torch

import genai_assets.generation as generation
from genai_assets.cli import main
from genai_assets.cli_input import (
    check_output_path,
    looks_like_a_path,
    parse_config_json,
    resolve_model_argument,
)
from genai_assets.models.loading import GPT_MODEL_TYPE, load_scratch_model
from genai_assets.models.size_guard import ModelSizeError, check_transformers_folder, stored_values
from genai_assets.models.transformer import GPT, GPTConfig


def _scratch_folder(folder):
    """A tiny scratch GPT folder (config.json + model.safetensors), as save_scratch_model lays it out."""
    from safetensors.torch import save_model

    config = GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=16)
    folder.mkdir(parents=True)
    save_model(GPT(config), str(folder / "model.safetensors"))
    fields = {"model_type": GPT_MODEL_TYPE, "architectures": ["GPT"], **config.to_dict()}
    (folder / "config.json").write_text(json.dumps(fields))
    return folder


def _edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vocab_size": 10**9}, "describes a model with"),  # ~16e9 parameters = 64 GB if built
        ({"n_embd": 2**20, "n_head": 1}, "describes a model with"),
        ({"n_layer": 10**6}, "above the limit of 1024 layers"),
    ],
)
def test_crafted_scratch_config_is_refused_before_allocating(tmp_path, changes, message):
    folder = _scratch_folder(tmp_path / "model")
    _edit_config(folder, **changes)
    rss_before, started = _max_rss_mib(), time.perf_counter()
    with pytest.raises(ModelSizeError, match=message):
        load_scratch_model(folder)
    assert time.perf_counter() - started < 30
    assert _max_rss_mib() - rss_before < 512  # nothing near the gigabytes the config asks for


def test_honest_scratch_folder_still_passes_the_guard(tmp_path):
    folder = _scratch_folder(tmp_path / "model")
    assert stored_values(folder) == sum(p.numel() for p in GPT(GPTConfig(64, 16, 1, 2, 16)).parameters())
    # The guard passes; the load then stops at the missing tokenizer files, past the allocation.
    with pytest.raises(Exception) as error:
        load_scratch_model(folder)
    assert not isinstance(error.value, ModelSizeError)


def test_crafted_transformers_config_is_refused(tmp_path):
    from genai_assets_tests.test_publish_hub import save_tiny_gpt2

    folder = save_tiny_gpt2(tmp_path / "gpt2")
    assert check_transformers_folder(folder) > 0  # the honest folder passes
    _edit_config(folder, vocab_size=10**9)
    rss_before = _max_rss_mib()
    with pytest.raises(ModelSizeError, match="refusing to allocate"):
        generation.load_generator(folder)
    assert _max_rss_mib() - rss_before < 512


def _run_cli(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.err.strip()


@pytest.fixture
def no_model_loading(monkeypatch):
    """Any attempt to load a model (or reach the Hub) fails the test: the checks must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"load_generator was called with {args}")

    monkeypatch.setattr(generation, "load_generator", refuse)


@pytest.mark.parametrize(
    "model", ["data_lake/models/finetuned_lm", "./missing", "missing/", "lake/finetuned", "~/nothing/here"]
)
def test_missing_relative_model_path_is_an_error_not_a_download(
    model, tmp_path, monkeypatch, capsys, no_model_loading
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lake").mkdir()  # "lake/finetuned" is a path here, though it parses as owner/name
    status, error = _run_cli(["generate", "--model", model, "--prompt", "The rose"], capsys)
    assert status == 2
    assert error.startswith("error: --model") and "not treated as a Hub id" in error and "\n" not in error


def test_hub_ids_stay_hub_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_model_argument("openai-community/gpt2") == "openai-community/gpt2"
    assert not looks_like_a_path("gpt2")
    assert looks_like_a_path("a/b/c") and looks_like_a_path("..")


def test_output_to_a_directory_or_existing_file_is_refused(tmp_path, capsys, no_model_loading):
    existing = tmp_path / "poems.jsonl"
    existing.write_text("earlier samples\n")
    for output, expected in ((tmp_path, "is a directory"), (existing, "already exists; pass --overwrite")):
        argv = ["generate", "--model", str(tmp_path / "no_model"), "--prompt", "x", "--output", str(output)]
        status, error = _run_cli(argv, capsys)
        assert status == 2 and expected in error and "\n" not in error
    assert existing.read_text() == "earlier samples\n"
    assert check_output_path(str(existing), overwrite=True) == existing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"ops": {', "is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"opps": {}}', "unknown top-level key(s) ['opps']"),
    ],
)
def test_invalid_config_json_exits_2_in_one_line(text, expected, capsys):
    status, error = _run_cli(["materialize", "--select", "raw_poems", "--config-json", text], capsys)
    assert status == 2 and expected in error and "\n" not in error
    with pytest.raises(ValueError):
        parse_config_json(text)


def test_scratch_weights_unchanged_by_guard(tmp_path):
    """The guard reads headers only: a normal folder's weights load bit-identically afterwards."""
    from safetensors.torch import load_file

    folder = _scratch_folder(tmp_path / "model")
    before = load_file(str(folder / "model.safetensors"))
    stored_values(folder)
    after = load_file(str(folder / "model.safetensors"))
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_crafted_base_model_config_is_refused_before_fine_tuning(tmp_path):
    from genai_assets.finetune.train import load_base_for_finetuning
    from genai_assets_tests.test_publish_hub import save_tiny_gpt2

    folder = save_tiny_gpt2(tmp_path / "base")
    _edit_config(folder, n_embd=2**20, n_head=1)
    rss_before = _max_rss_mib()
    with pytest.raises(ModelSizeError, match="refusing to allocate"):
        load_base_for_finetuning(folder)
    assert _max_rss_mib() - rss_before < 512
