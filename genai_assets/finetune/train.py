"""Fine-tune a pre-trained causal LM on the tokenized poems, on the shared training loop.

The recipe follows the seed notebook (GPT-2 fine-tuned on poems): AdamW with lr 5e-4 and eps
1e-8, a linear warm-up/decay schedule (``get_linear_schedule_with_warmup``'s formula, in
``genai_assets.training.loop``), gradient clipping, periodic samples, validation loss per epoch
and the seed's training-stats table (epoch, training loss, validation loss, training time,
validation time). Departures, on purpose:

- packing (full blocks of poems) is the default collation; the seed's per-poem padding is
  ``collation="padding"``. Padding never counts in the loss in either mode (``labels`` -100).
- ``max_steps`` caps the run (the CPU demo trains for a few minutes, not whole epochs), and the
  warm-up is shortened to fit (the seed's 100 steps is the ``gpu`` preset's value).
- optional LoRA (peft) trains low-rank adapters only; they are merged before saving, so the
  saved folder is a plain transformers model either way.

Held-out perplexity is measured on the same capped test blocks for the base model (before
training, embeddings resized for the added tokens) and the fine-tuned one. The start marker
is never a target there: the base model has never seen it, so predicting it would only
measure the format, not the poems.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated

import numpy as np

from genai_assets.config_checks import Ge, Gt, Interval, range_problems
from genai_assets.finetune.data import (
    COLLATIONS,
    RowBatches,
    collate_dataset,
    finetune_splits,
    max_token_id,
    poem_start_id,
    prepare_tokenizer,
    resize_model_embeddings,
)
from genai_assets.finetune.metrics import TimedLoss, heldout_perplexity, lm_loss, training_stats
from genai_assets.generation import SamplingConfig, stop_token_ids
from genai_assets.training.loop_config import PRECISION_HELP, TrainingSettings

__all__ = ["FinetuneConfig", "FinetuneResult", "finetune", "heldout_perplexity", "lm_loss", "save_finetuned"]


ALL_LINEAR = "all-linear"  # peft's name for "every linear layer except the output head"


def lora_targets(modules: list[str]) -> str | list[str] | None:
    """peft's ``target_modules``: the string ``"all-linear"``, an explicit list, or None for its default."""
    modules = list(modules)
    if ALL_LINEAR in modules:
        if len(modules) > 1:
            raise ValueError(
                f"lora_target_modules: {ALL_LINEAR!r} cannot be combined with names, got {modules}."
            )
        return ALL_LINEAR
    return modules or None


