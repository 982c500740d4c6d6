"""One training loop for every model in the project (scratch GPT, encoder–decoder, RNNs, fine-tuning).

What it does, step by step (one optimizer step = ``grad_accum_steps`` micro-batches):

1. ``loss_fn(model, batch) -> (mean loss, n_target_tokens)`` for each micro-batch, under the run's
   precision (below); the loss is back-propagated weighted by its token count, so the accumulated
   gradient is the gradient of the token-weighted mean loss over the whole step (not a mean of
   per-batch means). ``n_target_tokens`` may be a Python int or a 0-d tensor on the device.
2. Gradient clipping to ``grad_clip`` (global L2 norm), AdamW step, LR scheduler step.
   The schedule is linear warm-up then linear decay to 0 — the same multiplier as
   ``transformers.get_linear_schedule_with_warmup`` (re-implemented here so the loop does not
   import transformers; a test checks both agree).
3. Every ``eval_every`` steps and at the end: validation loss (token-weighted) and perplexity.
   Every ``sample_every`` steps: ``sample_fn(model, step)`` text. Both run under
   ``torch.random.fork_rng`` with eval mode, so they never change the training trajectory.
4. Every ``checkpoint_every`` steps and at the end: a resumable checkpoint
   (:mod:`genai_assets.training.checkpoint`). If ``checkpoint_dir`` already holds one, training
   resumes from it: weights, optimizer, scheduler, gradient scaler, step, history and RNG states are
   restored and the data iterator is replayed to the same position, so an interrupted run ends with
   exactly the weights an uninterrupted run would have (tested bit for bit on CPU).

No host synchronisation inside a step: the loss sums, token counts and gradient norm of each step
stay on the device and are read in one copy at the next *read point* — a log row (about 20 per run),
an evaluation, a sample or a checkpoint. A NaN/inf loss or gradient norm is found there (→
:class:`NonFiniteLossError` naming the step where it first appeared); checkpoints are only written at
read points after that check, so the checkpoint kept is always the last one before the bad step.

Precision (``precision``): ``fp32``; ``bf16`` (autocast to bfloat16, fp32 weights and optimizer);
``fp16`` (autocast to float16 with a ``torch.amp.GradScaler``, whose state is checkpointed; a step
with inf/NaN gradients is skipped by the scaler, not an error); ``auto`` = bf16 on CUDA devices with
native bf16, fp16 on older GPUs (T4), fp32 on CPU. On CUDA, fp32 matmuls use TF32 during training.
On CPU with fp32 the loop computes exactly what it always did (a test compares weights bit for bit).
On CUDA, input batches are pinned and copied non-blocking. ``compile`` wraps the training forward in
``torch.compile`` (evaluation, sampling and checkpoints use the plain model).

Under ``torchrun`` (a ``torch.distributed`` process group is initialised) the same loop trains
data-parallel: DistributedDataParallel, each rank a slice of every global batch, ``no_sync`` during
accumulation, rank 0 alone writing checkpoints — see :mod:`genai_assets.training.distributed`.

Weight decay applies to matrices only: biases, normalisation weights (all 1-D tensors) and
embedding tables (``nn.Embedding`` weights, including an output layer tied to one) are not
decayed — decaying them pulls rare tokens' embeddings to zero for no regularisation benefit.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genai_assets.training.checkpoint import (
    CheckpointError,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from genai_assets.training.distributed import active_world, batch_rows, maybe_inject_fault, shard_batch
from genai_assets.training.loop_config import TrainLoopConfig
from genai_assets.training.precision import PRECISIONS

# torch.compile's backend for ``compile: true`` (tests swap in a cheaper one).
COMPILE_BACKEND = "inductor"


class NonFiniteLossError(RuntimeError):
    """The training loss (or gradient norm) became NaN or infinite; training stopped."""


@dataclass(frozen=True)
class Precision:
    """A resolved ``precision`` setting on one device type: what autocast and the scaler do."""

    name: str  # "fp32", "bf16" or "fp16" (never "auto")
    device_type: str  # "cpu", "cuda", ...

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def uses_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range and needs none."""
        return self.name == "fp16"

    def autocast(self):
        """The forward pass's context: autocast to the half type, or nothing at all for fp32."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled for fp16 only (a disabled one passes everything through)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.uses_scaler)


def resolve_precision(setting: str, device: torch.device | str) -> Precision:
    """``auto`` → bf16 on CUDA with native bf16, fp16 on CUDA without (T4), fp32 elsewhere.

    Explicit ``bf16``/``fp16`` are honoured on CPU too (torch's CPU autocast; slow, for tests).
    """
    if setting not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {setting!r}.")
    device_type = torch.device(device).type
    name = setting
    if setting == "auto":
        if device_type == "cuda":
            # including_emulation=False: a T4 "supports" bf16 only by emulation, far slower than fp16.
            name = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
        else:
            name = "fp32"
    return Precision(name, device_type)


@contextlib.contextmanager
def tf32_matmuls(device_type: str):
    """TF32 tensor cores for fp32 matmuls and convolutions on CUDA during the block; restored after."""
    if device_type != "cuda":
        yield
        return
    previous = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous[0])
        torch.backends.cudnn.allow_tf32 = previous[1]


@dataclass
class TrainResult:
    """What :func:`train` did (the model itself is trained in place)."""

    steps: int  # optimizer steps completed in total (including resumed ones)
    history: list[dict] = field(default_factory=list)  # per step: step, train_loss, lr, tokens, elapsed_s
    final_val_loss: float = float("nan")  # (+ val_loss / val_perplexity on eval steps)
    tokens_per_second: float = 0.0  # training tokens / training seconds of this call (no eval time)
    resumed_from_step: int = 0  # 0 if the run started fresh
    samples: list[dict] = field(default_factory=list)  # {"step": int, "text": str} from sample_fn
    precision: str = "fp32"  # the resolved precision the run trained in
    device: str = "cpu"  # the device of the model's parameters


def linear_warmup_decay(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR multiplier: ``step/warmup`` during warm-up, then linear decay to 0 at ``total_steps``.

    Same formula as ``transformers.get_linear_schedule_with_warmup``; note it is 0 at step 0, so the
    very first optimizer step of a run with warm-up does not move the weights. A warm-up longer
    than the run is capped at ``total_steps`` (the configs document it so).
    """
    warmup_steps = min(warmup_steps, total_steps)
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def parameter_groups(
    model: torch.nn.Module, parameters: Iterable[torch.nn.Parameter], weight_decay: float
) -> list[dict]:
    """AdamW groups: decay for weight matrices; none for biases, norms (1-D) and embedding tables."""
    embedding_ids = {
        id(module.weight) for module in model.modules() if isinstance(module, torch.nn.Embedding)
    }
    decay, no_decay, seen = [], [], set()
    for parameter in parameters:
        if not parameter.requires_grad or id(parameter) in seen:
            continue
        seen.add(id(parameter))
        (decay if parameter.dim() >= 2 and id(parameter) not in embedding_ids else no_decay).append(parameter)
    if not seen:
        raise ValueError("No trainable parameters: every parameter has requires_grad=False.")
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model, parameters, config: TrainLoopConfig) -> torch.optim.AdamW:
    """AdamW over :func:`parameter_groups`: the fused kernel on CUDA, the multi-tensor one elsewhere.

    On CPU the fused kernel measured slower than ``foreach`` for our small models, so it is GPU-only.
    """
    groups = parameter_groups(model, parameters, config.weight_decay)
    on_cuda = all(p.is_cuda for group in groups for p in group["params"])
    return torch.optim.AdamW(
        groups, lr=config.learning_rate, betas=config.adam_betas, eps=config.adam_eps, fused=on_cuda or None
    )


