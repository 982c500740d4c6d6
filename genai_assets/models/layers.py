"""Transformer building blocks, after "Attention Is All You Need" (Vaswani et al. 2017), §3.

Everything the decoder-only :class:`~genai_assets.models.transformer.GPT` and the
:class:`~genai_assets.models.encoder_decoder.EncoderDecoderTransformer` are made of:

* :func:`scaled_dot_product_attention` — Eq. (1), written out for teaching; the layers can use
  ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels) instead (``use_sdpa``);
  the tests check both give the same result.
* :class:`MultiHeadAttention` — §3.2.2, self-attention or cross-attention, with an optional
  key/value cache for incremental decoding.
* :class:`SinusoidalPositionalEncoding` (§3.5) and :class:`LearnedPositionalEncoding` (GPT-2).
* :class:`PositionwiseFeedForward` — §3.3, Eq. (2).
* :class:`EncoderLayer` and :class:`DecoderLayer` — §3.1: sub-layers wrapped in a residual
  connection and layer normalisation. The paper normalises *after* the residual sum (post-norm,
  ``LayerNorm(x + Sublayer(x))``); GPT-2 and most modern models normalise the sub-layer input
  (pre-norm, ``x + Sublayer(LayerNorm(x))``), which trains stably without a long warm-up.
  ``norm_first`` chooses, as in ``torch.nn.TransformerEncoderLayer``; both are tested against it.

Shape letters: B batch, T time (sequence length; Tq queries, Tk keys), C channels (d_model),
nh number of heads, hs head size (C // nh).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh")}


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    allowed: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Attention(Q, K, V) = softmax(Q Kᵀ / √hs) V — Eq. (1), the explicit version.

    ``query`` (B, nh, Tq, hs), ``key``/``value`` (B, nh, Tk, hs); ``allowed`` is a boolean mask
    broadcastable to (B, nh, Tq, Tk), True where a query may look at a key (the same convention as
    the boolean ``attn_mask`` of ``F.scaled_dot_product_attention``). Returns (B, nh, Tq, hs).
    Dividing by √hs keeps the dot products' variance near 1 so the softmax does not saturate (§3.2.1).
    """
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))  # (B, nh, Tq, Tk)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # each query's weights over the keys sum to 1
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value  # (B, nh, Tq, hs)


def causal_mask(n_queries: int, n_keys: int, device=None) -> torch.Tensor:
    """(Tq, Tk) boolean mask, True where key j is not in query i's future.

    The queries are the *last* Tq positions of the Tk keys (decoding with a cache of Tk - Tq past
    tokens), so query i sits at absolute position Tk - Tq + i and may see keys 0..Tk - Tq + i.
    """
    return torch.ones(n_queries, n_keys, dtype=torch.bool, device=device).tril(diagonal=n_keys - n_queries)