@dataclass
class FinetuneConfig(TrainingSettings):
    """Hyperparameters of one fine-tuning run. Defaults: the CPU demo on SmolLM2-135M.

    The optimiser, warm-up, clipping, evaluation, sample, checkpoint, seed and precision fields and
    their checks are :class:`~genai_assets.training.loop_config.TrainingSettings`' (declared once,
    there; the seed's values are noted where this recipe differs); the run's length is counted here
    in epochs, capped at ``max_steps``.
    """

    # The cpu recipe (LoRA r16 on every linear layer, lr 1e-3, 80 steps) was chosen by measurement:
    # benchmarks/sweep_finetune.py, table in docs/finetune.md. The seed's full-weight lr 5e-4 made the
    # model forget (out-of-domain verse +1.8 % bits/char) while learning less (-5.3 % in domain).
    learning_rate: Annotated[float, "AdamW peak learning rate (seed: 5e-4 for all weights)"] = 1e-3
    weight_decay: float = 0.01
    adam_betas: Annotated[tuple[float, float], "AdamW (beta1, beta2): torch's and the seed's"] = (0.9, 0.999)
    warmup_steps: Annotated[int, "linear warm-up steps (seed: 100), capped at the run's length"] = 5
    eval_batches: Annotated[int, "validation batches per pass; 0 = the whole val split"] = 8
    sample_every: int = 20
    checkpoint_every: int = 20
    seed: Annotated[int, "seeds the training order, dropout and the logged samples"] = 42
    precision: Annotated[str, PRECISION_HELP + "; with LoRA the frozen base is loaded in the half type"] = (
        "auto"
    )
    collation: Annotated[str, '"packing" (full blocks) or "padding" (one poem per row, the seed\'s)'] = (
        "packing"
    )
    block_size: Annotated[int, Ge(2), "tokens per row"] = 128
    batch_size: Annotated[int, Ge(1), "rows per micro-batch"] = 4
    epochs: Annotated[int, Ge(1), "passes over the train split ..."] = 1
    max_steps: Annotated[int, Ge(0), "... capped at this many optimizer steps; 0 = no cap"] = 80
    eval_every: Annotated[
        int, Ge(0), "steps between validation passes; 0 = once per epoch (and at the end)"
    ] = 0
    sample_max_new_tokens: Annotated[int, Ge(1), "length of the logged samples"] = 40
    resume: Annotated[bool, "continue from a compatible checkpoint if one exists"] = True
    lora: Annotated[bool, "train LoRA adapters (peft) instead of all weights; merged before saving"] = True
    lora_r: Annotated[int, Ge(1), "adapter rank"] = 16
    lora_alpha: Annotated[int, Gt(0), "adapter scaling numerator (scale = alpha / r)"] = 32
    lora_dropout: Annotated[float, Interval(ge=0, lt=1), "dropout on the adapter input"] = 0.05
    lora_target_modules: Annotated[
        list[str],
        '["all-linear"] = every linear layer but the output head (any architecture); [] = peft\'s default',
    ] = field(default_factory=lambda: [ALL_LINEAR])
    perplexity_max_blocks: Annotated[int, Ge(0), "test blocks scored for held-out perplexity; 0 = all"] = 16
    sampling: Annotated[SamplingConfig, "decoding defaults saved with the model"] = field(
        default_factory=SamplingConfig
    )

    def __post_init__(self) -> None:
        if isinstance(self.sampling, dict):  # configs from JSON give a mapping
            self.sampling = SamplingConfig(**self.sampling)
        super().__post_init__()

    def problems(self) -> list[str]:
        own = [item.name for item in fields(self) if item.name not in TrainingSettings.__dataclass_fields__]
        problems = super().problems() + range_problems(self, own)
        if self.collation not in COLLATIONS:
            problems.append(f"collation must be one of {COLLATIONS}, got {self.collation!r}")
        return problems


# Named presets (overrides of the defaults above; cpu = the defaults).
FINETUNE_PRESETS: dict[str, dict] = {
    "tiny": {
        "lora": False, "lora_target_modules": [],  # tests: all weights of the tiny random GPT-2
        "block_size": 64, "batch_size": 4, "max_steps": 8, "learning_rate": 3e-3, "warmup_steps": 1,
        "eval_batches": 2, "sample_every": 0, "checkpoint_every": 0, "perplexity_max_blocks": 4,
        "sampling": {"max_new_tokens": 20},
    },
    "cpu": {},
    "gpu": {
        "lora": False,  # a GPU affords all weights for several epochs (the seed's recipe)
        "block_size": 512, "batch_size": 16, "epochs": 3, "max_steps": 0, "learning_rate": 5e-4,
        "warmup_steps": 100, "eval_batches": 0, "sample_every": 100, "sample_max_new_tokens": 100,
        "checkpoint_every": 200, "perplexity_max_blocks": 0,
    },
}  # fmt: skip


@dataclass
class FinetuneResult:
    """What ``finetune`` did; the model folder itself is written to ``out_dir``."""

    steps: int
    resumed_from_step: int
    base_test: dict  # {"loss", "perplexity", "n_tokens", "n_blocks"} of the base model
    finetuned_test: dict  # same for the fine-tuned model
    final_val_loss: float
    tokens_per_second: float
    history: list[dict]
    training_stats: list[dict]  # the seed's per-epoch table
    samples: list[dict]
    n_trainable_parameters: int
    train_seconds: float
    metrics: dict = field(default_factory=dict)  # the content of metrics.json
    throughput: dict = field(default_factory=dict)  # tokens/s, MFU and how (training.throughput)