def _rng_states() -> dict:
    """Every RNG the loop or a data pipeline might use, as plain values (``weights_only``-loadable)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(tuple(item if not isinstance(item, list) else tuple(item) for item in states["python"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seeded_rng_states(seed: int) -> dict:
    """The RNG states :func:`_seed_everything` would set, leaving this process's own states as they are."""
    outer = _rng_states()
    _seed_everything(seed)
    seeded = _rng_states()
    _set_rng_states(outer)
    return seeded


def _fork_devices() -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


class _TrainStream:
    """Endless micro-batches from ``train_batches()``, re-called at each epoch; remembers its position.

    The position (RNG states at the start of the epoch + batches taken since) is saved in checkpoints so
    a resumed run replays the same epoch iterator — shuffling included — to the same batch.

    Distributed (``world`` = (rank, world_size)): the batches are drawn under a private data RNG seeded
    with ``data_seed`` on every rank, so all ranks see the same global batches, and each rank keeps its
    slice (:func:`~genai_assets.training.distributed.shard_batch`); global batches with fewer rows than
    ranks are skipped by every rank alike.
    """

    def __init__(
        self,
        train_batches: Callable[[], Iterable[Any]],
        world: tuple[int, int] | None = None,
        data_seed: int = 0,
    ):
        self.train_batches = train_batches
        self.world = world
        self.epoch = 0
        self.taken_in_epoch = 0
        self.epoch_rng: dict | None = None
        self.iterator: Iterator[Any] | None = None
        self.data_rng: dict | None = None
        if world is not None:
            self.data_rng = _seeded_rng_states(data_seed)

    @contextlib.contextmanager
    def _data_rng(self):
        """Draw under the private data RNG (distributed), leaving this rank's own RNG untouched."""
        if self.data_rng is None:
            yield
            return
        outer = _rng_states()
        _set_rng_states(self.data_rng)
        try:
            yield
        finally:
            self.data_rng = _rng_states()
            _set_rng_states(outer)

    def _start_epoch(self) -> None:
        self.epoch_rng = _rng_states()
        self.iterator = iter(self.train_batches())
        self.taken_in_epoch = 0

    def next(self) -> Any:
        with self._data_rng():
            while True:
                batch = self._next_global()
                if self.world is None:
                    return batch
                rank, world_size = self.world
                if batch_rows(batch) >= world_size:
                    return shard_batch(batch, rank, world_size)

    def _next_global(self) -> Any:
        if self.iterator is None:
            self._start_epoch()
        for attempt in range(2):
            try:
                batch = next(self.iterator)
                self.taken_in_epoch += 1
                return batch
            except StopIteration:
                if attempt == 1 or self.taken_in_epoch == 0:
                    raise ValueError(
                        "train_batches() returned an empty iterable: no training data."
                    ) from None
                self.epoch += 1
                self._start_epoch()
        raise AssertionError("unreachable")

    def state(self) -> dict:
        state = {"epoch": self.epoch, "taken_in_epoch": self.taken_in_epoch, "epoch_rng": self.epoch_rng}
        if self.data_rng is not None:
            state["data_rng"] = self.data_rng
        return state

    def restore(self, state: dict) -> None:
        """Re-create the epoch iterator under its original RNG state and skip the batches already used."""
        self.epoch = state["epoch"]
        if state["epoch_rng"] is None:
            return
        current = _rng_states()
        _set_rng_states(state["epoch_rng"])
        self.epoch_rng = state["epoch_rng"]
        self.iterator = iter(self.train_batches())
        for _ in range(state["taken_in_epoch"]):
            next(self.iterator)
        self.taken_in_epoch = state["taken_in_epoch"]
        _set_rng_states(current)
        if self.world is not None:
            if "data_rng" not in state:
                raise CheckpointError(
                    "The checkpoint was written by an in-process run; a distributed run cannot resume its "
                    "data order. Delete the checkpoint folder or resume without torchrun."
                )
            self.data_rng = state["data_rng"]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    val_batches: Callable[[], Iterable[Any]],
    loss_fn: Callable[[torch.nn.Module, Any], tuple[torch.Tensor, int]],
    max_batches: int = 0,
    precision: Precision | None = None,
) -> float:
    """Token-weighted mean loss over ``max_batches`` validation batches (0 = all), in eval mode.

    Sums stay on the device (float64, so the result equals a Python-float sum) and are read once.
    """
    was_training = model.training
    model.eval()
    total_loss, total_tokens = 0.0, 0
    try:
        for index, batch in enumerate(val_batches()):
            if max_batches and index >= max_batches:
                break
            with precision.autocast() if precision is not None else contextlib.nullcontext():
                loss, n_tokens = loss_fn(model, batch)
            total_loss = total_loss + loss.detach().to(torch.float64) * n_tokens
            total_tokens = total_tokens + n_tokens
    finally:
        model.train(was_training)
    if int(total_tokens) == 0:
        raise ValueError("val_batches() yielded no target tokens: cannot compute a validation loss.")
    return float(total_loss) / int(total_tokens)


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (tensors, tuples/lists/dicts of them) on ``device``; on CUDA via pinned memory, non-blocking.

    The copy is queued behind the previous step's kernels, so the host goes on preparing the next
    batch instead of waiting (a pageable copy would block). On CPU the batch is returned unchanged.
    """
    if device.type != "cuda":
        return batch
    if isinstance(batch, torch.Tensor):
        if batch.device == device:
            return batch
        source = batch.pin_memory() if batch.device.type == "cpu" else batch
        return source.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {name: to_device(value, device) for name, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


@dataclass
class _PendingStep:
    """One optimizer step's figures, still on the device until the next read point."""

    step: int
    loss_sum: torch.Tensor  # float64: sum over micro-batches (and ranks) of loss x tokens
    tokens: torch.Tensor | int  # target tokens of the step (global under DDP)
    grad_norm: torch.Tensor  # global gradient L2 norm before clipping
    lr: float
    elapsed_s: float


