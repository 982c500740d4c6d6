"""Training runs of the scratch models on ``token_arrays`` with the shared loop (no stage logic:
:mod:`genai_assets.stages.scratch` builds the models, saves them and writes their cards and plots).

* :func:`run_language_model` trains a GPT or an RNN LM on the flat token streams with the shared
  loop, then measures the whole validation split (loss, perplexity, bits per character) and
  writes samples from a few prompts.
* :func:`run_next_line` trains the encoder–decoder on (line, next line) pairs of the same poems.

Bits per character (comparable across tokenizers): ``bpc = total_nats / ln 2 / n_chars`` where
``total_nats`` = mean loss per token over every full validation block × the split's token count,
and ``n_chars`` = the characters of the validation poems (``meta.json``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from genai_assets.models.sampling_settings import SamplingConfig
from genai_assets.text.datasets import load_poem_sequences, load_token_stream, read_token_meta
from genai_assets.training.checkpoint import prepare_run_checkpoint, run_fingerprint, training_lock
from genai_assets.training.distributed import active_world
from genai_assets.training.lm_data import (
    line_pairs,
    newline_token_ids,
    pair_batches,
    random_block_batches,
    sequential_block_batches,
    split_validation_stream,
)
from genai_assets.training.loop import TrainLoopConfig, TrainResult, evaluate, resolve_precision, train
from genai_assets.training.throughput import throughput_figures


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda if available, else cpu; otherwise the named device (validated)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} was asked for but CUDA is not available; use 'auto' or 'cpu'.")
    return torch.device(name)


SHORT_FINGERPRINT = 12  # hex digits of a scratch run's fingerprint kept in its folder name and stamp


def checkpoint_folder(base: Path, fingerprint: str) -> Path:
    """``base/run-<fingerprint>`` (the settings' fingerprint, cut to :data:`SHORT_FINGERPRINT` digits).

    Nothing is deleted here: the training functions remove other runs' folders only while they
    hold the asset's training lock (``base``), so a concurrent run's checkpoint is never touched.
    """
    base.mkdir(parents=True, exist_ok=True)
    return base / f"run-{fingerprint[:SHORT_FINGERPRINT]}"


def token_data_digest(token_dir: str | Path, splits: tuple[str, ...] = ("train", "val")) -> str:
    """SHA-256 of the token CONTENT a run trains and validates on (``<split>.bin``) and of its tokenizer.

    Token counts are not enough: a re-cleaned corpus with the same sizes must not resume an old run.
    Read in 1 MiB chunks, so memory stays flat for any corpus size.
    """

    token_dir = Path(token_dir)
    meta = read_token_meta(token_dir)
    digest = hashlib.sha256(json.dumps([meta.get("dtype"), meta.get("vocab_size")]).encode())
    paths = [token_dir / f"{split}.bin" for split in splits]
    paths.append(Path(meta.get("tokenizer_dir", "")) / "tokenizer.json")
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        if path.is_file():
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def locked_run_checkpoint(checkpoint_dir: Path | None, token_dir: str | Path, log: Callable[[dict], None]):
    """Hold the asset's training lock while training into ``checkpoint_dir`` (``<asset root>/run-<fp>``).

    Under the lock: other ``run-*`` folders of the asset are removed, and the checkpoint is kept only
    if the fingerprint stored inside it matches settings + data content (else started fresh).
    """
    if checkpoint_dir is None:
        yield None
        return

    checkpoint_dir = Path(checkpoint_dir)
    world = active_world()
    if world is not None and world[0] != 0:
        # torchrun: rank 0 holds the lock and prepares the folder; the other ranks wait for it, then
        # resume from whatever checkpoint rank 0 kept.
        _barrier_after_rank_zero(world)
        yield checkpoint_dir
        return
    with training_lock(checkpoint_dir.parent):
        fingerprint = run_fingerprint(checkpoint_dir.name, token_data_digest(token_dir))[:SHORT_FINGERPRINT]
        _, action, removed = prepare_run_checkpoint(checkpoint_dir.parent, checkpoint_dir.name, fingerprint)
        if removed or action == "discarded":
            log({"event": "checkpoint discarded", "step": 0, "removed": removed, "action": action})
        _barrier_after_rank_zero(world)
        yield checkpoint_dir


def _barrier_after_rank_zero(world: tuple[int, int] | None) -> None:
    if world is not None:
        import torch.distributed as dist

        dist.barrier()


def device_loss(model: torch.nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The loop's ``loss_fn`` for every scratch model: ``(inputs, targets)`` moved to the model's device.

    The target count stays a 0-d tensor on the device: reading it (``int()``) would wait for the GPU.
    """
    inputs, targets = batch
    device = next(model.parameters()).device
    targets = targets.to(device)
    _, loss = model(inputs.to(device), targets)
    return loss, (targets != -100).sum()


@dataclass
class Sampling:
    """Which samples a run draws for its metadata and model card: ``prompts`` decoded with ``settings``."""

    prompts: list[str]  # text after the start-of-poem token ("" = from scratch)
    settings: SamplingConfig  # the one decoding-settings type (its seed seeds the samples; None = 0)

    def __post_init__(self) -> None:
        if isinstance(self.settings, dict):  # a torchrun worker's JSON spec gives a mapping
            self.settings = SamplingConfig(**self.settings)


class PoemCodec:
    """Encode prompts / decode samples with the poem tokenizer (``tokenizers``, no transformers import)."""

    def __init__(self, tokenizer_dir: str | Path, bos_id: int, eos_id: int):
        from tokenizers import Tokenizer

        path = Path(tokenizer_dir) / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"The poem tokenizer {path} is missing (token_arrays meta points there).")
        self.tokenizer = Tokenizer.from_file(str(path))
        self.bos_id, self.eos_id = bos_id, eos_id

    def prompt_ids(self, prompt: str) -> list[int]:
        return [self.bos_id, *self.tokenizer.encode(prompt, add_special_tokens=False).ids]

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def n_chars(self, ids: np.ndarray) -> int:
        return len(self.decode(np.asarray(ids)))


