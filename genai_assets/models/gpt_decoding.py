"""Fast cached decoding for :class:`~genai_assets.models.transformer.GPT`, and its attention maps.

At batch 1 a 4-layer, 256-wide GPT does well under a millisecond of arithmetic per token, so
the time goes to per-operation overhead: ~60 ``nn.Module`` calls per token, a ``torch.cat`` per
layer to grow each KV cache, a fresh ``arange`` for the positions. :class:`GPTDecoder` runs the
same computation as ``GPT.forward(idx, cache=...)`` (tested: equal logits) as plain tensor
operations over the model's own weights (no copies), with keys/values written into buffers
allocated once per generation (B, nh, block_size, hs). It follows the model's switches
(pre/post-norm, learned/sinusoidal positions, activation, biases); attention always uses the
fused ``scaled_dot_product_attention`` (the explicit teaching path computes the same values).

:func:`attention_weights` replays a forward pass the same way and returns every head's
attention matrix, for the playground's heatmaps (the model itself never materialises them on
its fused path).

Shape letters: B batch, T time, C channels, nh heads, hs head size, L layers, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class _Norm:
    """A LayerNorm's settings and tensors, read once: ``nn.Module`` attribute lookups are slow per step."""

    shape: tuple[int, ...]
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    eps: float

    @classmethod
    def of(cls, norm: nn.LayerNorm) -> _Norm:
        return cls(tuple(norm.normalized_shape), norm.weight, norm.bias, norm.eps)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.shape, self.weight, self.bias, self.eps)


@dataclass(frozen=True)
class _Linear:
    """A linear layer's tensors, ``x (N, in) → x Wᵀ + b (N, out)``.

    One row of fp32 on the CPU (a cached decoding step) is a matrix–vector product, and there
    NumPy's BLAS (OpenBLAS) was 2–3× faster than the kernel behind ``F.linear`` on our 2-core AMD
    machine (one thread each, a 768×256 weight: 12 vs 25 µs; the 4096×256 output head: 65 vs
    110 µs), so that row goes through ``np.dot`` on NumPy views of the same memory (no copies; the
    sums differ from torch's only in rounding, ~1e-6). ``benchmarks/bench_models.py`` times the
    result: generation, and these products alone (its ceiling row). Anything else (a prompt of
    several rows, autograd, another dtype or device) is ``F.linear``.
    """

    weight: torch.Tensor  # (out, in)
    bias: torch.Tensor | None  # (out,)
    host_weight: np.ndarray | None  # the same memory as weight, or None: not an fp32 CPU tensor
    host_bias: np.ndarray | None

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor | None) -> _Linear:
        on_host = weight.device.type == "cpu" and weight.dtype == torch.float32 and weight.is_contiguous()
        host_weight = weight.detach().numpy() if on_host else None
        host_bias = bias.detach().numpy() if on_host and bias is not None else None
        return cls(weight, bias, host_weight, host_bias)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.host_weight is None or x.size(0) != 1 or x.requires_grad or x.dtype != torch.float32:
            return F.linear(x, self.weight, self.bias)
        row = np.dot(self.host_weight, x.numpy()[0])  # (out,)
        if self.host_bias is not None:
            np.add(row, self.host_bias, out=row)
        return torch.from_numpy(row)[None]  # (1, out)


@dataclass(frozen=True)
class _LayerWeights:
    """One decoder layer's parameters (the module's own tensors, not copies)."""

    norm1: _Norm
    qkv: _Linear  # (3C, C): W^Q, W^K, W^V stacked
    out: _Linear  # (C, C): W^O
    norm3: _Norm
    ff1: _Linear  # (d_ff, C)
    ff2: _Linear  # (C, d_ff)


def _activation_function(module: nn.Module):
    if isinstance(module, nn.GELU):
        approximate = module.approximate
        return lambda tensor: F.gelu(tensor, approximate=approximate)
    if isinstance(module, nn.ReLU):
        return F.relu
    return module  # anything else: call the module itself


