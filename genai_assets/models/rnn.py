"""Recurrent language models — Elman RNN, LSTM and GRU — behind the same interface as :class:`GPT`.

    token ids (B, T) → embedding (B, T, E) → n_layer recurrent layers (B, T, H)
      → [projection H → E when the head is tied] → linear head → logits (B, T, V)

* RNN (Elman 1990): h_t = tanh(W x_t + U h_{t-1} + b). Its gradient through time is a product of
  T Jacobians, so it explodes or vanishes over long spans (Bengio et al. 1994; Pascanu et al.
  2013). The explosion is cured by clipping the global gradient norm — the shared training loop's
  ``grad_clip`` — the vanishing is what gating addresses:
* LSTM (Hochreiter & Schmidhuber 1997): a cell state updated additively through forget/input
  gates, so gradients can flow across many steps.
* GRU (Cho et al. 2014): a lighter gated unit (update/reset gates, no separate cell state).

The recurrent layers are PyTorch's (``nn.RNN``/``nn.LSTM``/``nn.GRU``); the from-scratch part of
this project is the Transformer. Training sees windows of a fixed number of tokens from a fresh
zero state (truncated back-propagation through time); generation carries the hidden state forward,
which is the recurrent equivalent of a KV cache and has no length limit (hence no ``block_size``).

Shape letters: B batch, T time, E embedding width, H hidden width, L layers, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from genai_assets.models.loss import token_cross_entropy
from genai_assets.models.rnn_config import RNNConfig
from genai_assets.models.sampling import GeneratesTokens

_RECURRENT_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # (L, B, H), or (h, c) for the LSTM


class RNNLanguageModel(GeneratesTokens, nn.Module):
    """Next-token model over a recurrent core: ``forward(idx, targets) -> (logits, loss)`` and ``generate``."""

    def __init__(self, config: RNNConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)
        recurrent_kwargs = dict(
            input_size=config.n_embd,
            hidden_size=config.hidden_size,
            num_layers=config.n_layer,
            batch_first=True,  # (B, T, ·) like the rest of the project
            dropout=config.dropout if config.n_layer > 1 else 0.0,  # between layers only
        )
        if config.kind == "rnn":
            recurrent_kwargs["nonlinearity"] = "tanh"
        self.recurrent = _RECURRENT_LAYERS[config.kind](**recurrent_kwargs)
        # A tied head needs the state in the embedding's width: project H → E first.
        self.projection = (
            nn.Linear(config.hidden_size, config.n_embd)
            if config.tie_weights and config.hidden_size != config.n_embd
            else nn.Identity()
        )
        head_width = config.n_embd if config.tie_weights else config.hidden_size
        self.lm_head = nn.Linear(head_width, config.vocab_size, bias=True)
        # N(0, 0.1): larger than GPT's 0.02 — with tiny inputs the cell's gates start near-constant and
        # the demo-length runs learned measurably slower (val loss 6.14 vs 5.93 after 100 LSTM steps).
        nn.init.normal_(self.token_embedding.weight, mean=0.0, std=0.1)
        if config.tie_weights:
            self.lm_head.weight = self.token_embedding.weight
        else:
            nn.init.normal_(self.lm_head.weight, mean=0.0, std=0.02)
        nn.init.zeros_(self.lm_head.bias)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def step(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Run ``idx`` (B, T) from ``state`` (None = zeros) → logits (B, T, V) and the final state."""
        x = self.dropout(self.token_embedding(idx))  # (B, T, E)
        output, state = self.recurrent(x, state)  # (B, T, H); state (L, B, H) or ((L, B, H), (L, B, H))
        logits = self.lm_head(self.projection(self.dropout(output)))  # (B, T, V)
        return logits, state

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``idx`` (B, T) → logits (B, T, V) and, with ``targets`` (B, T; -100 ignored), the mean loss."""
        logits, _ = self.step(idx)
        loss = None if targets is None else token_cross_entropy(logits, targets)
        return logits, loss

    def next_token_logits(self, use_cache: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
        """Next-token logits for ``generate``: the prompt is read once, then each step feeds only the
        newest token and the carried state (``use_cache`` is accepted for interface parity: the state
        *is* the cache)."""
        state = None

        def next_logits(sequence: torch.Tensor) -> torch.Tensor:
            nonlocal state
            logits, state = self.step(sequence if state is None else sequence[:, -1:], state)
            return logits[:, -1, :]

        return next_logits
