"""The loop's precision policy, gradient scaler, host reads, compile and throughput figures (CPU; CUDA skips).

The fp32 CPU path must compute exactly what the loop computed before precision, deferred reads and
on-device token counts were added: the reference values below were recorded with the loop of commit
9872743 (one torch thread, this tiny GPT), and the run must reproduce them bit for bit.
"""

import hashlib
import sys

import pytest
import torch

from genai_assets.training import loop
from genai_assets.training.checkpoint import load_checkpoint
from genai_assets.training.loop import (
    NonFiniteLossError,
    TrainLoopConfig,
    resolve_precision,
    to_device,
    train,
)
from genai_assets.training.throughput import attention_shape, flops_per_token, throughput_figures
from genai_assets_tests.test_training_loop import fresh_model, lm_loss, make_data, shuffled_batches

# Recorded before the change (commit 9872743), OMP/torch threads = 1; floats as float.hex().
REFERENCE = {
    "train_loss": ["0x1.267a77ba5e354p+2", "0x1.25ba910000000p+2", "0x1.2356eb8d4fdf4p+2",
                   "0x1.1e55fb0000000p+2", "0x1.1f58510000000p+2", "0x1.1b747872b020cp+2",
                   "0x1.1a3a8b0000000p+2", "0x1.1815cf0000000p+2"],
    "grad_norm": ["0x1.1b13660000000p+0", "0x1.1334f40000000p+0", "0x1.04e76e0000000p+0",
                  "0x1.ceb0b80000000p-1", "0x1.d4b05c0000000p-1", "0x1.04408a0000000p+0",
                  "0x1.b340d20000000p-1", "0x1.2d59340000000p+0"],
    "val_loss": ["0x1.1ac65770a3d71p+2", "0x1.165b9d020c49cp+2"],
    "tokens": [125, 253, 378, 506, 634, 759, 887, 1015],
    "weights_sha256": "927d3351a5ad06ccfd2760aa82a0971387519b030dbfbf5daabcc03417f46435",
}  # fmt: skip


def tiny_gpt_run(**overrides):
    """A 2-layer GPT with dropout, grad accumulation, clipping and ignored targets, via device_loss."""
    from genai_assets.models.transformer import GPT, GPTConfig
    from genai_assets.training.scratch_runs import device_loss

    torch.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1))
    generator = torch.Generator().manual_seed(5)
    data = [torch.randint(0, 97, (4, 17), generator=generator) for _ in range(5)]
    batches = [(x[:, :-1], x[:, 1:].clone()) for x in data]
    batches[1][1][0, :3] = -100  # ignored targets: token counts differ between micro-batches

    def train_batches():
        for index in torch.randperm(len(batches)).tolist():
            yield batches[index]

    settings = dict(max_steps=8, learning_rate=3e-3, warmup_steps=2, grad_accum_steps=2, grad_clip=0.5,
                    eval_every=4, eval_batches=2, checkpoint_every=0, seed=11)  # fmt: skip
    result = train(
        model, train_batches, lambda: batches, TrainLoopConfig(**{**settings, **overrides}), device_loss
    )
    return model, result


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the reference was recorded with one thread (reductions depend on it)
    yield
    torch.set_num_threads(previous)


def test_cpu_fp32_run_is_bit_identical_to_the_loop_before_the_precision_change(one_thread):
    model, result = tiny_gpt_run(precision="auto")
    assert result.precision == "fp32" and result.device == "cpu"
    assert [row["train_loss"].hex() for row in result.history] == REFERENCE["train_loss"]
    assert [row["grad_norm"].hex() for row in result.history] == REFERENCE["grad_norm"]
    assert [row["val_loss"].hex() for row in result.history if "val_loss" in row] == REFERENCE["val_loss"]
    assert [row["tokens"] for row in result.history] == REFERENCE["tokens"]
    assert weights_digest(model) == REFERENCE["weights_sha256"]