class KVCache:
    """Keys and values of one attention layer for the tokens decoded so far, each (B, nh, T_past, hs).

    Self-attention appends the new token's key/value at every step, so a step costs O(T) instead of
    recomputing all T×T scores. Cross-attention stores the encoder memory's keys/values once
    (``static=True``) and reuses them at every step.
    """

    def __init__(self, static: bool = False):
        self.static = static
        self.key: torch.Tensor | None = None
        self.value: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.key is None else self.key.size(2)

    def append(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.key is not None:
            key = torch.cat([self.key, key], dim=2)  # (B, nh, T_past + T, hs)
            value = torch.cat([self.value, value], dim=2)
        self.key, self.value = key, value
        return key, value


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1..head_h) W^O, head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V) (§3.2.2).

    The h per-head projections are one (C → 3C) linear layer, laid out like
    ``torch.nn.MultiheadAttention.in_proj_weight`` (rows: W^Q, then W^K, then W^V), so weights copy
    across directly. Self-attention projects ``x`` with one matmul; cross-attention projects the
    queries from ``x`` and keys/values from ``memory`` with the two slices of the same weight.
    """

    def __init__(
        self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True, use_sdpa: bool = True
    ):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}.")
        self.d_model, self.n_heads, self.head_size = d_model, n_heads, d_model // n_heads
        self.dropout = dropout  # on the attention weights, as in the paper's reference code
        self.use_sdpa = use_sdpa  # True: fused PyTorch kernel; False: the explicit Eq. (1) above
        self.in_proj = nn.Linear(d_model, 3 * d_model, bias=bias)  # W^Q, W^K, W^V stacked
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)  # W^O

    def _split_heads(self, tensor: torch.Tensor) -> torch.Tensor:
        batch, time, _ = tensor.shape
        return tensor.view(batch, time, self.n_heads, self.head_size).transpose(1, 2)  # (B, nh, T, hs)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        *,
        causal: bool = False,
        key_padding_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """``x`` (B, Tq, C) attends to itself (``memory=None``) or to ``memory`` (B, Tk, C).

        ``causal``: query i sees keys <= i only (with a cache, positions count from the cache's start).
        ``key_padding_mask`` (B, Tk): True on padding keys, which no query may attend to (the
        ``torch.nn.MultiheadAttention`` convention). Returns (B, Tq, C).
        """
        batch, n_queries, channels = x.shape
        weight, bias = self.in_proj.weight, self.in_proj.bias
        if memory is None:
            query, key, value = self.in_proj(x).split(channels, dim=2)  # 3 × (B, Tq, C)
            key, value = self._split_heads(key), self._split_heads(value)  # (B, nh, Tq, hs)
            if cache is not None:
                key, value = cache.append(key, value)  # (B, nh, T_past + Tq, hs)
        elif cache is not None and cache.key is not None:
            query = F.linear(x, weight[:channels], None if bias is None else bias[:channels])
            key, value = cache.key, cache.value  # the encoder memory, projected at the first step
        else:
            query = F.linear(x, weight[:channels], None if bias is None else bias[:channels])  # (B, Tq, C)
            key_value = F.linear(memory, weight[channels:], None if bias is None else bias[channels:])
            key, value = (self._split_heads(part) for part in key_value.split(channels, dim=2))
            if cache is not None:
                cache.append(key, value)
        query = self._split_heads(query)  # (B, nh, Tq, hs)
        n_keys = key.size(2)

        # One boolean mask "query may see key", broadcast to (B, nh, Tq, Tk), or None when all may.
        allowed = None
        use_is_causal = causal and key_padding_mask is None and n_queries == n_keys  # fused causal path
        if causal and not use_is_causal and n_queries > 1:
            allowed = causal_mask(n_queries, n_keys, x.device)  # (Tq, Tk)
        if key_padding_mask is not None:
            keep = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, Tk)
            allowed = keep if allowed is None else keep & allowed
        if causal and use_is_causal and not self.use_sdpa:
            allowed = causal_mask(n_queries, n_keys, x.device)
        dropout_p = self.dropout if self.training else 0.0
        if self.use_sdpa:
            y = F.scaled_dot_product_attention(
                query, key, value, attn_mask=allowed, dropout_p=dropout_p, is_causal=use_is_causal
            )
        else:
            y = scaled_dot_product_attention(query, key, value, allowed, dropout_p)
        y = y.transpose(1, 2).contiguous().view(batch, n_queries, channels)  # (B, Tq, nh, hs) → (B, Tq, C)
        return self.out_proj(y)


class SinusoidalPositionalEncoding(nn.Module):
    """PE(pos, 2i) = sin(pos / 10000^(2i/C)), PE(pos, 2i+1) = cos(pos / 10000^(2i/C)) (§3.5).

    Fixed, not learned: each dimension is a sinusoid of a different wavelength (2π to 10000·2π), so
    relative offsets are linear functions of the encodings. Stored as a non-persistent buffer
    (recomputed at load time, never saved).
    """

    def __init__(self, d_model: int, max_len: int):
        super().__init__()
        if d_model % 2:
            raise ValueError(f"Sinusoidal positional encodings need an even d_model, got {d_model}.")
        position = torch.arange(max_len, dtype=torch.float32)[:, None]  # (T, 1)
        inverse_wavelength = torch.exp(
            torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
        )
        angles = position * inverse_wavelength  # (T, C/2)
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(angles)  # even dimensions
        table[:, 1::2] = torch.cos(angles)  # odd dimensions
        self.register_buffer("table", table, persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """``positions`` (T,) or (B, T) integer → (T, C) or (B, T, C)."""
        return self.table[positions]


class LearnedPositionalEncoding(nn.Module):
    """One trained vector per position (GPT-2; the paper found it about as good as sinusoids, §3.5)."""

    def __init__(self, d_model: int, max_len: int):
        super().__init__()
        self.embedding = nn.Embedding(max_len, d_model)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.embedding(positions)


def positional_encoding(kind: str, d_model: int, max_len: int) -> nn.Module:
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(d_model, max_len)
    if kind == "learned":
        return LearnedPositionalEncoding(d_model, max_len)
    raise ValueError(f"positional encoding must be 'sinusoidal' or 'learned', got {kind!r}.")


class PositionwiseFeedForward(nn.Module):
    """FFN(x) = activation(x W1 + b1) W2 + b2, applied to each position alone (§3.3, Eq. 2).

    The paper uses ReLU and d_ff = 4·C; GPT-2 uses GELU. Dropout sits between the two layers, as
    in ``torch.nn.TransformerEncoderLayer`` (the layers' ``ffn_dropout``; GPT-2 has none there).
    """

    def __init__(
        self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu", bias: bool = True
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}.")
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias)  # (B, T, C) → (B, T, d_ff)
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)  # (B, T, d_ff) → (B, T, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


@dataclass(frozen=True)
class _SublayerFactory:
    """Builds the sub-layers of one encoder or decoder layer, all with the layer's settings."""

    d_model: int
    n_heads: int
    d_ff: int
    dropout: float
    ffn_dropout: float
    activation: str
    bias: bool
    use_sdpa: bool
    norm_eps: float

    def attention(self) -> MultiHeadAttention:
        return MultiHeadAttention(self.d_model, self.n_heads, self.dropout, self.bias, self.use_sdpa)

    def feed_forward(self) -> PositionwiseFeedForward:
        return PositionwiseFeedForward(self.d_model, self.d_ff, self.ffn_dropout, self.activation, self.bias)

    def norm(self) -> nn.LayerNorm:
        return nn.LayerNorm(self.d_model, eps=self.norm_eps, bias=self.bias)


class _ResidualLayer(nn.Module):
    """What the encoder and decoder layers share: their settings, and the residual + layer-norm
    wiring around each sub-layer (§3.1, §5.4). Each subclass registers its own sub-layers in
    ``build``; registration order is the order the weights are initialised in, so it is kept per
    class (the same seed gives the same weights).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = False,
        activation: str = "relu",
        bias: bool = True,
        use_sdpa: bool = True,
        norm_eps: float = 1e-5,
        *,
        ffn_dropout: float | None = None,
        **layer_options: bool,
    ):
        super().__init__()
        self.norm_first = norm_first
        inner = dropout if ffn_dropout is None else ffn_dropout  # None: as torch's layers
        make = _SublayerFactory(d_model, n_heads, d_ff, dropout, inner, activation, bias, use_sdpa, norm_eps)
        self.build(make, **layer_options)  # a subclass's own options (the decoder's cross_attention)
        self.dropout = nn.Dropout(dropout)  # residual dropout (§5.4 "Residual Dropout"), registered last

    def build(self, make: _SublayerFactory, **layer_options: bool) -> None:
        """Register this layer's sub-layers (attention, feed-forward, norms) as attributes, in order."""
        raise NotImplementedError

    def residual(self, x: torch.Tensor, norm: nn.LayerNorm, sublayer) -> torch.Tensor:
        """Pre-norm ``x + Dropout(Sublayer(LayerNorm(x)))`` or post-norm ``LayerNorm(x + Dropout(Sublayer(x)))``."""
        if self.norm_first:
            return x + self.dropout(sublayer(norm(x)))
        return norm(x + self.dropout(sublayer(x)))


class EncoderLayer(_ResidualLayer):
    """Self-attention (every position sees every other) then feed-forward, each residual + norm (§3.1)."""

    def build(self, make: _SublayerFactory) -> None:
        self.self_attention = make.attention()
        self.feed_forward = make.feed_forward()
        self.norm1 = make.norm()
        self.norm2 = make.norm()

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, T, C), ``padding_mask`` (B, T) True on padding → (B, T, C)."""
        x = self.residual(x, self.norm1, lambda h: self.self_attention(h, key_padding_mask=padding_mask))
        return self.residual(x, self.norm2, self.feed_forward)


class DecoderLayer(_ResidualLayer):
    """Masked self-attention, then (with ``cross_attention``) attention over the encoder output, then
    feed-forward — each residual + norm (§3.1). Without cross-attention this is a GPT block.

    Takes :class:`EncoderLayer`'s arguments and the keyword ``cross_attention`` (passed on to ``build``).
    """

    def build(self, make: _SublayerFactory, cross_attention: bool = True) -> None:  # type: ignore[override]
        self.self_attention = make.attention()
        self.norm1 = make.norm()
        self.cross_attention = make.attention() if cross_attention else None
        self.norm2 = make.norm() if cross_attention else None
        self.feed_forward = make.feed_forward()
        self.norm3 = make.norm()

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        *,
        padding_mask: torch.Tensor | None = None,
        memory_padding_mask: torch.Tensor | None = None,
        cache: tuple[KVCache, KVCache | None] | None = None,
    ) -> torch.Tensor:
        """``x`` (B, T, C) decoder states; ``memory`` (B, S, C) encoder output → (B, T, C).

        ``cache``: (self-attention cache, cross-attention cache) for incremental decoding.
        """
        self_cache, cross_cache = cache if cache is not None else (None, None)
        x = self.residual(
            x,
            self.norm1,
            lambda h: self.self_attention(h, causal=True, key_padding_mask=padding_mask, cache=self_cache),
        )
        if self.cross_attention is not None:
            if memory is None:
                raise ValueError("This decoder layer has cross-attention: pass the encoder output as memory.")
            x = self.residual(
                x,
                self.norm2,
                lambda h: self.cross_attention(
                    h, memory, key_padding_mask=memory_padding_mask, cache=cross_cache
                ),
            )
        return self.residual(x, self.norm3, self.feed_forward)