def generate_samples(
    model, codec: PoemCodec, sampling: Sampling, max_context: int | None = None
) -> list[dict]:
    """One sample per prompt: ``{"prompt", "text"}`` (prompt + continuation, up to eos)."""
    device = next(model.parameters()).device
    settings = sampling.settings
    generator = torch.Generator(device=device).manual_seed(settings.seed or 0)
    samples = []
    for prompt in sampling.prompts:
        ids = codec.prompt_ids(prompt)
        if max_context is not None:
            ids = ids[-max_context:]
        out = model.generate(
            torch.tensor([ids], device=device),
            settings.max_new_tokens,
            **settings.decoding_kwargs(),
            eos_token_id=codec.eos_id,
            generator=generator,
        )
        samples.append({"prompt": prompt, "text": codec.decode(out[0].tolist())})
    return samples


@dataclass
class _TrainedRun:
    """What every scratch run reports: the loop's result plus the subclass's own measurements."""

    train: TrainResult

    def metrics(self) -> dict:
        """``metrics.json`` / model-card figures: every field but ``train``, and the loop's figures."""
        measured = {item.name: getattr(self, item.name) for item in fields(self) if item.name != "train"}
        throughput = measured.get("throughput", {})
        return measured | {
            "tokens_per_second": self.train.tokens_per_second,
            "mfu": throughput.get("mfu"),
            "steps": self.train.steps,
            "resumed_from_step": self.train.resumed_from_step,
            "history": self.train.history,
        }


@dataclass
class LanguageModelRun(_TrainedRun):
    """What :func:`run_language_model` measured (the model is trained in place)."""

    val_loss: float  # mean nats per token over every full validation block
    val_perplexity: float
    val_bpc: float  # bits per character of the validation text
    n_parameters: int
    tokens_seen: int
    train_seconds: float  # wall-clock of train(), evaluations and samples included
    samples: list[dict]
    notes: list[str] = field(default_factory=list)
    throughput: dict = field(default_factory=dict)  # tokens/s, MFU and how (training.throughput)