def test_precision_resolution(monkeypatch):
    assert resolve_precision("auto", "cpu").name == "fp32"
    assert resolve_precision("bf16", "cpu").autocast_dtype == torch.bfloat16
    assert resolve_precision("fp32", "cpu").autocast_dtype is None
    fp16 = resolve_precision("fp16", "cpu")
    assert fp16.uses_scaler and fp16.grad_scaler().is_enabled()
    assert not resolve_precision("bf16", "cpu").grad_scaler().is_enabled()
    # auto on CUDA: bf16 where the GPU has it natively, fp16 + scaler on a T4 (bf16 only emulated there).
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: not including_emulation
    )
    assert resolve_precision("auto", "cuda").name == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_precision("auto", "cuda").name == "fp16"
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainLoopConfig(precision="fp8")
    from genai_assets.finetune.train import FinetuneConfig
    from genai_assets.training.scratch_config import ScratchTransformerConfig

    for config in (ScratchTransformerConfig, FinetuneConfig):
        with pytest.raises(ValueError, match="precision must be one of"):
            config(precision="half")
    assert ScratchTransformerConfig(precision="bf16", compile=True).loop_config().precision == "bf16"


def test_bf16_autocasts_the_forward_and_keeps_fp32_weights():
    seen = []

    def recording_loss(model, batch):
        x, y = batch
        logits = model(x)
        seen.append(logits.dtype)
        return torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.size(-1)), y.reshape(-1)
        ), y.numel()

    data = make_data()
    model = fresh_model()
    config = TrainLoopConfig(max_steps=12, learning_rate=3e-2, warmup_steps=2, eval_every=0, precision="bf16")
    result = train(model, lambda: data, lambda: data, config, recording_loss)
    assert result.precision == "bf16" and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


class Interrupt(Exception):
    pass


def test_fp16_scaler_skips_an_overflow_step_and_its_state_resumes_bit_for_bit(tmp_path):
    """An inf gradient at step 3 is the scaler's business (skip the step, halve the scale), not an error;
    the halved scale is checkpointed and restored, so the resumed run ends with the same weights."""
    data = make_data(n_batches=3)
    config = TrainLoopConfig(
        max_steps=8, learning_rate=1e-2, warmup_steps=0, checkpoint_every=4, precision="fp16"
    )

    def loss_with_overflow(counter, stop_after=None):
        def loss_fn(model, batch):
            counter["n"] += model.training
            if stop_after is not None and counter["n"] > stop_after:
                raise Interrupt
            loss, n = lm_loss(model, batch)
            if counter["n"] == 3 and model.training:
                loss.register_hook(lambda grad: grad * float("inf"))
            return loss, n

        return loss_fn

    straight = fresh_model()
    train(straight, shuffled_batches(data), lambda: data, config, loss_with_overflow({"n": 0}))
    with pytest.raises(Interrupt):
        train(fresh_model(), shuffled_batches(data), lambda: data, config,
              loss_with_overflow({"n": 0}, stop_after=4), tmp_path / "ckpt")  # fmt: skip
    state = load_checkpoint(tmp_path / "ckpt", fresh_model())
    assert state["step"] == 4 and state["precision"] == "fp16"
    # The scale starts at 2**16 and is halved on every skipped step: step 3's overflow, plus the first
    # steps' (the token-weighted backward multiplies gradients by the step's token count).
    assert state["scaler"]["scale"] < 2.0**15 and state["scaler"]["_growth_tracker"] == 1
    resumed = fresh_model(seed=2)
    result = train(resumed, shuffled_batches(data), lambda: data, config, loss_with_overflow({"n": 4}),
                   tmp_path / "ckpt")  # fmt: skip
    assert result.resumed_from_step == 4
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_disabled_scaler_state_round_trips_as_empty(tmp_path):
    config = TrainLoopConfig(max_steps=2, warmup_steps=0, precision="fp32")
    data = make_data()
    train(fresh_model(), lambda: data, lambda: data, config, lm_loss, tmp_path / "ckpt")
    state = load_checkpoint(tmp_path / "ckpt", fresh_model())
    assert state["scaler"] == {} and state["precision"] == "fp32"
    again = train(fresh_model(), lambda: data, lambda: data, config, lm_loss, tmp_path / "ckpt")
    assert again.resumed_from_step == 2