def _host_numbers(values: list) -> list[float]:
    """Device scalars and Python numbers → Python floats, with a single device→host copy."""
    tensors = [value.detach().to(torch.float64) for value in values if isinstance(value, torch.Tensor)]
    read = iter(torch.stack(tensors).tolist() if tensors else [])
    return [next(read) if isinstance(value, torch.Tensor) else float(value) for value in values]


@dataclass
class _Session:
    """The state one call of :func:`train` builds (everything the step and read-point helpers share)."""

    model: torch.nn.Module
    forward_model: torch.nn.Module  # what loss_fn receives in training: DDP and/or compiled wrapper
    ddp: torch.nn.Module | None  # the DistributedDataParallel wrapper (for no_sync), if any
    parameters: list
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    precision: Precision
    device: torch.device
    stream: _TrainStream
    config: TrainLoopConfig
    loss_fn: Callable
    world: tuple[int, int] | None
    checkpoint_dir: Path | None
    pending: list[_PendingStep] = field(default_factory=list)


def _train_step(session: _Session, step: int) -> _PendingStep:
    """One optimizer step (``grad_accum_steps`` micro-batches), with no host synchronisation."""
    config, world, started = session.config, session.world, time.perf_counter()
    lr = session.optimizer.param_groups[0]["lr"]
    session.optimizer.zero_grad(set_to_none=True)
    loss_sum, tokens = None, 0
    for micro in range(config.grad_accum_steps):
        # DDP: all-reduce only after the step's last micro-batch (no_sync accumulates locally).
        last_micro = micro == config.grad_accum_steps - 1
        with contextlib.nullcontext() if world is None or last_micro else session.ddp.no_sync():
            batch = to_device(session.stream.next(), session.device)
            with session.precision.autocast():
                loss, n_tokens = session.loss_fn(session.forward_model, batch)
            session.scaler.scale(loss * n_tokens).backward()
        weighted = loss.detach().to(torch.float64) * n_tokens
        loss_sum = weighted if loss_sum is None else loss_sum + weighted
        tokens = tokens + n_tokens
    grad_divisor = tokens
    if world is not None:
        # DDP averaged the ranks' token-weighted sums: x world_size / global tokens gives the
        # token-weighted mean over the global batch, exactly as one process would compute it.
        loss_sum, tokens = _all_reduce_sum(loss_sum, tokens)
        grad_divisor = tokens / world[1]
    session.scaler.unscale_(session.optimizer)  # fp16: back to true gradients before dividing/clipping
    _divide_gradients(session.parameters, grad_divisor)  # sum of token-weighted losses → weighted mean
    norm_limit = config.grad_clip if config.grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(session.parameters, norm_limit)
    session.scaler.step(session.optimizer)  # fp16: skipped when the gradients hold inf/NaN
    session.scaler.update()
    session.scheduler.step()
    return _PendingStep(step, loss_sum, tokens, grad_norm.detach(), lr, time.perf_counter() - started)