def load_base_for_finetuning(base_dir: str | Path, seed: int = 0, dtype=None):
    """``(model, tokenizer)`` of the base folder with the poem marker/pad tokens added and embeddings resized.

    The new embedding rows are drawn at random (around the old rows' mean), so ``seed`` fixes them:
    the same base always gets the same rows, which a LoRA resume (adapters only) relies on.
    ``dtype``: the weights' dtype (default float32; bfloat16/float16 for a frozen LoRA base).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if Path(base_dir).is_dir() and any(Path(base_dir).glob("*.safetensors")):
        from genai_assets.models.size_guard import check_transformers_folder

        check_transformers_folder(base_dir)  # a crafted config.json is refused before any allocation
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    prepare_tokenizer(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=dtype or torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        resize_model_embeddings(model, tokenizer)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def split_sequences(dataset, split: str) -> list[np.ndarray]:
    """Token ids of one split of a ``finetune_splits`` DatasetDict, one array per poem."""
    return [np.asarray(ids, dtype=np.int64) for ids in dataset[split].with_format("numpy")["input_ids"]]


def finetune_fingerprint(config: FinetuneConfig, base_revision: str, tokenizer, train_sequences: list) -> str:
    """What a checkpoint must match to be resumed (not the run length: a run can be extended):
    the settings that shape the run, the base model's revision, the vocabulary and the train tokens."""
    from genai_assets.training.checkpoint import run_fingerprint

    relevant = {
        key: value
        for key, value in asdict(config).items()
        if key
        not in {"epochs", "max_steps", "eval_every", "eval_batches", "sample_every", "sample_max_new_tokens"}
        | {"checkpoint_every", "resume", "perplexity_max_blocks", "sampling"}
    }
    return run_fingerprint(relevant, base_revision, len(tokenizer), arrays=train_sequences)


def prepare_checkpoint_dir(checkpoint_root: Path | None, fingerprint: str, resume: bool, log) -> Path | None:
    """``<root>/run-<fingerprint[:16]>`` for the loop: the scratch models' folder policy
    (``genai_assets.training.checkpoint.prepare_run_checkpoint``); call it holding the asset's lock.

    The fingerprint is stored inside the checkpoint folder, never beside it, so a checkpoint cannot
    be paired with another run's fingerprint; other runs' folders are deleted.
    """
    from genai_assets.training.checkpoint import prepare_run_checkpoint

    if checkpoint_root is None:
        return None
    checkpoint_root.mkdir(parents=True, exist_ok=True)
    run_dir, action, removed = prepare_run_checkpoint(  # refuses without the lock
        checkpoint_root, f"run-{fingerprint[:16]}", fingerprint, resume
    )
    # Earlier layouts (a fixed loop/ folder, the stamp beside it) can never resume under this one.
    (checkpoint_root / "fingerprint.json").unlink(missing_ok=True)
    shutil.rmtree(checkpoint_root / "loop", ignore_errors=True)
    if action == "discarded" or removed:
        log({"event": "checkpoint discarded", "reason": "resume off" if not resume else "different run"})
    return run_dir


def load_checked_base(base_dir: str | Path, dataset, config: FinetuneConfig, base_dtype) -> tuple:
    """``(model, tokenizer, dataset)``: the prepared base, refused if the dataset or block size does not fit it."""
    model, tokenizer = load_base_for_finetuning(base_dir, dtype=base_dtype)
    dataset = finetune_splits(dataset)
    max_id = max_token_id(dataset)
    if max_id >= len(tokenizer):
        raise ValueError(
            f"finetune_dataset holds token id {max_id} but the base tokenizer has {len(tokenizer)} tokens: "
            "the dataset was built with another base model; re-materialize finetune_dataset."
        )
    context = getattr(model.config, "n_positions", None) or getattr(
        model.config, "max_position_embeddings", None
    )
    if context and config.block_size > context:
        raise ValueError(
            f"block_size {config.block_size} exceeds the base model's context of {context} tokens."
        )
    return model, tokenizer, dataset


