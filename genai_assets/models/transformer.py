"""A decoder-only Transformer language model (GPT), written from scratch in PyTorch.

The architecture is the decoder of "Attention Is All You Need" (Vaswani et al. 2017, §3) without
the cross-attention, as in GPT / GPT-2 (Radford et al. 2018, 2019):

    token ids (B, T)
      → token embedding (B, T, C) + positional encoding (T, C)         §3.4, §3.5
      → n_layer × DecoderLayer(masked self-attention, feed-forward)    §3.1–3.3 (layers.py)
      → final LayerNorm (pre-norm only: the residual stream is never normalised otherwise)
      → linear head to vocabulary logits (B, T, V), weights tied to the token embedding (§3.4)

Departures from the paper: pre-norm by default (``norm_first``; the paper is post-norm), learned
positions by default (``positional_encoding``; the paper uses sinusoids), GELU instead of ReLU
(``activation``); and, as GPT-2, no dropout inside the feed-forward (only on its output), no √C
scaling of the embeddings, and GPT-2's initialisation (N(0, 0.02), residual output projections
scaled by 1/√(2·n_layer)).

Against GPT-2 itself the only default that differs is the exact GELU (GPT-2: the tanh
approximation, ``activation="gelu_tanh"``); with that switch the model computes exactly what
``GPT2LMHeadModel`` does, which ``GPT.from_hf_gpt2`` (``hf_gpt2.py``) and its parity test show.

Shape letters: B batch, T time, C channels (n_embd), nh heads, hs head size, V vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from genai_assets.models.layers import (
    ACTIVATIONS,
    DecoderLayer,
    KVCache,
    MultiHeadAttention,
    positional_encoding,
)
from genai_assets.models.loss import token_cross_entropy
from genai_assets.models.sampling import GeneratesTokens

__all__ = ["GPT", "GPTConfig", "GPT_PRESETS", "MultiHeadAttention"]


@dataclass
class GPTConfig:
    """Hyperparameters of :class:`GPT`. Defaults are the ``cpu`` demo size."""

    vocab_size: int = 4096  # number of token ids (from the tokenizer)
    block_size: int = 128  # longest context in tokens; learned positions exist for 0..block_size-1
    n_layer: int = 4  # number of decoder layers (N in the paper)
    n_head: int = 4  # attention heads per layer (h); n_embd must be divisible by it
    n_embd: int = 128  # width of the residual stream (d_model = C)
    ffn_multiplier: int = 4  # feed-forward hidden width = ffn_multiplier * n_embd (d_ff = 4·d_model, §3.3)
    dropout: float = 0.0  # on embeddings, attention weights and residual branches (0: short runs, < 1 epoch)
    bias: bool = True  # biases in linear layers and LayerNorms (GPT-2: True)
    norm_first: bool = True  # pre-norm (GPT-2) or post-norm (the paper)
    positional_encoding: str = "learned"  # "learned" (GPT-2) or "sinusoidal" (§3.5)
    activation: str = "gelu"  # feed-forward non-linearity: "gelu", "gelu_tanh" (GPT-2) or "relu" (paper)
    tie_weights: bool = True  # output head shares the token embedding matrix (§3.4)
    use_sdpa: bool = True  # fused F.scaled_dot_product_attention; False = the explicit teaching path

    def __post_init__(self) -> None:
        problems = []
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "ffn_multiplier"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_head >= 1 and self.n_embd % self.n_head:
            problems.append(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.positional_encoding not in ("learned", "sinusoidal"):
            problems.append(
                f"positional_encoding must be 'learned' or 'sinusoidal', got {self.positional_encoding!r}"
            )
        if self.positional_encoding == "sinusoidal" and self.n_embd % 2:
            problems.append("sinusoidal positional encodings need an even n_embd")
        if self.activation not in ACTIVATIONS:
            problems.append(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if problems:
            raise ValueError("Invalid GPTConfig: " + "; ".join(problems) + ".")

    @classmethod
    def from_preset(cls, name: str, **overrides) -> GPTConfig:
        """``tiny`` (tests, seconds), ``cpu`` (the demo, minutes on 2 cores), ``gpu`` (a real run)."""
        if name not in GPT_PRESETS:
            raise ValueError(f"Unknown GPT preset {name!r}; choose one of {', '.join(GPT_PRESETS)}.")
        return cls(**{**GPT_PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        return asdict(self)


GPT_PRESETS: dict[str, dict] = {
    "tiny": dict(block_size=32, n_layer=2, n_head=2, n_embd=64, dropout=0.0),
    "cpu": dict(block_size=128, n_layer=4, n_head=4, n_embd=128, dropout=0.0),
    "gpu": dict(block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
}


class GPT(GeneratesTokens, nn.Module):
    """Decoder-only Transformer LM: ``forward(idx, targets) -> (logits, loss)`` and ``generate``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_encoding = positional_encoding(
            config.positional_encoding, config.n_embd, config.block_size
        )
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            DecoderLayer(
                config.n_embd,
                config.n_head,
                config.ffn_multiplier * config.n_embd,
                dropout=config.dropout,
                norm_first=config.norm_first,
                activation=config.activation,
                bias=config.bias,
                use_sdpa=config.use_sdpa,
                cross_attention=False,
                ffn_dropout=0.0,  # GPT-2: dropout after the MLP (residual dropout), none inside it
            )
            for _ in range(config.n_layer)
        )
        # Pre-norm leaves the residual stream un-normalised, so one last LayerNorm before the head.
        self.final_norm = (
            nn.LayerNorm(config.n_embd, bias=config.bias) if config.norm_first else nn.Identity()
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.token_embedding.weight  # one (V, C) matrix for input and output
        self.apply(self._init_weights)
        for name, parameter in self.named_parameters():
            # GPT-2: each residual branch adds to the stream, so scale its output projection by
            # 1/√(2·n_layer) to keep the stream's variance from growing with depth.
            if name.endswith("out_proj.weight") or name.endswith("linear2.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @classmethod
    def from_hf_gpt2(cls, model_or_folder, use_sdpa: bool = True) -> GPT:
        """This model with a ``GPT2LMHeadModel``'s weights (object, folder or Hub id); see ``hf_gpt2``."""
        from genai_assets.models.hf_gpt2 import gpt_from_hf_gpt2

        return gpt_from_hf_gpt2(model_or_folder, use_sdpa=use_sdpa)

    def num_parameters(self, exclude_positions: bool = False) -> int:
        """Distinct parameters (a tied matrix counts once); optionally without the position table."""
        total = sum(p.numel() for p in self.parameters())
        if exclude_positions:
            total -= sum(p.numel() for p in self.position_encoding.parameters())
        return total

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: list[KVCache] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``idx`` (B, T) token ids → logits (B, T, V) and, with ``targets`` (B, T), the mean loss.

        Targets equal to -100 are ignored. With ``cache`` (one :class:`KVCache` per layer) ``idx``
        continues the cached tokens: positions start after them and keys/values are appended.
        """
        batch, time = idx.shape
        start = len(cache[0]) if cache is not None else 0
        if start + time > self.config.block_size:
            raise ValueError(
                f"Sequence of {start + time} tokens exceeds block_size={self.config.block_size}; crop the context."
            )
        positions = torch.arange(start, start + time, device=idx.device)  # (T,)
        x = self.dropout(self.token_embedding(idx) + self.position_encoding(positions))  # (B, T, C)
        for index, layer in enumerate(self.layers):
            x = layer(x, cache=None if cache is None else (cache[index], None))
        logits = self.lm_head(self.final_norm(x))  # (B, T, V)
        loss = None if targets is None else token_cross_entropy(logits, targets)  # targets -100 skipped
        return logits, loss

    def new_cache(self) -> list[KVCache]:
        return [KVCache() for _ in self.layers]

    def next_token_logits(self, use_cache: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
        """Next-token logits for ``generate`` (:class:`~genai_assets.models.sampling.GeneratesTokens`).

        With ``use_cache`` each step feeds only the newest token and reuses the cached keys/values
        (O(T) per step instead of O(T²)). The uncached path re-runs the last ``block_size`` tokens
        every step (nanoGPT). The two give identical logits while the sequence fits in
        ``block_size`` (tested); past it, the cached path rebuilds its cache from the last
        ``block_size // 2`` tokens whenever it fills up, so it then conditions on between half and
        a whole block instead of always a whole block.
        """
        block = self.config.block_size
        cache: list[KVCache] | None = None

        def next_logits(sequence: torch.Tensor) -> torch.Tensor:
            nonlocal cache
            if not use_cache:
                logits, _ = self(sequence[:, -block:])  # (B, T', V)
            elif cache is None or len(cache[0]) >= block:
                first_fill = cache is None
                cache = self.new_cache()  # (re)fill: the prompt, or the recent half block when full
                window = sequence[:, -block:] if first_fill else sequence[:, -(block // 2) :]
                logits, _ = self(window, cache=cache)
            else:
                logits, _ = self(sequence[:, -1:], cache=cache)  # (B, 1, V): only the newest token
            return logits[:, -1, :]

        return next_logits