def _divide_gradients(parameters: list, divisor) -> None:
    grads = [parameter.grad for parameter in parameters if parameter.grad is not None]
    if isinstance(divisor, torch.Tensor):
        divisor = divisor.to(torch.float32)  # exact for token counts below 2**24
    if grads and grads[0].is_cuda:
        torch._foreach_div_(grads, divisor)  # one kernel launch for all gradients
        return
    for grad in grads:
        grad.div_(divisor)


def _read_pending(session: _Session) -> list[dict]:
    """Copy the pending steps' figures to the host (one sync); raise on the first bad step."""
    pending, session.pending = session.pending, []
    if not pending:
        return []
    losses = _host_numbers([entry.loss_sum for entry in pending])
    tokens = _host_numbers([entry.tokens for entry in pending])
    norms = _host_numbers([entry.grad_norm for entry in pending])
    rows = []
    for entry, loss_sum, n_tokens, grad_norm in zip(pending, losses, tokens, norms, strict=True):
        if n_tokens == 0:
            raise ValueError(f"Step {entry.step}: the micro-batches had no target tokens.")
        train_loss = loss_sum / int(n_tokens)
        bad = (
            ("loss", train_loss)
            if not math.isfinite(train_loss)
            else ("gradient norm", grad_norm)
            if not math.isfinite(grad_norm) and not session.precision.uses_scaler
            else None
        )
        if bad is not None:
            raise NonFiniteLossError(_non_finite_message(*bad, entry.step, session.checkpoint_dir))
        rows.append(
            {"step": entry.step, "train_loss": train_loss, "lr": entry.lr, "grad_norm": grad_norm,
             "tokens": int(n_tokens), "elapsed_s": entry.elapsed_s}
        )  # fmt: skip
    return rows