@dataclass
class FinetuneBatches:
    """The splits as the run consumes them: poems per split, and train/val/test row batches."""

    sequences: dict[str, list[np.ndarray]]  # token ids per poem, by split
    train_rows: RowBatches  # shuffled each epoch
    val_rows: RowBatches
    test_rows: RowBatches  # packed, capped at perplexity_max_blocks, the marker never a target


def prepare_batches(dataset, config: FinetuneConfig, pad_id: int, marker: int) -> FinetuneBatches:
    """Collate the three splits of ``dataset`` into row batches; refuse an empty split."""
    sequences = {split: split_sequences(dataset, split) for split in ("train", "val", "test")}
    for split, items in sequences.items():
        if not items:
            raise ValueError(
                f"finetune_dataset has no {split} poems; the fine-tuning needs train, val and test."
            )
    train_rows = RowBatches(
        collate_dataset(dataset["train"], config.collation, config.block_size, pad_id),
        config.batch_size,
        True,
    )
    val_rows = RowBatches(
        collate_dataset(dataset["val"], config.collation, config.block_size, pad_id), config.batch_size
    )
    test_tensors = collate_dataset(
        dataset["test"], "packing", config.block_size, pad_id, ignore_ids=(marker,)
    )
    if config.perplexity_max_blocks:
        test_tensors = {name: tensor[: config.perplexity_max_blocks] for name, tensor in test_tensors.items()}
    return FinetuneBatches(sequences, train_rows, val_rows, RowBatches(test_tensors, config.batch_size))


def wrap_lora(model, config: FinetuneConfig) -> tuple:
    """``(model, trainable, n_trainable)``: the model with LoRA adapters if the config asks for them."""
    trainable = None
    if config.lora:
        from peft import LoraConfig, get_peft_model

        lora_config = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=lora_targets(config.lora_target_modules),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora_config)
        trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    n_trainable = sum(p.numel() for p in (trainable or model.parameters()) if p.requires_grad)
    return model, trainable, n_trainable


