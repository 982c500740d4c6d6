"""The cpu fine-tuning recipe chosen by the sweep: LoRA on every linear layer, and the presets around it."""

from __future__ import annotations

import pytest

from genai_assets.finetune.train import FINETUNE_PRESETS, FinetuneConfig, finetune, lora_targets
from genai_assets_tests.test_finetune_support import (
    fixture_poems,
    prepared_gpt2_tokenizer,
    save_tiny_base,
    tiny_finetune_config,
)


def test_cpu_default_is_the_measured_recipe_and_other_presets_train_all_weights():
    config = FinetuneConfig()  # the cpu preset is the defaults
    assert FINETUNE_PRESETS["cpu"] == {}
    assert (config.lora, config.lora_r, config.lora_alpha, config.lora_target_modules) == (
        True,
        16,
        32,
        ["all-linear"],
    )
    assert (config.learning_rate, config.max_steps, config.block_size, config.batch_size) == (
        1e-3,
        80,
        128,
        4,
    )
    for preset in ("tiny", "gpu"):
        assert FinetuneConfig(**FINETUNE_PRESETS[preset]).lora is False


def test_lora_targets():
    assert lora_targets(["all-linear"]) == "all-linear"
    assert lora_targets(["q_proj", "v_proj"]) == ["q_proj", "v_proj"]
    assert lora_targets([]) is None  # peft's per-architecture default
    with pytest.raises(ValueError, match="cannot be combined"):
        lora_targets(["all-linear", "q_proj"])


def test_all_linear_adapts_every_linear_layer_but_the_head(tmp_path):
    from genai_assets.finetune.data import build_finetune_dataset

    base = save_tiny_base(tmp_path / "base_lm")
    dataset = build_finetune_dataset(fixture_poems(), prepared_gpt2_tokenizer())
    config = tiny_finetune_config(max_steps=4, lora=True, lora_r=4, lora_target_modules=["all-linear"])
    result = finetune(base, dataset, config, tmp_path / "out")
    # Tiny GPT-2 (2 layers, width 64, MLP 256), rank 4, A (r x in) + B (out x r) per Conv1D:
    # attn.c_attn 64->192, attn.c_proj 64->64, mlp.c_fc 64->256, mlp.c_proj 256->64; lm_head untouched.
    per_layer = 4 * ((64 + 192) + (64 + 64) + (64 + 256) + (256 + 64))
    assert result.n_trainable_parameters == 2 * per_layer
    assert result.finetuned_test["loss"] < result.base_test["loss"]
