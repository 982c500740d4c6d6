"""RNN, LSTM and GRU cells written out by hand, and a measurement of back-propagation through time.

The cells take the weights in the layout of ``torch.nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (one layer):
``weight_ih`` (G·H, E), ``weight_hh`` (G·H, H), ``bias_ih`` and ``bias_hh`` (G·H,), with the G gate
blocks stacked in PyTorch's order (LSTM: input, forget, candidate, output; GRU: reset, update, new),
so weights copy across and the parity tests can compare outputs exactly.

:func:`gradient_through_time` shows BPTT rather than telling it: the norm of ∂loss/∂h_{t-k} for a
loss on the last step only, as the distance k grows; plain RNNs lose (or blow up) that gradient
geometrically, gated cells keep it far longer (Bengio et al. 1994; Hochreiter & Schmidhuber 1997).

Shape letters: B batch, T time, E input width, H hidden width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class CellWeights:
    """One layer's weights in PyTorch's layout (see the module docstring)."""

    weight_ih: torch.Tensor  # (G·H, E)
    weight_hh: torch.Tensor  # (G·H, H)
    bias_ih: torch.Tensor  # (G·H,)
    bias_hh: torch.Tensor  # (G·H,)

    @classmethod
    def from_module(cls, module: torch.nn.RNNBase) -> CellWeights:
        """Layer 0 of an ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (built with ``bias=True``)."""
        return cls(module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """σ(x) = 1 / (1 + e^-x): any number → (0, 1), a soft switch; σ'(x) = σ(x)(1 - σ(x)) ≤ 1/4."""
    return 1.0 / (1.0 + torch.exp(-x))


def rnn_cell(x: torch.Tensor, hidden: torch.Tensor, weights: CellWeights) -> torch.Tensor:
    """Elman RNN: h_t = tanh(W_xh x_t + b_xh + W_hh h_{t-1} + b_hh). ``x`` (B, E), ``hidden`` (B, H)."""
    return torch.tanh(
        x @ weights.weight_ih.T + weights.bias_ih + hidden @ weights.weight_hh.T + weights.bias_hh
    )


def lstm_cell(
    x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], weights: CellWeights
) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM: gates from x_t and h_{t-1}; the cell state is updated additively. Returns (h_t, c_t)."""
    hidden, cell = state
    pre = x @ weights.weight_ih.T + weights.bias_ih + hidden @ weights.weight_hh.T + weights.bias_hh
    input_pre, forget_pre, candidate_pre, output_pre = pre.chunk(4, dim=-1)  # 4 × (B, H)
    input_gate = sigmoid(input_pre)  # how much of the candidate to write
    forget_gate = sigmoid(forget_pre)  # how much of the old cell to keep
    candidate = torch.tanh(candidate_pre)  # the new content, in (-1, 1)
    output_gate = sigmoid(output_pre)  # how much of the cell to expose as h_t
    # The additive update is the point: ∂c_t/∂c_{t-1} = forget_gate, no squashing Jacobian in the way.
    cell = forget_gate * cell + input_gate * candidate
    hidden = output_gate * torch.tanh(cell)
    return hidden, cell


def gru_cell(x: torch.Tensor, hidden: torch.Tensor, weights: CellWeights) -> torch.Tensor:
    """GRU (Cho et al. 2014, PyTorch's variant): reset and update gates, no separate cell state."""
    input_part = x @ weights.weight_ih.T + weights.bias_ih  # (B, 3H)
    hidden_part = hidden @ weights.weight_hh.T + weights.bias_hh  # (B, 3H)
    input_reset, input_update, input_new = input_part.chunk(3, dim=-1)
    hidden_reset, hidden_update, hidden_new = hidden_part.chunk(3, dim=-1)
    reset_gate = sigmoid(input_reset + hidden_reset)  # how much of h_{t-1} the candidate may see
    update_gate = sigmoid(input_update + hidden_update)  # how much of h_{t-1} to keep as it is
    # PyTorch applies the reset gate after the hidden projection (b_hn inside), unlike the paper.
    candidate = torch.tanh(input_new + reset_gate * hidden_new)
    return (1.0 - update_gate) * candidate + update_gate * hidden


def run_cell(kind: str, inputs: torch.Tensor, weights: CellWeights, hidden_size: int):
    """Unroll a hand-written cell over ``inputs`` (B, T, E) from zeros → (outputs (B, T, H), final state)."""
    batch = inputs.size(0)
    hidden = inputs.new_zeros(batch, hidden_size)
    state = (hidden, inputs.new_zeros(batch, hidden_size)) if kind == "lstm" else hidden
    outputs = []
    for step in range(inputs.size(1)):
        if kind == "rnn":
            state = rnn_cell(inputs[:, step], state, weights)
        elif kind == "lstm":
            state = lstm_cell(inputs[:, step], state, weights)
        elif kind == "gru":
            state = gru_cell(inputs[:, step], state, weights)
        else:
            raise ValueError(f"kind must be 'rnn', 'lstm' or 'gru', got {kind!r}.")
        outputs.append(state[0] if kind == "lstm" else state)
    return torch.stack(outputs, dim=1), state


@dataclass
class GradientProbe:
    """‖∂loss/∂h_{T-1-k}‖ for k = 0..T-1 (loss on the last step), per cell kind."""

    kind: str
    norms: list[float]  # index k = distance back from the last step
    clipped_norms: list[float]  # the same after clipping the total gradient norm to ``clip``
    clip: float


def gradient_through_time(
    module: torch.nn.RNNBase, kind: str, inputs: torch.Tensor, clip: float = 1.0
) -> GradientProbe:
    """Measure how the gradient of a last-step loss reaches earlier hidden states (BPTT, shown).

    ``module``: a one-layer ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (its weights are used by the
    hand-written cell, so we can keep every h_t and ask autograd for ∂loss/∂h_t). The loss is the
    squared norm of the last hidden state: what matters is the chain of Jacobians, not the loss.
    ``clipped_norms`` rescales the whole gradient vector to norm ``clip`` when it is larger, as
    ``torch.nn.utils.clip_grad_norm_`` does: clipping bounds explosion, it cannot revive a vanished one.
    """
    weights = CellWeights.from_module(module)
    hidden_size = module.hidden_size
    batch, time, _ = inputs.shape
    hidden = inputs.new_zeros(batch, hidden_size)
    state = (hidden, inputs.new_zeros(batch, hidden_size)) if kind == "lstm" else hidden
    kept: list[torch.Tensor] = []
    for step in range(time):
        current = state[0] if kind == "lstm" else state
        kept.append(current)
        if kind == "rnn":
            state = rnn_cell(inputs[:, step], state, weights)
        elif kind == "lstm":
            state = lstm_cell(inputs[:, step], state, weights)
        else:
            state = gru_cell(inputs[:, step], state, weights)
    last = state[0] if kind == "lstm" else state
    grads = torch.autograd.grad((last**2).sum(), [last, *kept[1:]], allow_unused=True)
    # grads[0] is ∂loss/∂h_T (k = 0); kept[j] is h_j, the input state of step j (h_0 = zeros is skipped).
    norms = [float(grads[0].norm())] + [
        float(g.norm()) if g is not None else 0.0 for g in reversed(grads[1:])
    ]
    total = sum(n**2 for n in norms) ** 0.5
    scale = min(1.0, clip / total) if total > 0 else 1.0
    return GradientProbe(kind, norms, [n * scale for n in norms], clip)
