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
        ({"vocab_size": 10**9}, "vocab_size must be <= 1,048,576"),  # 64 GB if built: out of bounds
        ({"vocab_size": 1_000_000}, "describes a model with"),  # within bounds, not what the weights hold
        ({"n_embd": 2**20, "n_head": 1}, "n_embd must be <= 16,384"),
        ({"n_embd": 8192, "n_head": 1}, "describes a model with"),
        ({"n_layer": 10**6}, "above the limit of 1024 layers|n_layer must be <= 256"),
    ],
)
def test_crafted_scratch_config_is_refused_before_allocating(tmp_path, changes, message):
    folder = _scratch_folder(tmp_path / "model")
    _edit_config(folder, **changes)
    rss_before, started = _max_rss_mib(), time.perf_counter()
    with pytest.raises(ValueError, match=message):  # ModelSizeError is a ValueError
        load_scratch_model(folder)
    assert time.perf_counter() - started < 30
    assert _max_rss_mib() - rss_before < 512  # nothing near the gigabytes the config asks for


def test_honest_scratch_folder_still_passes_the_guard(tmp_path):
    folder = _scratch_folder(tmp_path / "model")
    honest = GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=16)
    assert stored_values(folder) == sum(p.numel() for p in GPT(honest).parameters())
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


# -- sizes bounded before anything is allocated --------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: GPTConfig(block_size=10**9), "block_size must be <= 65,536"),
        (lambda: GPTConfig(n_embd=2**20, n_head=1), "n_embd must be <= 16,384"),
        (lambda: GPTConfig(vocab_size=10**9), "vocab_size must be <= 1,048,576"),
        (lambda: _scratch_config(max_steps=10**21), "max_steps must be <= 10,000,000"),
        (lambda: _scratch_config(batch_size=10**7), "batch_size must be <= 65,536"),
        (lambda: _scratch_config(n_layer=10**6), "n_layer must be <= 256"),
        (lambda: _rnn_config(hidden_size=10**7), "hidden_size must be <= 16,384"),
        (lambda: _sampling(max_new_tokens=10**9), "max_new_tokens must be <= 65,536"),
        (lambda: _sampling(num_return_sequences=10**6), "num_return_sequences must be <= 1,024"),
    ],
)
def test_size_step_and_length_fields_have_upper_bounds(build, field):
    with pytest.raises(ValueError, match=field):
        build()


def _scratch_config(**changes):
    from genai_assets.training.scratch_config import ScratchTransformerConfig

    return ScratchTransformerConfig(**changes)


def _rnn_config(**changes):
    from genai_assets.training.scratch_config import RNNBaselinesConfig

    return RNNBaselinesConfig(**changes)


def _sampling(**changes):
    from genai_assets.models.sampling_settings import SamplingConfig

    return SamplingConfig(**changes)


def test_memory_estimate_counts_buffers_and_refuses_naming_the_fields(monkeypatch):
    from genai_assets.models.size_guard import MEMORY_CAP_ENV, check_memory, estimate_gpt_training_memory

    tiny = GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=16)
    estimate = estimate_gpt_training_memory(tiny, batch_size=4)
    parameters = sum(parameter.numel() for parameter in GPT(tiny).parameters())
    assert (
        estimate.parts["parameters"] == 4 * parameters and estimate.parts["optimizer_state"] == 8 * parameters
    )
    sinusoidal = GPTConfig(**{**tiny.to_dict(), "positional_encoding": "sinusoidal", "block_size": 65_536})
    buffers = sum(buffer.numel() for buffer in GPT(sinusoidal).buffers())
    assert (
        buffers >= 65_536 * 16 and estimate_gpt_training_memory(sinusoidal, 4).parts["buffers"] == 4 * buffers
    )
    monkeypatch.setenv(MEMORY_CAP_ENV, "0.01")  # 10 MiB
    assert check_memory(estimate, "tiny run") is estimate  # well under the cap
    big_batch = estimate_gpt_training_memory(tiny.__class__(**{**tiny.to_dict(), "block_size": 4096}), 256)
    with pytest.raises(ModelSizeError, match=r"needs an estimated .* GiB .*lower batch_size, block_size"):
        check_memory(big_batch, "scratch_transformer")


def test_the_scratch_stage_refuses_a_run_too_big_for_memory_before_building_it(tmp_path, monkeypatch):
    from genai_assets.models.size_guard import MEMORY_CAP_ENV
    from genai_assets.stages import scratch as scratch_stage
    from genai_assets.training.scratch_config import ScratchTransformerConfig

    built = []
    monkeypatch.setattr(scratch_stage, "token_arrays_meta", lambda lake: (tmp_path, {"vocab_size": 50_000}))
    monkeypatch.setattr(scratch_stage, "_seeded_model", lambda *args: built.append(args))
    monkeypatch.setenv(MEMORY_CAP_ENV, "1")
    config = ScratchTransformerConfig(block_size=8192, batch_size=64, device="cpu")  # logits alone: 300 GiB
    with pytest.raises(ModelSizeError, match="scratch_transformer needs an estimated") as raised:
        scratch_stage.run_scratch_transformer(config, lake=None, log=lambda _: None)
    assert "\n" not in str(raised.value) and built == []


def test_a_sinusoidal_config_with_a_huge_block_size_is_refused_at_load(tmp_path):
    # No parameter depends on block_size with sinusoidal positions: only the (unsaved) table does.
    folder = _scratch_folder(tmp_path / "model")
    _edit_config(folder, positional_encoding="sinusoidal", block_size=65_536)
    rss_before = _max_rss_mib()
    with pytest.raises(ModelSizeError, match=r"buffer values"):
        load_scratch_model(folder)
    assert _max_rss_mib() - rss_before < 512


def test_cli_refuses_a_config_out_of_bounds_with_exit_2_in_one_line(capsys):
    config = json.dumps({"ops": {"scratch_transformer": {"config": {"block_size": 10**9}}}})
    assert main(["materialize", "--select", "scratch_transformer", "--config-json", config]) == 2
    error = capsys.readouterr().err.strip()
    assert "block_size must be <= 65,536" in error and len(error.splitlines()) == 1
