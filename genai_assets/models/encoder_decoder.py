"""The full encoder–decoder Transformer of "Attention Is All You Need" (Vaswani et al. 2017), §3, Figure 1.

    source ids (B, S) → embedding·√C + positions → N × EncoderLayer → memory (B, S, C)
    target ids (B, T) → embedding·√C + positions → N × DecoderLayer(masked self-attention,
                        cross-attention over memory, feed-forward) → linear → logits (B, T, V)

Source and target share one vocabulary (one tokenizer), so, as in §3.4, one embedding matrix
serves the encoder input, the decoder input and the output projection (``tie_embeddings``).
Embeddings are multiplied by √C (§3.4) so they are not drowned by the fixed sinusoidal positions.
Pre-norm is the default (``norm_first=True``; the paper is post-norm): it trains without a long
warm-up, which matters for the short CPU runs here. With pre-norm both stacks end in a LayerNorm.

Interface shared with the other scratch models: ``forward(idx, targets=None) -> (logits, loss)``,
where ``idx`` is the source and ``targets`` the target sequence; the decoder input is ``targets``
shifted right behind ``bos_id`` (teacher forcing). ``generate(idx, max_new_tokens, ...)`` returns
only the generated target tokens (B, n) — not the source followed by them as a decoder-only
model's ``generate`` does.

Shape letters: B batch, S source length, T target length, C channels (d_model), V vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from genai_assets.models.encoder_decoder_config import EncoderDecoderConfig
from genai_assets.models.layers import DecoderLayer, EncoderLayer, KVCache, positional_encoding
from genai_assets.models.loss import IGNORE_INDEX, token_cross_entropy
from genai_assets.models.sampling import GeneratesTokens


class EncoderDecoderTransformer(GeneratesTokens, nn.Module):
    """Sequence-to-sequence Transformer (§3): encode the source once, decode the target token by token."""

    def __init__(self, config: EncoderDecoderConfig):
        super().__init__()
        self.config = config
        width, d_ff = config.d_model, config.ffn_multiplier * config.d_model
        layer_kwargs = dict(
            dropout=config.dropout,
            norm_first=config.norm_first,
            activation=config.activation,
            use_sdpa=config.use_sdpa,
        )
        self.embedding = nn.Embedding(config.vocab_size, width)
        self.target_embedding = (
            self.embedding if config.tie_embeddings else nn.Embedding(config.vocab_size, width)
        )
        self.source_positions = positional_encoding(config.positional_encoding, width, config.max_source_len)
        self.target_positions = positional_encoding(config.positional_encoding, width, config.max_target_len)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(width, config.n_head, d_ff, **layer_kwargs) for _ in range(config.n_encoder_layers)
        )
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(width, config.n_head, d_ff, cross_attention=True, **layer_kwargs)
            for _ in range(config.n_decoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(width) if config.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(width) if config.norm_first else nn.Identity()
        self.lm_head = nn.Linear(width, config.vocab_size, bias=False)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)  # as in the reference tensor2tensor/annotated code
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                # N(0, 1/C): after the ×√C of §3.4 the embedding entries have unit variance.
                nn.init.normal_(module.weight, mean=0.0, std=width**-0.5)
        if config.tie_embeddings:
            self.lm_head.weight = self.embedding.weight

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(
        self, ids: torch.Tensor, table: nn.Embedding, positions: nn.Module, start: int = 0
    ) -> torch.Tensor:
        steps = torch.arange(start, start + ids.size(1), device=ids.device)  # (T,)
        return self.dropout(table(ids) * math.sqrt(self.config.d_model) + positions(steps))  # (B, T, C)

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``source`` (B, S) → memory (B, S, C) and its padding mask (B, S), True on ``pad_id``."""
        if source.size(1) > self.config.max_source_len:
            raise ValueError(
                f"Source of {source.size(1)} tokens exceeds max_source_len={self.config.max_source_len}."
            )
        padding_mask = source == self.config.pad_id  # (B, S)
        x = self._embed(source, self.embedding, self.source_positions)
        for layer in self.encoder_layers:
            x = layer(x, padding_mask=padding_mask)
        return self.encoder_norm(x), padding_mask

    def decode(
        self,
        decoder_input: torch.Tensor,
        memory: torch.Tensor,
        memory_padding_mask: torch.Tensor,
        cache: list[tuple[KVCache, KVCache]] | None = None,
    ) -> torch.Tensor:
        """``decoder_input`` (B, T) → logits (B, T, V). With ``cache`` it continues the cached tokens."""
        start = len(cache[0][0]) if cache is not None else 0
        if start + decoder_input.size(1) > self.config.max_target_len:
            raise ValueError(
                f"Decoder input of {start + decoder_input.size(1)} tokens exceeds "
                f"max_target_len={self.config.max_target_len}."
            )
        x = self._embed(decoder_input, self.target_embedding, self.target_positions, start)
        for index, layer in enumerate(self.decoder_layers):
            x = layer(
                x,
                memory,
                memory_padding_mask=memory_padding_mask,
                cache=None if cache is None else cache[index],
            )
        return self.lm_head(self.decoder_norm(x))  # (B, T, V)

    def shift_right(self, targets: torch.Tensor) -> torch.Tensor:
        """Decoder input for teacher forcing: ``[bos] + targets[:-1]``, ignored (-100) positions as pad."""
        start = torch.full_like(targets[:, :1], self.config.bos_id)  # (B, 1)
        shifted = torch.cat([start, targets[:, :-1]], dim=1)  # (B, T)
        return shifted.masked_fill(shifted == IGNORE_INDEX, self.config.pad_id)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Source ``idx`` (B, S), ``targets`` (B, T) (-100 = padding) → logits (B, T, V), mean loss.

        Without ``targets`` the decoder input is the start token alone: logits (B, 1, V) of the
        first target token.
        """
        memory, memory_padding_mask = self.encode(idx)
        decoder_input = (
            self.shift_right(targets)
            if targets is not None
            else torch.full_like(idx[:, :1], self.config.bos_id)
        )
        logits = self.decode(decoder_input, memory, memory_padding_mask)
        loss = None if targets is None else token_cross_entropy(logits, targets)
        return logits, loss

    def start_generation(self, idx: torch.Tensor, use_cache: bool) -> tuple[Callable, torch.Tensor]:
        """Encode the source ``idx`` (B, S) once; decoding extends the start token (B, 1).

        With ``use_cache`` the decoder feeds one token per step, reusing its self-attention
        keys/values and the cross-attention keys/values of the memory.
        """
        memory, memory_padding_mask = self.encode(idx)
        cache = [(KVCache(), KVCache(static=True)) for _ in self.decoder_layers] if use_cache else None

        def next_logits(decoded: torch.Tensor) -> torch.Tensor:
            step_input = decoded[:, -1:] if use_cache else decoded
            return self.decode(step_input, memory, memory_padding_mask, cache)[:, -1, :]  # (B, V)

        return next_logits, torch.full_like(idx[:, :1], self.config.bos_id)

    def generate(
        self, idx: torch.Tensor, max_new_tokens: int, *sampling, eos_token_id=-1, **options
    ) -> torch.Tensor:
        """Decode a target for each source row of ``idx`` (B, S) → generated ids (B, n), n <= max_new_tokens.

        Stops when every row has produced ``eos_token_id`` (default: the config's ``eos_id``; None =
        never); finished rows are padded with it. At most ``max_target_len - 1`` tokens are
        generated. ``sampling`` (temperature, top_k, top_p) and ``options`` are
        :meth:`GeneratesTokens.generate`'s; repetition controls see the decoded target.
        """
        eos = self.config.eos_id if eos_token_id == -1 else eos_token_id
        limit = min(max_new_tokens, self.config.max_target_len - 1)
        return super().generate(idx, limit, *sampling, eos_token_id=eos, **options)[:, 1:]