def train(
    model: torch.nn.Module,
    train_batches: Callable[[], Iterable[Any]],
    val_batches: Callable[[], Iterable[Any]],
    config: TrainLoopConfig,
    loss_fn: Callable[[torch.nn.Module, Any], tuple[torch.Tensor, int]],
    checkpoint_dir: Path | None = None,
    log_fn: Callable[[dict], None] | None = None,
    sample_fn: Callable[[torch.nn.Module, int], str] | None = None,
    trainable_parameters: Iterable[torch.nn.Parameter] | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``config.max_steps`` optimizer steps; see the module docstring.

    ``checkpoint_dir`` is owned by the loop (replaced whole at each checkpoint); if it holds a
    checkpoint, training resumes from it. ``log_fn`` receives progress rows (dicts) about 20 times
    per run, on every evaluation and for each sample.
    """
    session, saved_names = _start_session(
        model, train_batches, config, loss_fn, checkpoint_dir, trainable_parameters
    )
    with tf32_matmuls(session.device.type):
        return _run_session(session, val_batches, log_fn or (lambda row: None), sample_fn, saved_names)


def _start_session(model, train_batches, config, loss_fn, checkpoint_dir, trainable_parameters):
    """Optimizer, scheduler, scaler, precision, data stream and (DDP/compiled) forward model of a run."""
    explicit_subset = trainable_parameters is not None
    parameters = list(trainable_parameters) if explicit_subset else list(model.parameters())
    trained_ids = {id(p) for p in parameters if p.requires_grad}
    # Checkpoint only the trained tensors when a subset was given (adapters), else the whole model.
    saved_names = (
        [name for name, p in model.named_parameters() if id(p) in trained_ids] if explicit_subset else None
    )
    optimizer = make_optimizer(model, parameters, config)
    # torch's LambdaLR with the closed-form multiplier, not SequentialLR(LinearLR, LinearLR): LinearLR
    # refuses start_factor=0 (this warm-up starts at 0, as transformers' does) and updates the LR
    # multiplicatively step by step, so its values drift from the formula by rounding. LambdaLR's
    # state_dict is saved in every checkpoint and restored on resume.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: linear_warmup_decay(step, config.warmup_steps, config.max_steps)
    )
    device = next(model.parameters()).device
    precision = resolve_precision(config.precision, device)
    world = active_world()  # (rank, world_size) under torchrun, else None
    # Data-parallel: gradients all-reduced in backward (the model itself stays unwrapped for eval,
    # sampling and checkpoints).
    ddp = None if world is None else _data_parallel(model)
    forward_model = ddp or model
    if config.compile:
        forward_model = torch.compile(forward_model, backend=COMPILE_BACKEND)
    session = _Session(
        model=model, forward_model=forward_model, ddp=ddp, parameters=parameters, optimizer=optimizer,
        scheduler=scheduler, scaler=precision.grad_scaler(), precision=precision, device=device,
        stream=_TrainStream(train_batches, world, data_seed=config.seed), config=config, loss_fn=loss_fn,
        world=world, checkpoint_dir=checkpoint_dir,
    )  # fmt: skip
    return session, saved_names


def _restore_or_seed(session: _Session, result: TrainResult, saved_names, log) -> tuple[int, float]:
    """Resume from the session's checkpoint if there is one (→ tokens seen, seconds so far), else seed."""
    rank, world_size = session.world or (0, 1)
    if not has_checkpoint(session.checkpoint_dir):
        _seed_everything(session.config.seed + rank)  # per-rank RNG (dropout); rank 0 = the in-process seed
        return 0, 0.0
    state = load_checkpoint(session.checkpoint_dir, session.model, saved_names)
    session.optimizer.load_state_dict(state["optimizer"])
    session.scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):  # fp16 runs: the loss scale and its growth tracker
        session.scaler.load_state_dict(state["scaler"])
    result.steps = result.resumed_from_step = int(state["step"])
    result.history, result.samples = list(state["history"]), list(state["samples"])
    session.stream.restore(state["data"])
    _set_rng_states(_rank_rng_state(state, rank, world_size))
    log({"event": "resumed", "step": result.steps, "checkpoint_dir": str(session.checkpoint_dir)})
    return int(state["tokens_seen"]), float(state["elapsed_s"])


