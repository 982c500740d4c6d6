"""Fine-tuning on the tiny random GPT-2: loss goes down, the folder reloads, resume, LoRA, the assets."""

import copy
import json

import dagster as dg
import pandas as pd
import pytest
import torch

from genai_assets.finetune.data import build_finetune_dataset, tokenize_poems
from genai_assets.finetune.train import FinetuneConfig, finetune
from genai_assets_tests.test_finetune_support import (
    fixture_poems,
    prepared_gpt2_tokenizer,
    save_tiny_base,
    tiny_finetune_config,
)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return save_tiny_base(tmp_path_factory.mktemp("base") / "base_lm")


@pytest.fixture(scope="module")
def dataset():
    """The DatasetDict as finetune_dataset builds it."""
    return build_finetune_dataset(fixture_poems(), prepared_gpt2_tokenizer())


@pytest.fixture(scope="module")
def finetuned(tiny_base, dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "finetuned_lm"
    result = finetune(
        tiny_base, dataset, tiny_finetune_config(max_steps=10, sample_every=5, eval_every=3), out
    )
    return out, result


def test_tiny_finetune_lowers_validation_and_test_loss(finetuned):
    _, result = finetuned
    val_losses = [row["val_loss"] for row in result.history if "val_loss" in row]
    assert result.steps == 10 and len(val_losses) >= 2
    assert val_losses == sorted(val_losses, reverse=True) and val_losses[-1] < val_losses[0] - 0.5
    assert result.finetuned_test["perplexity"] < result.base_test["perplexity"] / 2
    assert result.finetuned_test["n_tokens"] == result.base_test["n_tokens"] > 0
    assert [row["epoch"] for row in result.training_stats] == list(range(1, len(result.training_stats) + 1))
    assert set(result.training_stats[0]) >= {
        "training_loss",
        "validation_loss",
        "training_time_s",
        "validation_time_s",
    }
    assert [sample["step"] for sample in result.samples] == [5, 10]
    # tokens/s and MFU: 6·N + 12·L·T·C FLOPs per token (training.throughput), fp32 on CPU
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(finetuned[0])
    n, config = sum(p.numel() for p in model.parameters()), model.config
    figures = result.throughput
    block = result.metrics["config"]["block_size"]
    assert figures["flops_per_token"] == 6 * n + 12 * config.n_layer * block * config.n_embd
    assert figures["precision"] == "fp32" and result.metrics["mfu"] == figures["mfu"] > 0
    assert figures["tokens_per_second"] == round(result.tokens_per_second, 1)


def test_saved_folder_reloads_with_auto_classes_and_pipeline(finetuned):
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    out, result = finetuned
    names = {path.name for path in out.iterdir()}
    saved = {"config.json", "model.safetensors", "generation_config.json", "README.md", "metrics.json"}
    assert saved <= names
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finetuned_test_perplexity"] == pytest.approx(result.finetuned_test["perplexity"])
    assert metrics["base_test_perplexity"] > metrics["finetuned_test_perplexity"]
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["do_sample"] is True and generation["eos_token_id"] == [50256, 50257]
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) == 50259
    # The README's one-liner: the folder alone is enough for a pipeline (model, tokenizer, defaults).
    generator = pipeline("text-generation", model=str(out))
    assert generator.model.generation_config.eos_token_id == [50256, 50257]
    text = generator("<|startofpoem|>The rose", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    assert text.startswith("<|startofpoem|>The rose") and len(text) > len("<|startofpoem|>The rose")
    with torch.no_grad():  # the pipeline's greedy continuation is the model's own argmax
        ids = tokenizer("<|startofpoem|>The rose", return_tensors="pt")["input_ids"]
        greedy = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert text == tokenizer.decode(greedy[0], skip_special_tokens=False)


def test_resume_continues_the_step_count(tiny_base, dataset, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    first = finetune(tiny_base, dataset, tiny_finetune_config(max_steps=3), tmp_path / "a", checkpoints)
    assert (first.steps, first.resumed_from_step) == (3, 0)
    second = finetune(tiny_base, dataset, tiny_finetune_config(max_steps=5), tmp_path / "b", checkpoints)
    assert (second.steps, second.resumed_from_step) == (5, 3)
    assert [row["step"] for row in second.history] == [1, 2, 3, 4, 5]
    # A different recipe (here: learning rate) never resumes someone else's checkpoint.
    fresh = finetune(
        tiny_base, dataset, tiny_finetune_config(max_steps=2, learning_rate=1e-3), tmp_path / "c", checkpoints
    )
    assert (fresh.steps, fresh.resumed_from_step) == (2, 0)


def test_lora_trains_adapters_and_saves_a_plain_merged_model(tiny_base, dataset, tmp_path):
    from safetensors.torch import load_file
    from transformers import GPT2LMHeadModel

    config = tiny_finetune_config(max_steps=6, lora=True, lora_r=4, learning_rate=1e-2)
    result = finetune(tiny_base, dataset, config, tmp_path / "lora")
    assert result.n_trainable_parameters == 2 * 4 * (
        64 + 192
    )  # 2 layers × c_attn adapters A (4×64) + B (192×4)
    assert result.finetuned_test["loss"] < result.base_test["loss"]
    assert not any("lora" in name for name in load_file(tmp_path / "lora" / "model.safetensors"))
    assert isinstance(GPT2LMHeadModel.from_pretrained(tmp_path / "lora"), GPT2LMHeadModel)


def test_lora_in_bf16_freezes_a_bf16_base_trains_fp32_adapters_and_saves_fp32(
    tiny_base, dataset, tmp_path, monkeypatch
):
    """Issue 16's half-precision LoRA path, on CPU's bf16 autocast (the same code a GPU runs)."""
    from safetensors.torch import load_file

    from genai_assets.finetune import train as train_module

    dtypes = {}
    load = train_module.load_base_for_finetuning

    def recording_load(*args, **kwargs):
        model, tokenizer = load(*args, **kwargs)
        dtypes["base"] = next(model.parameters()).dtype
        return model, tokenizer

    monkeypatch.setattr(train_module, "load_base_for_finetuning", recording_load)
    config = tiny_finetune_config(max_steps=4, lora=True, lora_r=4, learning_rate=1e-2, precision="bf16")
    result = finetune(tiny_base, dataset, config, tmp_path / "bf16")
    assert dtypes["base"] == torch.bfloat16 and result.throughput["precision"] == "bf16"
    assert result.finetuned_test["loss"] < result.base_test["loss"]
    assert {tensor.dtype for tensor in load_file(tmp_path / "bf16" / "model.safetensors").values()} == {
        torch.float32
    }


def test_padding_collation_trains_too(tiny_base, dataset, tmp_path):
    result = finetune(
        tiny_base, dataset, tiny_finetune_config(max_steps=2, collation="padding"), tmp_path / "pad"
    )
    assert result.steps == 2 and result.history[-1]["tokens"] > 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"collation": "bucketing"}, "collation"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
    ],
)
def test_bad_config_values_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(**overrides)