def test_the_loop_reads_device_values_only_at_read_points(monkeypatch):
    """Counted: every tensor→host read made by loop.py. 100 steps, a read point every 5 steps."""
    reads = []
    loop_file = loop.__file__

    def counting(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            if sys._getframe(1).f_code.co_filename == loop_file:
                reads.append(name)
            return original(self, *args, **kwargs)

        return wrapper

    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    data = make_data()
    config = TrainLoopConfig(max_steps=100, warmup_steps=0, eval_every=0, eval_batches=1, checkpoint_every=0)
    result = train(fresh_model(), lambda: data, lambda: data, config, lm_loss)
    assert len(result.history) == 100
    read_points = 1 + 100 // 5  # step 1, then every 5th (the last one included)
    # per read point: one tolist each for the loss sums and the gradient norms (token counts are ints
    # here); plus the final evaluation's two reads. The loop before this change read 2 per step (200).
    assert reads.count("tolist") == 2 * read_points
    assert len(reads) <= 2 * read_points + 2


def test_compile_wraps_the_training_forward_only(monkeypatch, tmp_path):
    monkeypatch.setattr(loop, "COMPILE_BACKEND", "eager")  # dynamo's capture without inductor's C++ build
    data = make_data()
    config = dict(max_steps=4, warmup_steps=0, checkpoint_every=2)
    compiled, plain = fresh_model(), fresh_model()
    train(
        compiled, lambda: data, lambda: data, TrainLoopConfig(compile=True, **config), lm_loss, tmp_path / "c"
    )
    train(plain, lambda: data, lambda: data, TrainLoopConfig(**config), lm_loss)
    for a, b in zip(compiled.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    from safetensors.torch import load_file

    assert not any("_orig_mod" in key for key in load_file(tmp_path / "c" / "model.safetensors"))


def test_to_device_leaves_cpu_batches_alone():
    batch = {"input_ids": torch.zeros(2, 3), "pair": (torch.ones(1), 5)}
    assert to_device(batch, torch.device("cpu")) is batch


def test_flops_formula_and_mfu():
    from transformers import GPT2Config, LlamaConfig

    from genai_assets.models.rnn import RNNConfig

    # benchmarks/bench_models.py's shape: 4 layers, 256 wide, block 128, 4,240,896 parameters
    assert flops_per_token(4_240_896, 4, 128, 256) == 6 * 4_240_896 + 12 * 4 * 128 * 256
    assert attention_shape(GPT2Config(n_layer=12, n_embd=768)) == (12, 768)
    assert attention_shape(LlamaConfig(num_hidden_layers=30, hidden_size=576)) == (30, 576)
    assert attention_shape(RNNConfig(kind="gru", vocab_size=10)) == (0, 0)
    model = fresh_model()
    figures = throughput_figures(model, 1000.0, seq_len=8, device="cpu", precision="fp32")
    n_parameters = sum(p.numel() for p in model.parameters())
    assert figures["flops_per_token"] == 6 * n_parameters  # TinyLM has no config: no attention term
    assert figures["mfu"] == pytest.approx(1000.0 * 6 * n_parameters / figures["peak_flops"])
    assert "measured 1024x1024 float32 matmul on cpu" in figures["peak_basis"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_auto_precision_trains_with_pinned_batches_and_restores_tf32():
    device = torch.device("cuda")
    previous = torch.get_float32_matmul_precision()
    batch = to_device((torch.zeros(2, 3, dtype=torch.long), torch.ones(2)), device)
    assert all(t.device.type == "cuda" for t in batch)
    data = make_data()
    model = fresh_model().to(device)
    result = train(model, lambda: data, lambda: data, TrainLoopConfig(max_steps=6, warmup_steps=0), lm_loss)
    assert result.precision in ("bf16", "fp16") and result.device.startswith("cuda")
    assert result.history[-1]["tokens"] == 6 * 32
    assert torch.get_float32_matmul_precision() == previous


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_non_finite_loss_is_still_caught():
    data = make_data()

    def nan_loss(model, batch):
        loss, n = lm_loss(model, batch)
        return loss * float("nan"), n

    with pytest.raises(NonFiniteLossError, match="step 1"):
        train(fresh_model().cuda(), lambda: data, lambda: data, TrainLoopConfig(max_steps=4, warmup_steps=0),
              nan_loss)  # fmt: skip
