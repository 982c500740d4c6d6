"""The shared training loop: schedule, loss going down, resume bit for bit, NaN stop, checkpoints."""

import math

import pytest
import torch

from genai_assets.training.checkpoint import CheckpointError, has_checkpoint, load_checkpoint
from genai_assets.training.loop import (
    NonFiniteLossError,
    TrainLoopConfig,
    linear_warmup_decay,
    parameter_groups,
    train,
)


class TinyLM(torch.nn.Module):
    """Embedding → dropout → linear; dropout makes the run depend on the RNG (resume must restore it)."""

    def __init__(self, vocab: int = 16, dim: int = 8):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.dropout = torch.nn.Dropout(0.1)
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, vocab)

    def forward(self, idx):
        return self.head(self.norm(self.dropout(self.embed(idx))))


def make_data(n_batches: int = 6, batch: int = 4, length: int = 8, vocab: int = 16):
    generator = torch.Generator().manual_seed(0)
    # A learnable rule: the next token is (token + 1) mod vocab.
    xs = [torch.randint(0, vocab, (batch, length), generator=generator) for _ in range(n_batches)]
    return [(x, (x + 1) % vocab) for x in xs]


def shuffled_batches(data):
    """An epoch in a random order drawn from the global torch RNG (as a DataLoader(shuffle=True) does)."""

    def batches():
        for index in torch.randperm(len(data)).tolist():
            yield data[index]

    return batches


def lm_loss(model, batch):
    x, y = batch
    logits = model(x)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1)), y.numel()


def fresh_model(seed: int = 0) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM()


def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        TrainLoopConfig(max_steps=0)
    with pytest.raises(ValueError, match="warmup_steps must be >= 0"):
        TrainLoopConfig(max_steps=5, warmup_steps=-1)
    with pytest.raises(ValueError, match="max_steps must be <= 10,000,000"):
        TrainLoopConfig(max_steps=10**21)
    with pytest.raises(ValueError, match="adam_betas"):
        TrainLoopConfig(adam_betas=(0.9, 1.5))
    assert TrainLoopConfig(adam_betas=[0.8, 0.9]).adam_betas == (0.8, 0.9)


def test_a_warmup_longer_than_the_run_is_capped_at_its_length():
    """Warm-up is capped at ``max_steps`` (the scratch and fine-tune configs rely on it): 6 warm-up
    steps in a 4-step run train exactly like 4."""
    data = make_data(3)
    capped, exact = fresh_model(), fresh_model()
    train(
        capped,
        lambda: data,
        lambda: data,
        TrainLoopConfig(max_steps=4, warmup_steps=6, eval_every=0),
        lm_loss,
    )
    train(
        exact, lambda: data, lambda: data, TrainLoopConfig(max_steps=4, warmup_steps=4, eval_every=0), lm_loss
    )
    for left, right in zip(capped.parameters(), exact.parameters(), strict=True):
        assert torch.equal(left, right)


def test_schedule_matches_transformers():
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    reference = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=7, num_training_steps=30)
    for step in range(32):
        assert linear_warmup_decay(step, 7, 30) == pytest.approx(reference.lr_lambdas[0](step))


def test_no_weight_decay_on_biases_norms_and_embeddings():
    model = TinyLM()
    decay, no_decay = parameter_groups(model, model.parameters(), 0.1)
    assert [p.shape for p in decay["params"]] == [model.head.weight.shape]
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert len(no_decay["params"]) == 4  # embedding, norm weight + bias, head bias


def test_loss_goes_down_and_history_is_complete():
    data = make_data()
    model = fresh_model()
    config = TrainLoopConfig(max_steps=30, learning_rate=3e-2, warmup_steps=3, eval_every=10, eval_batches=2)
    logged = []
    result = train(model, shuffled_batches(data), lambda: data, config, lm_loss, log_fn=logged.append)
    assert result.steps == 30 and len(result.history) == 30 and result.resumed_from_step == 0
    assert [row["step"] for row in result.history if "val_loss" in row] == [10, 20, 30]
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert result.final_val_loss == result.history[-1]["val_loss"]
    assert result.history[-1]["val_perplexity"] == pytest.approx(math.exp(result.final_val_loss))
    assert result.history[-1]["tokens"] == 30 * 32
    assert result.tokens_per_second > 0
    assert any("val_loss" in row for row in logged)


