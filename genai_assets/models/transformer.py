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
``GPT2LMHeadModel`` does, which ``hf_gpt2.gpt_from_hf_gpt2`` (a converter that imports this module,
never the reverse) and its parity test show.

Shape letters: B batch, T time, C channels (n_embd), nh heads, hs head size, V vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from genai_assets.models.gpt_config import GPT_PRESETS, GPTConfig
from genai_assets.models.gpt_decoding import cached_next_logits
from genai_assets.models.layers import (
    DecoderLayer,
    KVCache,
    MultiHeadAttention,
    positional_encoding,
)
from genai_assets.models.loss import token_cross_entropy
from genai_assets.models.sampling import GeneratesTokens

__all__ = ["GPT", "GPTConfig", "GPT_PRESETS", "MultiHeadAttention"]


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
        every step (nanoGPT). The cached path runs through :class:`~genai_assets.models.gpt_decoding.GPTDecoder`
        (this model's weights as plain tensor operations, KV buffers allocated once), which computes
        what ``forward(idx, cache=...)`` does. The two give identical logits while the sequence fits in
        ``block_size`` (tested); past it, the cached path rebuilds its cache from the last
        ``block_size // 2`` tokens whenever it fills up, so it then conditions on between half and
        a whole block instead of always a whole block.
        """
        if use_cache:
            return cached_next_logits(self)  # same logits, a fraction of the per-token overhead
        block = self.config.block_size

        def next_logits(sequence: torch.Tensor) -> torch.Tensor:
            logits, _ = self(sequence[:, -block:])  # (B, T', V)
            return logits[:, -1, :]

        return next_logits
