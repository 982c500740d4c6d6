"""Shared builders for the fine-tuning and generation tests (no tests here).

Fixture poems, a tiny base folder (random 2-layer GPT-2 + the real GPT-2 tokenizer), a tiny
fine-tuned folder, and a tiny llama GGUF file written with ``gguf.GGUFWriter``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

LINES = [
    "The rose is red upon the garden wall,",
    "And all the sky is blue above the sea;",
    "The night is long, the stars begin to fall,",
    "And O my love, come softly back to me.",
    "Upon the hill the shepherd sings his song,",
    "The river runs and wanders to the shore,",
]


def fixture_poems(n_train: int = 24, n_val: int = 4, n_test: int = 4) -> pd.DataFrame:
    """Short, repetitive public-domain-style poems with the cleansed_poems columns the stage reads."""
    rows = []
    splits = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    for index, split in enumerate(splits):
        lines = [LINES[(index + offset) % len(LINES)] for offset in range(4)]
        rows.append(
            {
                "poem_id": f"poem-{index:03d}",
                "source": "shakespeare",
                "title": f"Song {index}" if index % 3 == 0 else None,
                "author": None,
                "text": "\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]),
                "n_lines": 4,
                "n_words": 32,
                "split": split,
            }
        )
    return pd.DataFrame(rows)


def save_tiny_base(folder: Path) -> Path:
    """A tiny-gpt2-random base folder as asset base_lm writes it."""
    from genai_assets.finetune.base_model import TINY_GPT2, prepare_base_lm

    prepare_base_lm(TINY_GPT2, folder)
    return folder


@functools.cache
def gpt2_tokenizer():
    from genai_assets.finetune.base_model import load_gpt2_tokenizer

    return load_gpt2_tokenizer()


def prepared_gpt2_tokenizer():
    import copy

    from genai_assets.finetune.data import prepare_tokenizer

    tokenizer = copy.deepcopy(gpt2_tokenizer())
    prepare_tokenizer(tokenizer)
    return tokenizer


def tiny_finetune_config(**overrides):
    """The ``tiny`` preset (all weights unless a test asks for LoRA; the cpu default is LoRA on all
    linears), cut further for unit tests: shorter blocks, six steps, no evaluation passes, a fixed seed."""
    import copy

    from genai_assets.finetune.train import FINETUNE_PRESETS, FinetuneConfig

    shorter = dict(block_size=32, epochs=10, max_steps=6, eval_batches=0, perplexity_max_blocks=0, seed=3)
    return FinetuneConfig(**{**copy.deepcopy(FINETUNE_PRESETS["tiny"]), **shorter, **overrides})


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character table (the alphabet of byte-level BPE vocabularies)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, [chr(code) for code in codes], strict=True))


def tiny_llama_config(vocab_size: int, bos_token_id: int, eos_token_id: int, **overrides):
    """A 2-layer, 32-d Llama (4 query heads sharing 2 key/value heads, tied embeddings) for the tests."""
    from transformers import LlamaConfig

    values = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
    )
    return LlamaConfig(**{**values, **overrides})


def write_tiny_llama_gguf(path: Path, seed: int = 0):
    """Write a 2-layer llama GGUF (float32, GPT-2-style BPE tokenizer); return the HF model it encodes.

    Query/key rows are permuted the way llama.cpp's converter does, so a correct reader must undo it.
    """
    import gguf
    import torch
    from transformers import LlamaForCausalLM

    tokens = ["<unk>", "<s>", "</s>", *bytes_to_unicode().values(), "Ġt", "he", "Ġthe"]
    merges = ["Ġ t", "h e", "Ġt he"]
    config = tiny_llama_config(len(tokens), 1, 2, rms_norm_eps=1e-5, rope_theta=10000.0)
    n_heads, n_kv_heads = config.num_attention_heads, config.num_key_value_heads
    hidden, n_layers = config.hidden_size, config.num_hidden_layers
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    weights = {name: tensor.detach().numpy() for name, tensor in model.state_dict().items()}

    def permute(weight: np.ndarray, heads: int) -> np.ndarray:
        # llama.cpp interleaves the two rotary halves of each head: (heads, 2, hs/2, C) → (heads, hs/2, 2, C)
        return (
            weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2)
            .reshape(weight.shape)
        )

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny llama fixture")
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(64)
    writer.add_head_count(n_heads)
    writer.add_head_count_kv(n_kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(hidden // n_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))  # 3 = control, 1 = normal
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_tensor("token_embd.weight", weights["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", weights["model.norm.weight"])
    gguf_names = {
        "input_layernorm": "attn_norm",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for layer in range(n_layers):
        prefix = f"model.layers.{layer}."
        writer.add_tensor(
            f"blk.{layer}.attn_q.weight", permute(weights[prefix + "self_attn.q_proj.weight"], n_heads)
        )
        writer.add_tensor(
            f"blk.{layer}.attn_k.weight", permute(weights[prefix + "self_attn.k_proj.weight"], n_kv_heads)
        )
        for hf_name, gguf_name in gguf_names.items():
            writer.add_tensor(f"blk.{layer}.{gguf_name}.weight", weights[prefix + hf_name + ".weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return model