def _write_checkpoint(session: _Session, result: TrainResult, saved_names, tokens_seen: int, elapsed: float):
    """Rank 0 writes the checkpoint (every rank's RNG states included); the others wait at a barrier."""
    if session.checkpoint_dir is None:
        return
    rank, world_size = session.world or (0, 1)
    rng_by_rank = [_rng_states()]
    if session.world is not None:
        import torch.distributed as dist

        rng_by_rank = [None] * world_size
        dist.all_gather_object(rng_by_rank, _rng_states())
    if rank != 0:  # rank 0 alone writes; the others wait until the checkpoint is complete
        dist.barrier()
        return
    config = session.config
    state = {
        "step": result.steps,
        "optimizer": session.optimizer.state_dict(),
        "scheduler": session.scheduler.state_dict(),
        "scaler": session.scaler.state_dict(),  # {} unless fp16
        "precision": session.precision.name,
        "history": result.history,
        "samples": result.samples,
        "tokens_seen": tokens_seen,
        "elapsed_s": elapsed,
        "data": session.stream.state(),
        "rng": rng_by_rank[0],
        "rng_by_rank": rng_by_rank,
        "world_size": world_size,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
    }
    save_checkpoint(session.checkpoint_dir, session.model, state, saved_names)
    if session.world is not None:
        dist.barrier()


def _read_or_roll_back(session: _Session, saved_names) -> list[dict]:
    """:func:`_read_pending`; on a non-finite step the model is put back to the last good checkpoint.

    The steps after the bad one already ran (they were not read yet), so the weights in memory are
    not trustworthy; the checkpoint is, since checkpoints are written only after a read.
    """
    try:
        return _read_pending(session)
    except NonFiniteLossError:
        if has_checkpoint(session.checkpoint_dir):
            load_checkpoint(session.checkpoint_dir, session.model, saved_names)
        raise


@dataclass
class _Due:
    """What falls on one step; any of it makes the step a read point (the only host synchronisation)."""

    evaluates: bool
    samples: bool
    checkpoints: bool
    logs: bool

    @property
    def reads(self) -> bool:
        return self.evaluates or self.samples or self.checkpoints or self.logs


def _due(config: TrainLoopConfig, step: int, log_interval: int, samples_here: bool) -> _Due:
    is_last = step == config.max_steps
    return _Due(
        evaluates=bool(is_last or (config.eval_every and step % config.eval_every == 0)),
        samples=bool(samples_here and config.sample_every and (step % config.sample_every == 0 or is_last)),
        checkpoints=bool(is_last or (config.checkpoint_every and step % config.checkpoint_every == 0)),
        logs=step % log_interval == 0 or step == 1,
    )