def test_block_longer_than_context_and_foreign_dataset_are_rejected(tiny_base, dataset, tmp_path):
    with pytest.raises(ValueError, match="exceeds the base model's context of 128"):
        finetune(tiny_base, dataset, tiny_finetune_config(block_size=256), tmp_path / "x")
    dataset = tokenize_poems(fixture_poems(), prepared_gpt2_tokenizer())  # the table form is accepted too
    foreign = dataset.assign(input_ids=dataset["input_ids"].map(lambda ids: ids + 60000))
    with pytest.raises(ValueError, match="another base model"):
        finetune(tiny_base, foreign, tiny_finetune_config(), tmp_path / "y")
    no_test = dataset[dataset["split"] != "test"]
    with pytest.raises(ValueError, match="no test poems"):
        finetune(tiny_base, no_test, tiny_finetune_config(), tmp_path / "z")


def test_assets_materialize_end_to_end_on_the_tiny_preset(lake_root):
    """base_lm → finetune_dataset → finetuned_lm (+ check) → generated_poems through Dagster."""
    from genai_assets.defs import finetune as stage
    from genai_assets.defs._io_manager import ParquetIOManager
    from genai_assets.defs._resources import DataLake

    fixture_poems().to_parquet(lake_root / "cleansed_poems.parquet")
    run_config = {"ops": copy.deepcopy(stage.PRESETS["tiny"])}
    run_config["ops"]["finetuned_lm"]["config"]["max_steps"] = 4
    run_config["ops"]["generated_poems"]["config"]["preset"] = "course"  # 3 samples, no repeated 2-grams
    result = dg.materialize(
        [dg.AssetSpec("cleansed_poems"), *stage.defs.assets, *stage.defs.asset_checks],
        resources={
            "io_manager": ParquetIOManager(root=str(lake_root)),
            "lake": DataLake(root=str(lake_root)),
        },
        run_config=run_config,
    )
    assert result.success
    from datasets import load_from_disk

    saved = load_from_disk(str(lake_root / "datasets" / "finetune_dataset"))
    assert {split: len(part) for split, part in saved.items()} == {"train": 24, "val": 4, "test": 4}
    assert saved["train"].features["input_ids"].feature.dtype == "int32"
    assert not (lake_root / "finetune_dataset.parquet").exists()  # no second copy via the IO manager
    dataset_metadata = result.asset_materializations_for_node("finetune_dataset")[0].metadata
    assert dataset_metadata["splits"].value["val"]["poems"] == 4
    metadata = result.asset_materializations_for_node("finetuned_lm")[0].metadata
    assert metadata["steps"].value == 4
    assert metadata["mfu"].value > 0 and metadata["precision"].value == "fp32"
    assert metadata["finetuned_test_perplexity"].value < metadata["base_test_perplexity"].value
    # Learning vs forgetting: both models on the 4 test poems and on the out-of-domain poems.
    from genai_assets.evaluation.ood_poems import OOD_POEMS

    bits = json.loads((lake_root / "models" / "finetuned_lm" / "metrics.json").read_text())["bits_per_char"]
    assert bits["n_texts"] == {"in_domain": 4, "ood": len(OOD_POEMS)}
    assert bits["change"]["ood"] == pytest.approx(bits["finetuned"]["ood"] / bits["base"]["ood"] - 1)
    assert metadata["bits_per_char_out_of_domain"].value["base"] == bits["base"]["ood"] > 0
    assert (lake_root / "reports" / "finetuned_lm_loss.png").stat().st_size > 1000
    checks = result.get_asset_check_evaluations()
    assert [check.passed for check in checks] == [True]
    poems = pd.read_parquet(lake_root / "generated_poems.parquet")
    assert list(poems.columns[:5]) == ["model", "prompt", "sample_index", "text", "params"]
    assert sorted(poems["model"]) == ["base_lm"] * 3 + ["finetuned_lm"] * 3
    assert all(text.startswith("The rose") for text in poems["text"])
    params = json.loads(poems["params"][0])
    assert params["max_new_tokens"] == 12  # from the tiny preset: the sampling preset leaves it alone
    course = (params["temperature"], params["repetition_penalty"], params["no_repeat_ngram_size"])
    assert course == (1.0, 1.2, 2)
    sampling = result.asset_materializations_for_node("generated_poems")[0].metadata["sampling"].value
    assert sampling["preset"] == "course" and sampling["num_return_sequences"] == 3


def test_added_token_embeddings_are_the_same_on_every_load(tiny_base):
    """A LoRA resume restores adapters only, so the new <|startofpoem|>/<|pad|> rows must not vary."""
    from genai_assets.finetune.train import load_base_for_finetuning

    torch.manual_seed(123)
    first, _ = load_base_for_finetuning(tiny_base)
    torch.manual_seed(456)
    second, _ = load_base_for_finetuning(tiny_base)
    rows = first.get_input_embeddings().weight[50257:]
    assert rows.shape == (2, 64)
    torch.testing.assert_close(rows, second.get_input_embeddings().weight[50257:], rtol=0, atol=0)
