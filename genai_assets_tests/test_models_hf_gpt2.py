"""minGPT-style parity: GPT-2 weights in the scratch GPT give transformers' logits and greedy tokens."""

import pytest
import torch

from genai_assets.models.hf_gpt2 import gpt_config_from_hf, gpt_from_hf_gpt2
from genai_assets.models.transformer import GPT


def tiny_gpt2(**overrides):
    from transformers import GPT2Config, GPT2LMHeadModel

    values = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=99, n_positions=64)
    values.update(overrides)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**values)).eval()
    with torch.no_grad():  # random init leaves biases and LayerNorms at 0/1: perturb them so they count
        for name, parameter in model.named_parameters():
            if "ln_" in name or name.endswith(".bias"):
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


@pytest.mark.parametrize("use_sdpa", [True, False])
def test_gpt2_weights_give_the_same_logits_and_greedy_tokens(use_sdpa):
    reference = tiny_gpt2()
    ours = gpt_from_hf_gpt2(reference, use_sdpa=use_sdpa)
    assert ours.config.activation == "gelu_tanh" and ours.config.block_size == 64
    assert ours.lm_head.weight is ours.token_embedding.weight  # still tied after the copy
    assert ours.num_parameters() == reference.num_parameters()
    idx = torch.randint(0, 99, (3, 20), generator=torch.Generator().manual_seed(1))  # (B, T)
    with torch.no_grad():
        expected = reference(idx).logits
        logits, _ = ours(idx)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    prompt = idx[:1, :5]
    greedy_hf = reference.generate(prompt, max_new_tokens=30, do_sample=False, pad_token_id=0)
    for use_cache in (True, False):
        greedy_ours = ours.generate(prompt, max_new_tokens=30, temperature=0.0, use_cache=use_cache)
        assert greedy_ours.tolist() == greedy_hf.tolist()


def test_loss_matches_transformers_and_the_folder_path_loads(tmp_path):
    reference = tiny_gpt2()
    reference.save_pretrained(tmp_path / "gpt2")
    ours = gpt_from_hf_gpt2(tmp_path / "gpt2")  # from a saved folder
    idx = torch.randint(0, 99, (2, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        hf_loss = reference(idx, labels=idx).loss  # transformers shifts labels inside the model
        _, our_loss = ours(idx[:, :-1], idx[:, 1:])  # ours takes already-shifted targets
    torch.testing.assert_close(our_loss, hf_loss, rtol=1e-5, atol=1e-6)


def test_exact_gelu_and_a_wider_mlp_map_too():
    reference = tiny_gpt2(activation_function="gelu", n_inner=128)
    ours = gpt_from_hf_gpt2(reference)
    assert (ours.config.activation, ours.config.ffn_multiplier) == ("gelu", 2)
    idx = torch.arange(10)[None]
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], reference(idx).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon"),
        ({"activation_function": "silu"}, "activation_function 'silu'"),
        ({"n_inner": 100}, "n_inner=100"),
        ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ],
)
def test_gpt2_options_the_scratch_model_lacks_are_refused(overrides, message):
    from transformers import GPT2Config

    config = GPT2Config(n_layer=1, n_embd=64, n_head=4, vocab_size=99, n_positions=64, **overrides)
    with pytest.raises(ValueError, match=message):
        gpt_config_from_hf(config)


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # the defaults: learned positions, exact GELU, biases, tied
        {"positional_encoding": "sinusoidal", "activation": "relu", "bias": False, "ffn_multiplier": 2},
        {"tie_weights": False, "activation": "gelu_tanh"},
    ],
)
def test_scratch_gpt_exports_to_gpt2_with_the_same_logits(overrides):
    from genai_assets.models.hf_gpt2 import hf_gpt2_from_gpt
    from genai_assets.models.transformer import GPTConfig

    torch.manual_seed(3)
    ours = GPT(GPTConfig(vocab_size=99, block_size=32, n_layer=2, n_head=4, n_embd=64, **overrides)).eval()
    with torch.no_grad():  # non-trivial norms and biases, so a mis-mapped one shows
        for name, parameter in ours.named_parameters():
            if "norm" in name or name.endswith(".bias"):
                parameter.add_(0.1 * torch.randn_like(parameter))
    exported = hf_gpt2_from_gpt(ours)
    idx = torch.randint(0, 99, (2, 32), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(exported(idx).logits, ours(idx)[0], rtol=1e-5, atol=1e-5)


def test_post_norm_is_refused():
    from genai_assets.models.hf_gpt2 import hf_gpt2_from_gpt
    from genai_assets.models.transformer import GPTConfig

    with pytest.raises(ValueError, match="post-norm"):
        hf_gpt2_from_gpt(
            GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8, norm_first=False))
        )


def test_exported_scratch_folder_opens_in_the_text_generation_pipeline(tmp_path):
    """scratch_transformer's folder → load_scratch_model → save_as_hf_gpt2 → pipeline(model=folder)."""
    import json

    from transformers import pipeline

    from genai_assets.models.hf_gpt2 import save_as_hf_gpt2
    from genai_assets.models.loading import load_scratch_model, save_scratch_model
    from genai_assets.models.transformer import GPTConfig
    from genai_assets_tests.test_finetune_support import prepared_gpt2_tokenizer

    tokenizer = prepared_gpt2_tokenizer()
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    torch.manual_seed(0)
    scratch = GPT(GPTConfig(vocab_size=len(tokenizer), block_size=32, n_layer=1, n_head=2, n_embd=16))
    defaults = {"do_sample": True, "temperature": 0.8, "top_k": 50, "eos_token_id": tokenizer.eos_token_id}
    save_scratch_model(tmp_path / "scratch", scratch, tmp_path / "tokenizer", defaults, "# card\n")
    ours, _ = load_scratch_model(tmp_path / "scratch")
    saved_defaults = json.loads((tmp_path / "scratch" / "generation_config.json").read_text())
    folder = save_as_hf_gpt2(ours, tmp_path / "scratch", tmp_path / "scratch_hf", saved_defaults)
    poet = pipeline("text-generation", model=str(folder))
    assert poet.model.generation_config.temperature == 0.8  # the scratch folder's sampling defaults
    text = poet("<|startofpoem|>The rose", max_new_tokens=8, do_sample=False)[0]["generated_text"]
    prompt = torch.tensor([tokenizer("<|startofpoem|>The rose")["input_ids"]])
    greedy = ours.generate(prompt, max_new_tokens=8, temperature=0.0, eos_token_id=tokenizer.eos_token_id)
    assert text == tokenizer.decode(greedy[0])  # the pipeline decodes exactly what the scratch model does