def run_language_model(
    model: torch.nn.Module,
    token_dir: str | Path,
    loop_config: TrainLoopConfig,
    block_size: int,
    batch_size: int,
    sampling: Sampling,
    checkpoint_dir: Path | None = None,
    log_fn: Callable[[dict], None] | None = None,
    max_context: int | None = None,
) -> LanguageModelRun:
    """Train ``model`` (already on its device) on the train stream and measure it on the val stream."""

    meta = read_token_meta(token_dir)
    codec = PoemCodec(meta["tokenizer_dir"], int(meta["bos_id"]), int(meta["eos_id"]))
    train_tokens, val_tokens, note = split_validation_stream(
        load_token_stream(token_dir, "train"), load_token_stream(token_dir, "val"), block_size
    )
    notes = [note] if note else []
    n_val_chars = int(meta["splits"]["val"]["n_chars"]) if note is None else codec.n_chars(val_tokens)
    train_batches = random_block_batches(train_tokens, block_size, batch_size)
    val_batches = sequential_block_batches(val_tokens, block_size, batch_size)

    def sample_fn(trained, step: int) -> str:
        quick = Sampling(prompts=[""], settings=replace(sampling.settings, max_new_tokens=48, seed=0))
        return generate_samples(trained, codec, quick, max_context)[0]["text"]

    started = time.perf_counter()
    with locked_run_checkpoint(checkpoint_dir, token_dir, log_fn or (lambda row: None)) as checkpoint_dir:
        result = train(
            model, train_batches, val_batches, loop_config, device_loss, checkpoint_dir, log_fn, sample_fn
        )
    with torch.random.fork_rng(devices=[]):
        # The whole val split (the loop's last pass already was, when eval_batches=0).
        val_loss = result.final_val_loss if loop_config.eval_batches == 0 and result.history else None
        if val_loss is None or not math.isfinite(val_loss):
            precision = resolve_precision(loop_config.precision, next(model.parameters()).device)
            val_loss = evaluate(model, val_batches, device_loss, max_batches=0, precision=precision)
        model.eval()
        samples = generate_samples(model, codec, sampling, max_context)
    elapsed = time.perf_counter() - started
    return LanguageModelRun(
        train=result,
        val_loss=val_loss,
        val_perplexity=math.exp(min(val_loss, 700.0)),
        val_bpc=val_loss * len(val_tokens) / math.log(2) / max(1, n_val_chars),
        n_parameters=sum(p.numel() for p in model.parameters()),
        tokens_seen=int(result.history[-1]["tokens"]) if result.history else 0,
        train_seconds=elapsed,
        samples=samples,
        notes=notes,
        throughput=run_throughput(model, result, block_size),
    )


def run_throughput(model: torch.nn.Module, result: TrainResult, seq_len: int) -> dict:
    """:func:`~genai_assets.training.throughput.throughput_figures` of a finished run (all ranks' devices)."""
    world = active_world()
    return throughput_figures(
        model, result.tokens_per_second, seq_len, next(model.parameters()).device,
        n_devices=world[1] if world else 1, precision=result.precision,
    )  # fmt: skip


@dataclass
class NextLineRun(_TrainedRun):
    """What :func:`run_next_line` measured."""

    val_loss: float
    val_perplexity: float
    n_parameters: int
    n_train_pairs: int
    n_val_pairs: int
    train_seconds: float
    examples: list[dict]  # {"line", "reference", "generated"}
    notes: list[str] = field(default_factory=list)
    throughput: dict = field(default_factory=dict)  # tokens/s, MFU and how (training.throughput)