class GPTDecoder:
    """Incremental decoding state of one generation: ``decoder(tokens (B, T)) -> logits (B, V)``.

    Each call feeds the tokens after those already cached and returns the logits of the next
    token. ``reset()`` empties the cache (the caller refills it, e.g. from a window of the text).
    """

    def __init__(self, model: nn.Module, batch: int):
        config = model.config
        self.model, self.config = model, config
        self.n_head, self.head_size = config.n_head, config.n_embd // config.n_head
        self.norm_first = config.norm_first
        self.layers = [
            _LayerWeights(
                _Norm.of(layer.norm1),
                _Linear.of(layer.self_attention.in_proj.weight, layer.self_attention.in_proj.bias),
                _Linear.of(layer.self_attention.out_proj.weight, layer.self_attention.out_proj.bias),
                _Norm.of(layer.norm3),
                _Linear.of(layer.feed_forward.linear1.weight, layer.feed_forward.linear1.bias),
                _Linear.of(layer.feed_forward.linear2.weight, layer.feed_forward.linear2.bias),
            )
            for layer in model.layers
        ]
        self.activation = _activation_function(model.layers[0].feed_forward.activation)
        encoding = model.position_encoding
        self.position_table = encoding.embedding.weight if hasattr(encoding, "embedding") else encoding.table
        weight = self.embedding_weight = model.token_embedding.weight  # (V, C)
        self.lm_head = _Linear.of(model.lm_head.weight, None)  # (V, C)
        self.final_norm = _Norm.of(model.final_norm) if self.norm_first else None
        shape = (batch, self.n_head, config.block_size, self.head_size)
        # One (B, nh, block, hs) buffer per layer, filled up to self.length (a list: no indexing op per step).
        self.keys = [weight.new_empty(shape) for _ in self.layers]
        self.values = [weight.new_empty(shape) for _ in self.layers]
        self.length = 0

    def __len__(self) -> int:
        return self.length

    def reset(self) -> None:
        self.length = 0

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` (B, T) after the cached ones → next-token logits (B, V)."""
        start, count = self.length, tokens.size(1)
        if start + count > self.config.block_size:
            raise ValueError(f"{start + count} tokens exceed block_size={self.config.block_size}.")
        if count > 1 and start > 0:
            raise ValueError("Several new tokens at once only into an empty cache (prompt or refill).")
        x = self._embed(tokens, start)  # (B·T, C)
        for index, layer in enumerate(self.layers):
            x = self._residual(x, layer.norm1, lambda h, i=index, w=layer: self._attend(h, i, w, start))
            x = self._residual(x, layer.norm3, lambda h, w=layer: self._feed_forward(h, w))
        self.length = start + count
        last = x.view(tokens.size(0), count, -1)[:, -1, :]  # (B, C): only the next token's logits are needed
        if self.norm_first:
            last = self.final_norm(last)
        return self.lm_head(last)  # (B, V)

    def _embed(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """Token plus position embeddings of ``tokens`` (B, T) → (B·T, C).

        Activations are kept as one row per token, (B·T, C): every operation but attention works
        row by row, and a 2-D input spares ``F.linear`` the reshapes around its matmul (same values).
        """
        count = tokens.size(1)
        x = F.embedding(tokens, self.embedding_weight) + self.position_table[start : start + count]
        return x.view(-1, x.size(-1))

    def _residual(self, x: torch.Tensor, norm: _Norm, sublayer) -> torch.Tensor:
        if self.norm_first:
            return x + sublayer(norm(x))  # pre-norm (GPT-2)
        return norm(x + sublayer(x))  # post-norm (the paper)

    def _attend(self, h: torch.Tensor, index: int, layer: _LayerWeights, start: int) -> torch.Tensor:
        batch, channels = self.keys[index].size(0), h.size(-1)
        count = h.size(0) // batch
        qkv = layer.qkv(h)  # (B·T, 3C)
        query, key, value = qkv.view(batch, count, 3, self.n_head, self.head_size).permute(
            2, 0, 3, 1, 4
        )  # 3 × (B, nh, T, hs)
        end = start + count
        keys, values = self.keys[index], self.values[index]  # (B, nh, block, hs)
        keys[:, :, start:end] = key
        values[:, :, start:end] = value
        y = F.scaled_dot_product_attention(
            query, keys[:, :, :end], values[:, :, :end], is_causal=count > 1
        )  # (B, nh, T, hs); one query sees every cached key, several (from 0) are causal
        y = y.transpose(1, 2).reshape(batch * count, channels)  # (B·T, C)
        return layer.out(y)

    def _feed_forward(self, h: torch.Tensor, layer: _LayerWeights) -> torch.Tensor:
        inner = self.activation(layer.ff1(h))  # (B·T, d_ff)
        return layer.ff2(inner)


def cached_next_logits(model: nn.Module):
    """``sequence (B, T) -> next-token logits (B, V)`` for ``generate``, through a :class:`GPTDecoder`.

    The first call caches the prompt's last ``block_size`` tokens; later calls feed only the
    newest token. When the cache is full it is rebuilt from the last ``block_size // 2`` tokens,
    as ``GPT.next_token_logits`` documents.
    """
    block = model.config.block_size
    decoder: GPTDecoder | None = None

    def next_logits(sequence: torch.Tensor) -> torch.Tensor:
        nonlocal decoder
        if decoder is None:
            decoder = GPTDecoder(model, sequence.size(0))
            return decoder(sequence[:, -block:])
        if len(decoder) >= block:
            decoder.reset()
            return decoder(sequence[:, -(block // 2) :])
        return decoder(sequence[:, -1:])

    return next_logits


@torch.no_grad()
def attention_weights(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """Every head's causal self-attention weights over ``idx`` (1, T) → (L, nh, T, T), rows sum to 1.

    Replays ``GPT.forward`` layer by layer with the explicit softmax(Q Kᵀ / √hs) of §3.2.1 so the
    weights can be kept (the fused kernel never returns them). Only the last ``block_size`` tokens.
    """
    decoder = GPTDecoder(model, idx.size(0))
    tokens = idx[:, -model.config.block_size :]
    count = tokens.size(1)
    maps = []
    x = decoder._embed(tokens, 0)  # (T, C)
    causal = torch.ones(count, count, dtype=torch.bool, device=idx.device).tril()  # (T, T)
    for index, layer in enumerate(decoder.layers):
        h = layer.norm1(x) if decoder.norm_first else x
        qkv = F.linear(h, layer.qkv.weight, layer.qkv.bias)  # (T, 3C)
        qkv = qkv.view(1, count, 3, decoder.n_head, decoder.head_size).permute(
            2, 0, 3, 1, 4
        )  # (3, 1, nh, T, hs)
        scores = qkv[0] @ qkv[1].transpose(-2, -1) / math.sqrt(decoder.head_size)  # (1, nh, T, T)
        weights = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
        maps.append(weights[0])
        decoder.length = 0
        x = decoder._residual(x, layer.norm1, lambda h, i=index, w=layer: decoder._attend(h, i, w, 0))
        x = decoder._residual(x, layer.norm3, lambda h, w=layer: decoder._feed_forward(h, w))
    return torch.stack(maps)  # (L, nh, T, T)
