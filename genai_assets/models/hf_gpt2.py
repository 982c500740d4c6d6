"""Hugging Face GPT-2 weights in the from-scratch :class:`~genai_assets.models.transformer.GPT` (minGPT-style).

The scratch GPT with ``positional_encoding="learned"``, ``norm_first=True``, ``bias=True``,
``tie_weights=True`` and ``activation="gelu_tanh"`` *is* GPT-2 (Radford et al. 2019, §2.3): the
same computation, parameter for parameter. :func:`gpt_from_hf_gpt2` builds that config from a
``GPT2Config`` and copies a ``GPT2LMHeadModel``'s weights in, so a user who has real GPT-2
weights can fine-tune them with this project's own training loop; the test checks equal logits
and identical greedy tokens against transformers on a tiny random GPT-2.

Name and layout mapping (``h.i`` = ``transformer.h.i``):

=========================  ===================================  ==========================
transformers GPT-2         scratch GPT                          note
=========================  ===================================  ==========================
``wte``                    ``token_embedding``                  tied with ``lm_head``
``wpe``                    ``position_encoding.embedding``      ``n_positions`` = block_size
``h.i.ln_1``               ``layers.i.norm1``
``h.i.attn.c_attn``        ``layers.i.self_attention.in_proj``  Conv1D (in, out): transposed
``h.i.attn.c_proj``        ``layers.i.self_attention.out_proj`` transposed
``h.i.ln_2``               ``layers.i.norm3``                   (norm2 is cross-attention's)
``h.i.mlp.c_fc``           ``layers.i.feed_forward.linear1``    transposed
``h.i.mlp.c_proj``         ``layers.i.feed_forward.linear2``    transposed
``ln_f``                   ``final_norm``
=========================  ===================================  ==========================

The other direction, :func:`hf_gpt2_from_gpt` / :func:`save_as_hf_gpt2`, writes any pre-norm
scratch GPT as a ``GPT2LMHeadModel`` folder with its tokenizer, so
``transformers.pipeline("text-generation", model=folder)`` opens a from-scratch model too.

GPT-2 options the scratch model does not have are refused with a clear error rather than
silently approximated: a LayerNorm epsilon other than 1e-5, an ``n_inner`` that is not a
multiple of ``n_embd``, ``scale_attn_by_inverse_layer_idx``, ``scale_attn_weights=False`` and
activations outside ``gelu_new``/``gelu_pytorch_tanh``/``gelu``/``relu``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genai_assets.models.gpt_config import GPTConfig
from genai_assets.models.transformer import GPT

# transformers activation names → the scratch model's (``genai_assets.models.layers.ACTIVATIONS``).
HF_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
SCRATCH_LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default, used by every scratch LayerNorm

# (GPTConfig field, GPT2Config field) that hold the same value under two names: both directions of
# the config mapping read this table. The rest is derived (ffn_multiplier ↔ n_inner) or fixed.
CONFIG_NAMES = (
    ("vocab_size", "vocab_size"),
    ("block_size", "n_positions"),
    ("n_layer", "n_layer"),
    ("n_head", "n_head"),
    ("n_embd", "n_embd"),
    ("tie_weights", "tie_word_embeddings"),
)
# Per block, (GPT-2 name, scratch name) of the weights (the module docstring's table): the Conv1D
# layers, whose weights are stored transposed, and the layer norms (norm2 is cross-attention's).
CONV1D_NAMES = (
    ("attn.c_attn", "self_attention.in_proj"),
    ("attn.c_proj", "self_attention.out_proj"),
    ("mlp.c_fc", "feed_forward.linear1"),
    ("mlp.c_proj", "feed_forward.linear2"),
)
LAYER_NORM_NAMES = (("ln_1", "norm1"), ("ln_2", "norm3"))


def gpt_config_from_hf(hf_config: Any, use_sdpa: bool = True):
    """The :class:`GPTConfig` computing what ``hf_config`` (a ``GPT2Config``) computes; clear error if none can."""
    problems = []
    if getattr(hf_config, "model_type", None) != "gpt2":
        problems.append(f"model_type must be 'gpt2', got {getattr(hf_config, 'model_type', None)!r}")
    activation = HF_ACTIVATIONS.get(hf_config.activation_function)
    if activation is None:
        problems.append(
            f"activation_function {hf_config.activation_function!r} has no scratch equivalent "
            f"(supported: {', '.join(HF_ACTIVATIONS)})"
        )
    if abs(hf_config.layer_norm_epsilon - SCRATCH_LAYER_NORM_EPS) > 1e-12:
        problems.append(
            f"layer_norm_epsilon must be {SCRATCH_LAYER_NORM_EPS}, got {hf_config.layer_norm_epsilon}"
        )
    inner = hf_config.n_inner or 4 * hf_config.n_embd  # transformers: None means 4·n_embd
    if inner % hf_config.n_embd:
        problems.append(f"n_inner={inner} is not a multiple of n_embd={hf_config.n_embd}")
    if getattr(hf_config, "scale_attn_by_inverse_layer_idx", False):
        problems.append("scale_attn_by_inverse_layer_idx=True is not implemented in the scratch attention")
    if not getattr(hf_config, "scale_attn_weights", True):
        problems.append("scale_attn_weights=False (no 1/sqrt(hs) scaling) is not implemented")
    if problems:
        raise ValueError(
            "Cannot express this GPT-2 config as a scratch GPTConfig: " + "; ".join(problems) + "."
        )
    return GPTConfig(
        **{ours: getattr(hf_config, hf) for ours, hf in CONFIG_NAMES},
        ffn_multiplier=inner // hf_config.n_embd,
        dropout=0.0,  # inference parity; set config.dropout before training if wanted
        bias=True,
        norm_first=True,
        positional_encoding="learned",
        activation=activation,
        use_sdpa=use_sdpa,
    )


def scratch_state_dict_from_hf(hf_state: dict, n_layer: int, tie_weights: bool = True) -> dict:
    """Rename (and transpose the Conv1D weights of) a ``GPT2LMHeadModel`` state dict for the scratch GPT."""
    prefix = "transformer." if any(key.startswith("transformer.") for key in hf_state) else ""

    def get(name: str):
        key = prefix + name
        if key not in hf_state:
            raise KeyError(f"GPT-2 state dict has no {key!r}: not a GPT2LMHeadModel/GPT2Model checkpoint.")
        return hf_state[key]

    state = {
        "token_embedding.weight": get("wte.weight"),
        "position_encoding.embedding.weight": get("wpe.weight"),
        "final_norm.weight": get("ln_f.weight"),
        "final_norm.bias": get("ln_f.bias"),
    }
    for layer in range(n_layer):
        hf, ours = f"h.{layer}.", f"layers.{layer}."
        for hf_name, our_name in CONV1D_NAMES:
            # GPT-2's Conv1D stores (in, out); nn.Linear stores (out, in): transpose every one of them.
            state[f"{ours}{our_name}.weight"] = get(f"{hf}{hf_name}.weight").t().contiguous()
            state[f"{ours}{our_name}.bias"] = get(f"{hf}{hf_name}.bias")
        for hf_name, our_name in LAYER_NORM_NAMES:
            state[f"{ours}{our_name}.weight"] = get(f"{hf}{hf_name}.weight")
            state[f"{ours}{our_name}.bias"] = get(f"{hf}{hf_name}.bias")
    if tie_weights:
        state["lm_head.weight"] = state["token_embedding.weight"]
    else:
        if "lm_head.weight" not in hf_state:
            raise KeyError("Untied GPT-2 checkpoint without lm_head.weight.")
        state["lm_head.weight"] = hf_state["lm_head.weight"]
    return state


def gpt_from_hf_gpt2(model_or_folder: Any, use_sdpa: bool = True):
    """A scratch :class:`GPT` (eval mode) with the weights of a ``GPT2LMHeadModel``, a folder or a Hub id.

    Shapes are checked tensor by tensor (``load_state_dict(strict=True)`` names any mismatch).
    """
    import torch

    hf_model = model_or_folder
    if isinstance(model_or_folder, str | Path):
        from transformers import GPT2LMHeadModel

        hf_model = GPT2LMHeadModel.from_pretrained(str(model_or_folder), dtype=torch.float32)
    config = gpt_config_from_hf(hf_model.config, use_sdpa=use_sdpa)
    model = GPT(config)
    state = scratch_state_dict_from_hf(hf_model.state_dict(), config.n_layer, config.tie_weights)
    expected = model.state_dict()
    for name, tensor in state.items():
        if name in expected and tuple(expected[name].shape) != tuple(tensor.shape):
            raise ValueError(
                f"{name}: GPT-2 gives shape {tuple(tensor.shape)}, the scratch GPT expects "
                f"{tuple(expected[name].shape)}."
            )
    with torch.no_grad():
        model.load_state_dict({name: tensor.detach().clone() for name, tensor in state.items()}, strict=True)
    return model.eval()  # load_state_dict copies in place, so a tied matrix stays one Parameter


# The inverse direction: a scratch GPT saved as a GPT2LMHeadModel folder (pipeline-ready).
SCRATCH_TO_HF_ACTIVATIONS = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}


def _hf_gpt2_config(config: Any, token_ids: dict | None):
    """The ``GPT2Config`` matching a pre-norm scratch ``GPTConfig`` (sizes, activation, dropout, ties)."""
    from transformers import GPT2Config

    return GPT2Config(
        **{hf: getattr(config, ours) for ours, hf in CONFIG_NAMES},
        n_inner=config.ffn_multiplier * config.n_embd,
        activation_function=SCRATCH_TO_HF_ACTIVATIONS[config.activation],
        layer_norm_epsilon=SCRATCH_LAYER_NORM_EPS,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        **{"bos_token_id": None, "eos_token_id": None, **(token_ids or {})},
    )


def _hf_gpt2_state(model: Any) -> dict:
    """The scratch ``model``'s weights under GPT-2's names and layouts (Conv1D, ``wpe`` table, zero biases)."""
    import torch

    config = model.config
    ours = model.state_dict()
    positions = torch.arange(config.block_size)
    with torch.no_grad():
        table = model.position_encoding(positions)  # (T, C): learned rows or the sinusoid table
    state = {"transformer.wte.weight": ours["token_embedding.weight"], "transformer.wpe.weight": table}

    def bias_or_zeros(name: str, size: int):
        return ours[name] if name in ours else torch.zeros(size)

    state["transformer.ln_f.weight"] = ours["final_norm.weight"]
    state["transformer.ln_f.bias"] = bias_or_zeros("final_norm.bias", config.n_embd)
    for layer in range(config.n_layer):
        hf, mine = f"transformer.h.{layer}.", f"layers.{layer}."
        for hf_name, our_name in CONV1D_NAMES:
            weight = ours[f"{mine}{our_name}.weight"]  # (out, in) → Conv1D's (in, out)
            state[f"{hf}{hf_name}.weight"] = weight.t().contiguous()
            state[f"{hf}{hf_name}.bias"] = bias_or_zeros(f"{mine}{our_name}.bias", weight.shape[0])
        for hf_name, our_name in LAYER_NORM_NAMES:
            state[f"{hf}{hf_name}.weight"] = ours[f"{mine}{our_name}.weight"]
            state[f"{hf}{hf_name}.bias"] = bias_or_zeros(f"{mine}{our_name}.bias", config.n_embd)
    state["lm_head.weight"] = ours["lm_head.weight"]
    return state


def hf_gpt2_from_gpt(model: Any, token_ids: dict | None = None):
    """A ``GPT2LMHeadModel`` (eval mode) computing exactly what the scratch ``model`` computes.

    ``token_ids``: ``bos_token_id``/``eos_token_id``/``pad_token_id`` for the config (GPT2Config
    would otherwise claim OpenAI's 50256, which is not in a poem tokenizer's vocabulary).

    Works for every pre-norm config: sinusoidal positions become a fixed ``wpe`` table (exact for
    positions below ``block_size``), a model without biases gets zero biases. Post-norm
    (``norm_first=False``) has no GPT-2 equivalent and is refused.
    """
    from transformers import GPT2LMHeadModel

    if not model.config.norm_first:
        raise ValueError("A post-norm scratch GPT (norm_first=False) has no GPT-2 equivalent.")
    hf_model = GPT2LMHeadModel(_hf_gpt2_config(model.config, token_ids))
    missing, unexpected = hf_model.load_state_dict(_hf_gpt2_state(model), strict=False)
    # GPT-2 keeps non-persistent attention-mask buffers only in some versions: nothing else may be missing.
    missing = [name for name in missing if not name.endswith((".attn.bias", ".attn.masked_bias"))]
    if missing or unexpected:
        raise ValueError(f"GPT-2 export mismatch: missing {missing}, unexpected {unexpected}.")
    return hf_model.eval()


def save_as_hf_gpt2(
    model: Any, tokenizer_dir: str | Path, folder: str | Path, generation_defaults=None
) -> Path:
    """Write ``model`` as a transformers GPT-2 folder with the tokenizer: ``pipeline(model=folder)`` opens it.

    ``generation_defaults``: ``generation_config.json`` values (e.g. the scratch folder's own), so
    the pipeline samples with the same settings and ids.
    """
    from transformers import AutoTokenizer, GenerationConfig, PreTrainedTokenizerFast

    from genai_assets.lake import atomic_directory

    folder, tokenizer_dir = Path(folder), Path(tokenizer_dir)
    # A scratch folder's config.json names a model type transformers does not know: read the
    # tokenizer file directly there, as load_scratch_model does.
    reader = PreTrainedTokenizerFast if (tokenizer_dir / "tokenizer.json").is_file() else AutoTokenizer
    tokenizer = reader.from_pretrained(str(tokenizer_dir))
    ids = {name: getattr(tokenizer, name) for name in ("bos_token_id", "eos_token_id", "pad_token_id")}
    hf_model = hf_gpt2_from_gpt(model, ids)
    if generation_defaults:
        hf_model.generation_config = GenerationConfig(**generation_defaults)
    with atomic_directory(folder) as staging:
        hf_model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    return folder