def load_line_pairs(token_dir: str | Path, max_source_len: int, max_target_len: int, seed: int = 0):
    """``(train_pairs, val_pairs, meta, notes)`` of (line ids, next line ids + eos) from the poems."""

    meta = read_token_meta(token_dir)
    special = {int(meta["bos_id"]), int(meta["eos_id"]), int(meta["pad_id"])}
    newlines = newline_token_ids(meta["tokenizer_dir"])

    def pairs_of(split: str):
        _, sequences = load_poem_sequences(token_dir, split)
        return line_pairs(sequences, newlines, special, int(meta["eos_id"]), max_source_len, max_target_len)

    train_pairs, val_pairs, notes = pairs_of("train"), pairs_of("val"), []
    if not train_pairs:
        raise ValueError(f"The train split of {token_dir} has no two consecutive lines: no next-line pairs.")
    if not val_pairs:
        order = np.random.default_rng(seed).permutation(len(train_pairs))
        n_val = max(1, len(train_pairs) // 10)
        val_pairs = [train_pairs[i] for i in order[:n_val]]
        train_pairs = [train_pairs[i] for i in order[n_val:]] or val_pairs
        notes.append(f"val split has no line pairs: validated on {n_val} pairs carved from train")
    return train_pairs, val_pairs, meta, notes


def _next_line_examples(
    model, val_pairs: list, codec: PoemCodec, n_examples: int, max_new: int
) -> list[dict]:
    """Lines of the val split spread evenly, each with its reference and the model's next line."""
    device = next(model.parameters()).device
    examples = []
    step = max(1, len(val_pairs) // max(1, n_examples))
    # Sampled, not greedy: a small model's greedy output collapses into its most frequent words.
    generator = torch.Generator(device=device).manual_seed(0)
    for source, target in val_pairs[::step][:n_examples]:
        generated = model.generate(
            torch.tensor([source], device=device), max_new, temperature=0.8, top_k=40, generator=generator
        )
        examples.append(
            {
                "line": codec.decode(source),
                "reference": codec.decode(target),
                "generated": codec.decode(generated[0].tolist()),
            }
        )
    return examples


def run_next_line(
    model: torch.nn.Module,
    token_dir: str | Path,
    loop_config: TrainLoopConfig,
    batch_size: int,
    n_examples: int = 8,
    checkpoint_dir: Path | None = None,
    log_fn: Callable[[dict], None] | None = None,
) -> NextLineRun:
    """Train the encoder–decoder to write the next line of a poem given the current line."""
    config = model.config
    train_pairs, val_pairs, meta, notes = load_line_pairs(
        token_dir, config.max_source_len, config.max_target_len
    )
    codec = PoemCodec(meta["tokenizer_dir"], int(meta["bos_id"]), int(meta["eos_id"]))
    train_batches = pair_batches(train_pairs, batch_size, config.pad_id, shuffle=True)
    val_batches = pair_batches(val_pairs, batch_size, config.pad_id, shuffle=False)

    def sample_fn(trained, step: int) -> str:
        source, target = val_pairs[0]
        generated = trained.generate(torch.tensor([source], device=next(trained.parameters()).device), 24)
        return f"{codec.decode(source)} → {codec.decode(generated[0].tolist())}"

    started = time.perf_counter()
    with locked_run_checkpoint(checkpoint_dir, token_dir, log_fn or (lambda row: None)) as checkpoint_dir:
        result = train(
            model, train_batches, val_batches, loop_config, device_loss, checkpoint_dir, log_fn, sample_fn
        )
    device = next(model.parameters()).device
    val_loss = evaluate(
        model,
        val_batches,
        device_loss,
        max_batches=0,
        precision=resolve_precision(loop_config.precision, device),
    )
    examples = _next_line_examples(model, val_pairs, codec, n_examples, config.max_target_len)
    return NextLineRun(
        train=result,
        val_loss=val_loss,
        val_perplexity=math.exp(min(val_loss, 700.0)),
        n_parameters=sum(p.numel() for p in model.parameters()),
        n_train_pairs=len(train_pairs),
        n_val_pairs=len(val_pairs),
        train_seconds=time.perf_counter() - started,
        examples=examples,
        notes=notes,
        throughput=run_throughput(model, result, config.max_target_len),
    )
