"""Dequantize a GGUF causal LM into a plain ``save_pretrained`` (safetensors) folder.

transformers reads GGUF files directly (``from_pretrained(folder, gguf_file=...)``, which needs
the ``gguf`` package): it dequantizes every tensor and undoes llama.cpp's permutation of the
query/key rows. The model it returns still carries ``config.quantization_config`` (method
``gguf``), and a model with that attribute cannot be saved as a normal checkpoint, so we copy
its weights into a fresh model built from the cleaned config and save that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_gguf_model(gguf_path: str | Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a GGUF file: float32 weights, quantization config removed."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise FileNotFoundError(f"GGUF file {gguf_path} does not exist.")
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, OSError, KeyError) as error:
        raise ValueError(f"Could not read GGUF file {gguf_path}: {error}") from error

    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config_dict = config.to_dict()
    config_dict.pop("_name_or_path", None)
    config_dict.pop("dtype", None)
    model_type = config_dict.pop("model_type")
    clean_config = AutoConfig.for_model(model_type, **config_dict)
    model = AutoModelForCausalLM.from_config(clean_config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    # Tied output embeddings appear as "missing" lm_head.weight when the GGUF has no output.weight.
    missing = [
        name for name in missing if not (clean_config.tie_word_embeddings and name == "lm_head.weight")
    ]
    if missing or unexpected:
        raise ValueError(
            f"GGUF weights do not fit {type(model).__name__}: missing {missing}, unexpected {unexpected}"
        )
    if clean_config.tie_word_embeddings:
        model.tie_weights()
    model.eval()
    # The GGUF tokenizer often has no pad token; fine-tuning adds one later (data.prepare_tokenizer).
    return model, tokenizer


def convert_gguf_to_hf(gguf_path: str | Path, out_dir: str | Path) -> dict:
    """Write ``config.json``, ``model.safetensors``, ``generation_config.json`` and the tokenizer
    of ``gguf_path`` into ``out_dir`` (which should be a staging folder). Returns a summary."""
    model, tokenizer = load_gguf_model(gguf_path)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return {
        "architecture": type(model).__name__,
        "n_parameters": sum(parameter.numel() for parameter in model.parameters()),
        "vocab_size": len(tokenizer),
    }
