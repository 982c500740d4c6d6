"""Every scratch model can memorise one small batch through the shared training loop."""

import pytest
import torch

from genai_assets.models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderTransformer
from genai_assets.models.rnn import RNNConfig, RNNLanguageModel
from genai_assets.models.transformer import GPT, GPTConfig
from genai_assets.training.loop import TrainLoopConfig, train

VOCAB = 40


def lm_loss(model, batch):
    x, y = batch
    _, loss = model(x, y)
    return loss, int((y != -100).sum())


def overfit(model, batch, steps: int, learning_rate: float) -> list[float]:
    config = TrainLoopConfig(
        max_steps=steps, learning_rate=learning_rate, warmup_steps=5, weight_decay=0.0, eval_every=0
    )
    result = train(model, lambda: [batch], lambda: [batch], config, lm_loss)
    return [row["train_loss"] for row in result.history]


def lm_batch():
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, VOCAB, (4, 17), generator=generator)  # random: only memorisation helps
    return tokens[:, :-1], tokens[:, 1:]


def test_gpt_overfits_one_batch():
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset("tiny", vocab_size=VOCAB))
    losses = overfit(model, lm_batch(), steps=40, learning_rate=1e-2)
    assert losses[0] > 3.0 and losses[-1] < 0.3


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_recurrent_models_overfit_one_batch(kind):
    torch.manual_seed(0)
    model = RNNLanguageModel(
        RNNConfig(kind=kind, vocab_size=VOCAB, n_embd=32, hidden_size=64, n_layer=1, dropout=0.0)
    )
    losses = overfit(model, lm_batch(), steps=80, learning_rate=5e-2)
    assert losses[0] > 3.0 and losses[-1] < 0.5


def test_encoder_decoder_overfits_one_batch():
    torch.manual_seed(0)
    config = EncoderDecoderConfig(
        vocab_size=VOCAB, max_source_len=8, max_target_len=10, n_encoder_layers=1, n_decoder_layers=1,
        n_head=2, d_model=32, dropout=0.0,
    )  # fmt: skip
    model = EncoderDecoderTransformer(config)
    generator = torch.Generator().manual_seed(1)
    source = torch.randint(3, VOCAB, (4, 8), generator=generator)
    targets = torch.cat([source.flip(1), torch.full((4, 1), config.eos_id)], dim=1)  # reverse, then eos
    losses = overfit(model, (source, targets), steps=80, learning_rate=1e-2)
    assert losses[0] > 3.0 and losses[-1] < 0.3
    assert torch.equal(model.generate(source, 20, temperature=0), targets)


def test_rnn_generate_carries_state_like_a_full_pass():
    torch.manual_seed(0)
    model = RNNLanguageModel(
        RNNConfig(kind="gru", vocab_size=VOCAB, n_embd=16, hidden_size=24, n_layer=2)
    ).eval()
    prompt = torch.randint(0, VOCAB, (2, 4))
    out = model.generate(prompt, 6, temperature=0)
    assert out.shape == (2, 10)
    with torch.no_grad():
        logits, _ = model(out)
    # Greedy: each generated token is the argmax of the full pass's logits at the previous position.
    assert torch.equal(logits[:, 3:-1].argmax(-1), out[:, 4:])


def test_rnn_config_validation():
    with pytest.raises(ValueError, match="kind must be one of rnn, lstm, gru"):
        RNNConfig(kind="transformer")
