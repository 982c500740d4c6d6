"""Hand-written RNN/LSTM/GRU cells match torch's layers with copied weights; BPTT is measured."""

import pytest
import torch

from genai_assets.teaching.cells import CellWeights, gradient_through_time, run_cell, sigmoid

LAYERS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_hand_written_cell_matches_torch_layer(kind):
    torch.manual_seed(0)
    layer = LAYERS[kind](input_size=5, hidden_size=7, batch_first=True)
    inputs = torch.randn(3, 6, 5)
    expected_outputs, expected_state = layer(inputs)
    outputs, state = run_cell(kind, inputs, CellWeights.from_module(layer), hidden_size=7)
    torch.testing.assert_close(outputs, expected_outputs, rtol=1e-5, atol=1e-6)
    if kind == "lstm":
        torch.testing.assert_close(state[0], expected_state[0][0])
        torch.testing.assert_close(state[1], expected_state[1][0])  # the cell state too
    else:
        torch.testing.assert_close(state, expected_state[0])


def test_sigmoid_is_torch_sigmoid_and_its_derivative_peaks_at_a_quarter():
    x = torch.linspace(-6, 6, 121, requires_grad=True)
    torch.testing.assert_close(sigmoid(x), torch.sigmoid(x))
    sigmoid(x).sum().backward()
    assert float(x.grad.max()) == pytest.approx(0.25, abs=1e-6)


def test_bptt_gradient_vanishes_for_rnn_and_lasts_longer_for_lstm():
    torch.manual_seed(0)
    inputs = torch.randn(4, 40, 8)
    probes = {}
    for kind, layer in LAYERS.items():
        torch.manual_seed(1)
        module = layer(input_size=8, hidden_size=16, batch_first=True)
        if kind == "lstm":  # the usual forget-gate bias of 1 (Jozefowicz et al. 2015) keeps memory
            with torch.no_grad():
                module.bias_ih_l0[16:32].fill_(1.0)
        probes[kind] = gradient_through_time(module, kind, inputs, clip=1.0)
    rnn, lstm = probes["rnn"].norms, probes["lstm"].norms
    assert len(rnn) == 40
    assert rnn[30] / rnn[0] < 1e-3  # 30 steps back, the plain RNN's gradient is gone
    assert lstm[30] / lstm[0] > 10 * (rnn[30] / rnn[0])
    clipped = probes["rnn"].clipped_norms
    assert sum(n**2 for n in clipped) ** 0.5 == pytest.approx(
        min(1.0, sum(n**2 for n in rnn) ** 0.5), rel=1e-6
    )