def test_grad_accumulation_equals_one_big_batch():
    data = make_data(n_batches=4)
    big = [(torch.cat([b[0] for b in data[:2]]), torch.cat([b[1] for b in data[:2]]))]
    config = dict(max_steps=1, learning_rate=1e-2, warmup_steps=0, weight_decay=0.0, grad_clip=0.0)
    model_accum, model_big = fresh_model(), fresh_model()
    model_accum.dropout.p = model_big.dropout.p = 0.0
    train(model_accum, lambda: data[:2], lambda: data, TrainLoopConfig(grad_accum_steps=2, **config), lm_loss)
    train(model_big, lambda: big, lambda: data, TrainLoopConfig(**config), lm_loss)
    for a, b in zip(model_accum.parameters(), model_big.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


class Interrupt(Exception):
    pass


def test_resume_after_interrupt_matches_uninterrupted_run(tmp_path):
    data = make_data(n_batches=3)  # 3 batches per epoch: the interruption falls mid-epoch
    config = TrainLoopConfig(
        max_steps=10, learning_rate=1e-2, warmup_steps=2, eval_every=4, checkpoint_every=5
    )

    straight = fresh_model()
    straight_result = train(straight, shuffled_batches(data), lambda: data, config, lm_loss)

    calls = {"n": 0}

    def interrupted_loss(model, batch):
        calls["n"] += model.training  # count training micro-batches only, not validation ones
        if calls["n"] > 5:  # the 6th step's batch: after the step-5 checkpoint
            raise Interrupt
        return lm_loss(model, batch)

    checkpoints = tmp_path / "ckpt"
    with pytest.raises(Interrupt):
        train(fresh_model(), shuffled_batches(data), lambda: data, config, interrupted_loss, checkpoints)
    assert has_checkpoint(checkpoints)

    resumed = fresh_model(seed=2)  # different init: everything must come from the checkpoint
    torch.manual_seed(999)  # and a different global RNG state
    result = train(resumed, shuffled_batches(data), lambda: data, config, lm_loss, checkpoints)
    assert result.resumed_from_step == 5 and result.steps == 10
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert result.final_val_loss == straight_result.final_val_loss
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in straight_result.history]
    # torch's LambdaLR gives the closed-form LR at every step, and the resumed half continues from the
    # restored scheduler state (a fresh scheduler would restart the warm-up at lr 0 on step 6).
    expected_lr = [config.learning_rate * linear_warmup_decay(r["step"] - 1, 2, 10) for r in result.history]
    assert [r["lr"] for r in result.history] == expected_lr
    assert [r["lr"] for r in straight_result.history] == expected_lr

    # A finished checkpoint: training again is a no-op that reports the saved figures.
    again = train(fresh_model(), shuffled_batches(data), lambda: data, config, lm_loss, checkpoints)
    assert (
        again.steps == 10 and again.resumed_from_step == 10 and again.final_val_loss == result.final_val_loss
    )


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    """The NaN of step 7 is read at the next read point (step 8: log rows every 2 steps), not in step 7;
    the error still names step 7, the checkpoint kept is step 6's, and the model is rolled back to it."""
    data = make_data()
    calls = {"n": 0}

    def exploding_loss(model, batch):
        calls["n"] += model.training
        loss, n = lm_loss(model, batch)
        return (loss * float("nan") if calls["n"] == 7 and model.training else loss), n

    config = TrainLoopConfig(max_steps=40, warmup_steps=0, checkpoint_every=3, eval_every=0)
    model = fresh_model()
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 7.*last good checkpoint"):
        train(model, lambda: data, lambda: data, config, exploding_loss, tmp_path / "ckpt")
    assert calls["n"] == 8  # step 8 ran before the read found step 7's NaN: no sync inside a step
    kept = fresh_model(seed=5)
    state = load_checkpoint(tmp_path / "ckpt", kept)
    assert state["step"] == 6
    assert all(torch.isfinite(p).all() for p in model.parameters())
    for a, b in zip(model.parameters(), kept.parameters(), strict=True):
        assert torch.equal(a, b)  # rolled back to the last good checkpoint


def test_non_finite_gradient_norm_is_caught_too(tmp_path):
    data = make_data()
    calls = {"n": 0}

    def exploding_gradient(model, batch):
        calls["n"] += model.training
        loss, n = lm_loss(model, batch)
        if calls["n"] == 3 and model.training:  # finite loss, infinite gradient
            model.head.weight.register_hook(lambda grad: grad * float("inf"))
        return loss, n

    config = TrainLoopConfig(max_steps=40, warmup_steps=0, checkpoint_every=0, eval_every=0)
    with pytest.raises(NonFiniteLossError, match=r"gradient norm is (inf|nan) at step 3.*no checkpoint"):
        train(fresh_model(), lambda: data, lambda: data, config, exploding_gradient, tmp_path / "ckpt")


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    data = make_data()
    config = TrainLoopConfig(max_steps=2, warmup_steps=0)
    train(fresh_model(), lambda: data, lambda: data, config, lm_loss, tmp_path / "ckpt")
    (tmp_path / "ckpt" / "trainer_state.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="Corrupt trainer state"):
        train(fresh_model(), lambda: data, lambda: data, config, lm_loss, tmp_path / "ckpt")


def test_trainable_subset_is_checkpointed_alone_and_samples_do_not_change_training(tmp_path):
    data = make_data()
    config = TrainLoopConfig(max_steps=4, warmup_steps=0, checkpoint_every=2, sample_every=2)
    model = fresh_model()
    model.embed.weight.requires_grad_(False)
    frozen = model.embed.weight.clone()
    texts = []

    def sample_fn(m, step):
        texts.append(torch.rand(1).item())  # consumes RNG: must not perturb training
        return f"sample at {step}"

    result = train(
        model,
        shuffled_batches(data),
        lambda: data,
        config,
        lm_loss,
        tmp_path / "ckpt",
        sample_fn=sample_fn,
        trainable_parameters=[p for p in model.parameters() if p.requires_grad],
    )
    assert result.samples == [{"step": 2, "text": "sample at 2"}, {"step": 4, "text": "sample at 4"}]
    assert torch.equal(model.embed.weight, frozen)
    from safetensors.torch import load_file

    assert "embed.weight" not in load_file(tmp_path / "ckpt" / "model.safetensors")

    reference = fresh_model()
    reference.embed.weight.requires_grad_(False)
    train(
        reference,
        shuffled_batches(data),
        lambda: data,
        TrainLoopConfig(max_steps=4, warmup_steps=0),
        lm_loss,
        trainable_parameters=[p for p in reference.parameters() if p.requires_grad],
    )
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)


def test_empty_training_data_is_a_clear_error():
    with pytest.raises(ValueError, match="empty iterable"):
        train(fresh_model(), lambda: [], lambda: [], TrainLoopConfig(max_steps=1, warmup_steps=0), lm_loss)