def finetune_loop_config(config: FinetuneConfig, train_rows: RowBatches) -> tuple:
    """``(TrainLoopConfig, steps_per_epoch)``: the shared loop's settings for this run's length."""
    from genai_assets.training.loop import TrainLoopConfig

    steps_per_epoch = max(1, -(-train_rows.n_batches() // config.grad_accum_steps))
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    loop_config = TrainLoopConfig(
        **config.training_settings(),  # optimiser, warm-up (capped by the schedule), clipping, seed, ...
        max_steps=total_steps,
        eval_every=config.eval_every or steps_per_epoch,
    )
    return loop_config, steps_per_epoch


def poem_sampler(tokenizer, marker: int, stops: list[int], device, max_new_tokens: int) -> Callable:
    """``sample_fn(model, step) -> str`` for the loop: one poem sampled from the start marker."""

    def sample_fn(sampled_model, step: int) -> str:
        import torch

        prompt = torch.tensor([[marker]], device=device)  # (1, 1)
        output = sampled_model.generate(
            input_ids=prompt,
            attention_mask=torch.ones_like(prompt),
            do_sample=True,
            top_k=50,
            top_p=0.95,
            max_new_tokens=max_new_tokens,
            eos_token_id=stops,
            pad_token_id=tokenizer.pad_token_id,
        )
        return tokenizer.decode(output[0, 1:], skip_special_tokens=True)

    return sample_fn


@dataclass
class TrainedRun:
    """What the training step hands to the measuring step."""

    result: object  # the shared loop's TrainLoopResult
    timed_loss: TimedLoss  # holds the validation passes' durations
    steps_per_epoch: int
    train_seconds: float


def train_finetune(
    model,
    tokenizer,
    batches: FinetuneBatches,
    config: FinetuneConfig,
    trainable: list | None,
    checkpoint_root: Path | None,
    base_revision: str,
    device,
    log: Callable[[dict], None],
) -> TrainedRun:
    """Run the shared training loop on the train rows, holding the asset's lock while it runs."""
    from genai_assets.training.checkpoint import training_lock
    from genai_assets.training.distributed import on_rank_zero
    from genai_assets.training.loop import train

    loop_config, steps_per_epoch = finetune_loop_config(config, batches.train_rows)
    fingerprint = finetune_fingerprint(config, base_revision, tokenizer, batches.sequences["train"])
    sample_fn = poem_sampler(
        tokenizer, poem_start_id(tokenizer), stop_token_ids(tokenizer), device, config.sample_max_new_tokens
    )
    timed_loss = TimedLoss()
    started = time.perf_counter()
    # One run at a time per checkpoint root (fail fast, see training_lock); none without checkpoints.
    lock = training_lock(checkpoint_root, "finetuned_lm") if checkpoint_root else contextlib.nullcontext()
    with lock:
        # Under torchrun rank 0 alone prepares the folder (it holds the lock); the others then resume from it.
        loop_dir = on_rank_zero(
            lambda: prepare_checkpoint_dir(checkpoint_root, fingerprint, config.resume, log)
        )
        result = train(
            model,
            batches.train_rows,
            batches.val_rows,
            loop_config,
            timed_loss,
            checkpoint_dir=loop_dir,
            log_fn=log,
            sample_fn=sample_fn if config.sample_every else None,
            trainable_parameters=trainable,
        )
    return TrainedRun(result, timed_loss, steps_per_epoch, time.perf_counter() - started)


def finetune_metrics(
    result,
    timed_loss: TimedLoss,
    steps_per_epoch: int,
    measured: dict,
    config: FinetuneConfig,
    base_info: dict,
    sampling: SamplingConfig,
) -> dict:
    """The content of metrics.json; ``measured``: base_test, finetuned_test, throughput, n_trainable."""
    # Validation passes of this session, in order, belong to the history rows with val_loss after the resume point.
    session_eval_steps = [
        row["step"] for row in result.history if "val_loss" in row and row["step"] > result.resumed_from_step
    ]
    eval_seconds = dict(zip(session_eval_steps, timed_loss.eval_pass_seconds, strict=False))
    base_test, finetuned_test = measured["base_test"], measured["finetuned_test"]
    return {
        "base_model": base_info,
        "base_test_perplexity": base_test["perplexity"],
        "finetuned_test_perplexity": finetuned_test["perplexity"],
        "base_test_loss": base_test["loss"],
        "finetuned_test_loss": finetuned_test["loss"],
        "test_tokens": finetuned_test["n_tokens"],
        "test_blocks": finetuned_test["n_blocks"],
        "final_val_loss": result.final_val_loss,
        "steps": result.steps,
        "steps_per_epoch": steps_per_epoch,
        "resumed_from_step": result.resumed_from_step,
        "train_tokens_per_second": result.tokens_per_second,
        "mfu": measured["throughput"]["mfu"],
        "throughput": measured["throughput"],
        "n_trainable_parameters": measured["n_trainable"],
        "training_stats": training_stats(result.history, steps_per_epoch, eval_seconds),
        "config": asdict(config),
        "sampling_defaults": sampling.to_dict(),
    }


def finetune(
    base_dir: str | Path,
    dataset,
    config: FinetuneConfig,
    out_dir: str | Path,
    checkpoint_root: Path | None = None,
    base_info: dict | None = None,
    sampling: SamplingConfig | None = None,
    log_fn: Callable[[dict], None] | None = None,
) -> FinetuneResult:
    """Fine-tune the base in ``base_dir`` on ``dataset``; save into ``out_dir``.

    ``dataset``: the ``finetune_dataset`` DatasetDict, its ``save_to_disk`` folder, or a table with
    ``split, poem_id, input_ids`` (see ``finetune_splits``).
    """
    import torch

    from genai_assets.training.distributed import rank_device
    from genai_assets.training.loop import resolve_precision

    log = log_fn or (lambda row: None)
    base_info = base_info or {"name": str(base_dir)}
    device = rank_device()  # under torchrun + nccl: this rank's own GPU
    precision = resolve_precision(config.precision, device)
    # LoRA: the frozen base in the half type (half the memory; it is never updated, so no fp32 copy is
    # needed); peft keeps the adapters in fp32. Full fine-tuning: fp32 master weights under autocast.
    model, tokenizer, dataset = load_checked_base(
        base_dir, dataset, config, precision.autocast_dtype if config.lora else None
    )
    batches = prepare_batches(dataset, config, tokenizer.pad_token_id, poem_start_id(tokenizer))

    model.to(device)
    torch.manual_seed(config.seed)
    base_test = heldout_perplexity(model, batches.test_rows, precision)
    log({"event": "base test perplexity", **base_test})
    model, trainable, n_trainable = wrap_lora(model, config)
    run = train_finetune(
        model, tokenizer, batches, config, trainable, checkpoint_root,
        str(base_info.get("revision", "")), device, log,
    )  # fmt: skip
    if config.lora:
        # Merge in fp32 (a half-precision base is cast back first), so the saved folder is fp32 as always.
        model = model.float().merge_and_unload()
    finetuned_test = heldout_perplexity(model, batches.test_rows, precision)
    log({"event": "fine-tuned test perplexity", **finetuned_test})
    measured = {
        "base_test": base_test,
        "finetuned_test": finetuned_test,
        "throughput": run_throughput(model, run.result, config.block_size, device),
        "n_trainable": n_trainable,
    }
    return save_run(model, tokenizer, out_dir, run, measured, config, base_info, sampling or config.sampling)


def save_run(
    model,
    tokenizer,
    out_dir: str | Path,
    run: TrainedRun,
    measured: dict,
    config: FinetuneConfig,
    base_info: dict,
    sampling: SamplingConfig,
) -> FinetuneResult:
    """Write the model folder (rank 0 only under torchrun) and gather the run's ``FinetuneResult``."""
    from genai_assets.training.distributed import is_main_process

    result = run.result
    metrics = finetune_metrics(
        result, run.timed_loss, run.steps_per_epoch, measured, config, base_info, sampling
    )
    if is_main_process():  # under torchrun, rank 0 alone writes the model folder
        save_finetuned(model, tokenizer, out_dir, sampling, metrics, stop_token_ids(tokenizer))
    return FinetuneResult(
        steps=result.steps,
        resumed_from_step=result.resumed_from_step,
        base_test=measured["base_test"],
        finetuned_test=measured["finetuned_test"],
        final_val_loss=result.final_val_loss,
        tokens_per_second=result.tokens_per_second,
        history=result.history,
        training_stats=metrics["training_stats"],
        samples=result.samples,
        n_trainable_parameters=measured["n_trainable"],
        train_seconds=run.train_seconds,
        metrics=metrics,
        throughput=measured["throughput"],
    )


def run_throughput(model, result, seq_len: int, device) -> dict:
    """Tokens/s and MFU of the run (``genai_assets.training.throughput``), over every rank's device."""
    from genai_assets.training.distributed import active_world
    from genai_assets.training.throughput import throughput_figures

    world = active_world()
    return throughput_figures(
        model, result.tokens_per_second, seq_len, device, n_devices=world[1] if world else 1,
        precision=result.precision,
    )  # fmt: skip


def save_finetuned(
    model, tokenizer, out_dir, sampling: SamplingConfig, metrics: dict, stops: list[int]
) -> None:
    """``save_pretrained`` (safetensors) + tokenizer + ``generation_config.json`` + card stub + metrics."""
    from transformers import GenerationConfig

    from genai_assets.finetune.model_card import model_card_stub

    out_dir = Path(out_dir)
    model = model.to("cpu")
    model.generation_config = GenerationConfig(
        **sampling.generate_kwargs(),
        eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=poem_start_id(tokenizer),
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "metrics.json").write_text(
        json.dumps(metrics, indent=2, default=float) + "\n", encoding="utf-8"
    )
    (out_dir / "README.md").write_text(model_card_stub(metrics), encoding="utf-8")