def _record_rows(
    session: _Session, result: TrainResult, rows: list[dict], due: _Due, val_batches, log
) -> None:
    """Evaluate on the read step if due, append the read rows to the history, log the due ones."""
    config = session.config
    if due.evaluates:
        with torch.random.fork_rng(devices=_fork_devices()):
            rows[-1]["val_loss"] = evaluate(
                session.model, val_batches, session.loss_fn, config.eval_batches, session.precision
            )
        rows[-1]["val_perplexity"] = math.exp(min(rows[-1]["val_loss"], 700.0))
        result.final_val_loss = rows[-1]["val_loss"]
    result.history.extend(rows)
    log_interval = max(1, config.max_steps // 20)
    for row in rows:
        if "val_loss" in row or row["step"] % log_interval == 0 or row["step"] == 1:
            log(dict(row))


def _progress_bar(config: TrainLoopConfig, done: int, rank: int):
    if sys.stderr.isatty() and done < config.max_steps and rank == 0:
        from tqdm.auto import tqdm

        return tqdm(total=config.max_steps, initial=done, desc="train", unit="step")
    return None


def _run_session(session: _Session, val_batches, log, sample_fn, saved_names) -> TrainResult:
    config, model = session.config, session.model
    rank = (session.world or (0, 1))[0]
    result = TrainResult(steps=0, precision=session.precision.name, device=str(session.device))
    tokens_seen, elapsed_before = _restore_or_seed(session, result, saved_names, log)
    tokens_at_start, train_seconds = tokens_seen, 0.0
    log_interval = max(1, config.max_steps // 20)
    progress = _progress_bar(config, result.steps, rank)
    model.train()
    try:
        while result.steps < config.max_steps:
            if session.world is not None:
                maybe_inject_fault(rank, result.steps + 1)
            started = time.perf_counter()
            entry = _train_step(session, result.steps + 1)
            entry.elapsed_s = round(elapsed_before + train_seconds + time.perf_counter() - started, 4)
            session.pending.append(entry)
            result.steps += 1
            due = _due(config, result.steps, log_interval, sample_fn is not None and rank == 0)
            rows = _read_or_roll_back(session, saved_names) if due.reads else []
            train_seconds += time.perf_counter() - started  # the read waits for the device: training time
            for row in rows:
                tokens_seen += row["tokens"]
                row["tokens"] = tokens_seen
            if rows:
                rows[-1]["elapsed_s"] = round(elapsed_before + train_seconds, 4)
            _record_rows(session, result, rows, due, val_batches, log)
            if due.samples:
                result.samples.append(
                    {"step": result.steps, "text": _sample(model, sample_fn, result.steps, config)}
                )
                log({"step": result.steps, "sample": result.samples[-1]["text"]})
            if progress is not None:
                progress.update(1)
                if rows:
                    progress.set_postfix(loss=f"{rows[-1]['train_loss']:.3f}")
            if due.checkpoints:
                _write_checkpoint(session, result, saved_names, tokens_seen, elapsed_before + train_seconds)
    finally:
        if progress is not None:
            progress.close()

    if math.isnan(result.final_val_loss):  # resumed at or past max_steps: report the saved figures
        result.final_val_loss = next(
            (row["val_loss"] for row in reversed(result.history) if "val_loss" in row), float("nan")
        )
    session_tokens = tokens_seen - tokens_at_start
    result.tokens_per_second = session_tokens / train_seconds if train_seconds > 0 else 0.0
    return result


def _data_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """``DistributedDataParallel`` around ``model`` (its GPU, or CPU/gloo); rank 0's weights are broadcast."""
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _all_reduce_sum(loss_sum: torch.Tensor, tokens) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of the ranks' token-weighted losses and token counts, on the device (float64: exact counts)."""
    import torch.distributed as dist

    device = loss_sum.device
    totals = torch.stack([loss_sum, torch.as_tensor(tokens, device=device).to(torch.float64)])
    dist.all_reduce(totals)
    return totals[0], totals[1]


def _rank_rng_state(state: dict, rank: int, world_size: int) -> dict:
    """This rank's saved RNG states; a rank the saving run did not have restarts from its seed stream."""
    saved = state.get("rng_by_rank") or [state["rng"]]
    if rank < len(saved):
        return saved[rank]
    return _seeded_rng_states(int(state["config"]["seed"]) + rank + 7919 * int(state["step"]))


@torch.no_grad()
def _sample(model, sample_fn, step: int, config: TrainLoopConfig) -> str:
    """Run ``sample_fn`` in eval mode with its own seeded RNG, leaving the training RNG untouched."""
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=_fork_devices()):
            torch.manual_seed(config.seed + step)
            return sample_fn(model, step)
    finally:
        model.train(was_training)


def _non_finite_message(what: str, value: float, step: int, checkpoint_dir: Path | None) -> str:
    kept = (
        f"the last good checkpoint in {checkpoint_dir} is kept"
        if has_checkpoint(checkpoint_dir)
        else "no checkpoint was written yet"
    )
    return (
        f"Training stopped: the {what} is {value} at step {step}; {kept}. "
        "Try a lower learning_rate, a smaller grad_clip, or check the data for empty targets."
    )
