"""Data-parallel training through torchrun (CPU, gloo): the same loop with world size 1 or 2.

Each test launches real ``torchrun`` processes (``python -m torch.distributed.run``) on a tiny GPT
(2 layers, 64-d) and a tiny token_arrays folder, one thread per rank.
"""

import json
import os
import subprocess

import dagster as dg
import pytest
import torch

from genai_assets.models.sampling_settings import SamplingConfig
from genai_assets.stages.distributed_worker import RESULT_FILE, write_scratch_gpt_spec
from genai_assets.training.checkpoint import STATE_FILE, has_checkpoint
from genai_assets.training.distributed import (
    FAULT_ENV,
    DistributedConfig,
    shard_batch,
    torchrun_command,
    worker_environment,
)
from genai_assets.training.loop import TrainLoopConfig
from genai_assets.training.scratch_runs import Sampling
from genai_assets_tests.helpers import POEM_LINES

STEPS, CHECKPOINT_EVERY, FAULT_STEP = 12, 4, 6


def write_tiny_token_arrays(root):
    """A tiny contract-4 folder + poem tokenizer, built with the tokens stage's own library."""
    import pandas as pd

    from genai_assets.text.token_arrays import encode_splits, write_token_arrays
    from genai_assets.text.tokenization import TokenizerTrainingConfig, train_bpe_tokenizer

    lines = POEM_LINES[:6]
    texts = ["\n".join(lines[(i + k) % len(lines)] for k in range(4)) for i in range(40)]
    splits = ["val" if i % 10 == 0 else "test" if i % 10 == 1 else "train" for i in range(len(texts))]
    table = pd.DataFrame({"poem_id": [f"p{i}" for i in range(len(texts))], "text": texts, "split": splits})
    tokenizer = train_bpe_tokenizer(texts, TokenizerTrainingConfig(vocab_size=300, min_frequency=1))
    tokenizer_dir = root / "poem_tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    folder = root / "token_arrays"
    folder.mkdir(parents=True)
    meta = write_token_arrays(encode_splits(tokenizer, table), folder, tokenizer, tokenizer_dir)
    return folder, meta


def write_spec(run_dir, token_dir, meta) -> str:
    loop = TrainLoopConfig(
        max_steps=STEPS, learning_rate=3e-3, warmup_steps=2, eval_every=6, eval_batches=2,
        checkpoint_every=CHECKPOINT_EVERY,
    )  # fmt: skip
    path = write_scratch_gpt_spec(
        run_dir, token_dir, meta, {"block_size": 32, "n_layer": 2, "n_head": 2, "n_embd": 64, "dropout": 0.0},
        loop,
        batch_size=4,  # the global micro-batch: 4 rows on one rank, or 2 + 2 on two
        sampling=Sampling(prompts=[""], settings=SamplingConfig(max_new_tokens=4, repetition_penalty=1.0)),
        checkpoint_dir=run_dir / "checkpoints" / "run-test",
        seed=1,
    )  # fmt: skip
    return str(path)


def torchrun(spec_path: str, nproc: int, fault: str | None = None) -> subprocess.CompletedProcess:
    config = DistributedConfig(nproc_per_node=nproc)
    env = {**os.environ, **worker_environment(config)}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.run(
        torchrun_command(config, ["--spec", spec_path]), env=env, capture_output=True, text=True, timeout=240
    )


def result_of(run_dir) -> dict:
    return json.loads((run_dir / "output" / RESULT_FILE).read_text())


@pytest.fixture(scope="module")
def token_data(tmp_path_factory):
    return write_tiny_token_arrays(tmp_path_factory.mktemp("tokens"))


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, token_data):
    run_dir = tmp_path_factory.mktemp("two")
    completed = torchrun(write_spec(run_dir, *token_data), nproc=2)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return result_of(run_dir)


def test_shard_batch_splits_rows_contiguously_and_keeps_structure():
    x = torch.arange(10).reshape(5, 2)
    parts = [shard_batch({"input_ids": x, "labels": x + 1}, rank, 2) for rank in range(2)]
    assert [p["input_ids"].shape[0] for p in parts] == [3, 2]
    assert torch.equal(torch.cat([p["input_ids"] for p in parts]), x)
    inputs, targets = shard_batch((x, x + 1), 1, 2)
    assert torch.equal(inputs, x[3:]) and torch.equal(targets, x[3:] + 1)


def test_torchrun_command_and_config_validation():
    command = torchrun_command(DistributedConfig(nproc_per_node=2), ["--spec", "s.json"])
    assert command[1:4] == ["-m", "torch.distributed.run", "--nproc_per_node=2"]
    assert (
        "--standalone" in command
        and command[-3:] == ["genai_assets.stages.distributed_worker", "--spec", "s.json"][-3:]
    )
    multi = torchrun_command(DistributedConfig(nproc_per_node=8, nnodes=2, rdzv_endpoint="head:29400"), [])
    assert "--nnodes=2" in multi and "--rdzv_endpoint=head:29400" in multi and "--standalone" not in multi
    with pytest.raises(ValueError, match="nnodes > 1 needs rdzv_endpoint"):
        DistributedConfig(nnodes=2)
    with pytest.raises(ValueError, match="backend must be one of"):
        DistributedConfig(backend="mpi")


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path, token_data, two_process_run):
    completed = torchrun(write_spec(tmp_path, *token_data), nproc=1)
    assert completed.returncode == 0, completed.stderr[-3000:]
    one = result_of(tmp_path)
    two = two_process_run
    assert one["backend"] == two["backend"] == "gloo"
    assert_same_training(one, two, world_sizes=(1, 2))


def assert_same_training(one: dict, other: dict, world_sizes: tuple[int, int]) -> None:
    """Two runs of the tiny spec over the same global batches: equal token counts, a loss curve that
    learns, and the same curve and validation loss up to the floating-point summation order."""
    assert (one["world_size"], other["world_size"]) == world_sizes
    assert one["tokens_seen"] == other["tokens_seen"] == STEPS * 4 * 32  # every rank's tokens counted once
    one_curve = [row["train_loss"] for row in one["history"]]
    other_curve = [row["train_loss"] for row in other["history"]]
    assert len(one_curve) == len(other_curve) == STEPS
    assert other_curve[-1] < other_curve[0] - 0.5  # it learns
    assert max(abs(a - b) for a, b in zip(one_curve, other_curve, strict=True)) < 1e-4
    assert abs(one["val_loss"] - other["val_loss"]) < 1e-4


def test_a_killed_rank_fails_the_run_and_the_next_run_resumes_from_the_last_checkpoint(
    tmp_path, token_data, two_process_run
):
    spec_path = write_spec(tmp_path, *token_data)
    failed = torchrun(spec_path, nproc=2, fault=f"1:{FAULT_STEP}")
    assert failed.returncode != 0
    assert f"exiting at step {FAULT_STEP}" in failed.stderr
    assert "exitcode" in failed.stderr and "rank      : 1" in failed.stderr  # torchrun names the dead rank
    assert not (tmp_path / "output" / RESULT_FILE).exists()
    checkpoint = tmp_path / "checkpoints" / "run-test"
    assert has_checkpoint(checkpoint)
    saved = torch.load(checkpoint / STATE_FILE, weights_only=True)
    assert saved["step"] == CHECKPOINT_EVERY and saved["world_size"] == 2 and len(saved["rng_by_rank"]) == 2

    resumed = torchrun(spec_path, nproc=2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = result_of(tmp_path)
    assert result["resumed_from_step"] == CHECKPOINT_EVERY
    # The resumed run ends where the uninterrupted one did (same data order, weights and RNG).
    resumed_curve = [row["train_loss"] for row in result["history"]]
    uninterrupted = [row["train_loss"] for row in two_process_run["history"]]
    assert max(abs(a - b) for a, b in zip(resumed_curve, uninterrupted, strict=True)) < 1e-6
    assert result["val_loss"] == pytest.approx(two_process_run["val_loss"], abs=1e-6)


def materialize_scratch(lake_root, instance, overrides: dict):
    from genai_assets.definitions import build_definitions
    from genai_assets.defs._presets import preset_run_config

    config = preset_run_config("tiny")["ops"]["scratch_transformer"]["config"]
    job = build_definitions(lake_root=str(lake_root)).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        asset_selection=[dg.AssetKey("scratch_transformer")],
        run_config={"ops": {"scratch_transformer": {"config": {**config, **overrides}}}},
        instance=instance,
    )


def test_scratch_transformer_asset_trains_under_torchrun_via_pipes_and_resumes_after_a_killed_rank(
    lake_root, monkeypatch
):
    from genai_assets.models.loading import load_scratch_model
    from genai_assets_tests.test_scratch_assets import write_token_arrays

    write_token_arrays(lake_root)
    distributed = {"distributed": {"nproc_per_node": 2}}
    instance = dg.DagsterInstance.ephemeral()
    monkeypatch.setenv(FAULT_ENV, "1:5")  # the tiny preset checkpoints at step 3 of 6
    with pytest.raises(dg.Failure, match="resumes from the checkpoint of step 3") as failure:
        materialize_scratch(lake_root, instance, distributed)
    assert "a training process exited or was killed" in str(failure.value)

    monkeypatch.delenv(FAULT_ENV)
    result = materialize_scratch(lake_root, instance, distributed)
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["world_size"].value == 2 and metadata["backend"].value == "gloo"
    assert metadata["resumed_from_step"].value == 3 and metadata["steps"].value == 6
    assert "trained data-parallel on 2 processes" in metadata["notes"].value
    # Rank 0's progress arrived through Pipes as log lines of the asset's run.
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("[rank 0/2] step 6/6 train_loss" in message for message in messages)
    assert any("2 training process(es), backend gloo" in message for message in messages)
    model, _ = load_scratch_model(lake_root / "models" / "scratch_transformer")  # (model, tokenizer)
    assert (
        model.config.n_layer == 2
        and not (lake_root / "checkpoints" / "scratch_transformer" / "torchrun" / "output").exists()
    )


def test_finetuned_lm_asset_fine_tunes_under_torchrun(lake_root):
    import copy

    from genai_assets.defs import finetune as stage
    from genai_assets.defs._io_manager import ParquetIOManager
    from genai_assets.defs._resources import DataLake
    from genai_assets_tests.test_finetune_support import fixture_poems

    fixture_poems().to_parquet(lake_root / "cleansed_poems.parquet")
    ops = copy.deepcopy(stage.PRESETS["tiny"])
    ops["finetuned_lm"]["config"].update(max_steps=4, distributed={"nproc_per_node": 2})
    names = ("base_lm", "finetune_dataset", "finetuned_lm")
    result = dg.materialize(
        [
            dg.AssetSpec("cleansed_poems"),
            *(asset for asset in stage.defs.assets if asset.key.path[-1] in names),
        ],
        resources={
            "io_manager": ParquetIOManager(root=str(lake_root)),
            "lake": DataLake(root=str(lake_root)),
        },
        run_config={"ops": {name: ops[name] for name in names if name in ops}},
    )
    assert result.success
    metadata = result.asset_materializations_for_node("finetuned_lm")[0].metadata
    assert metadata["world_size"].value == 2 and metadata["backend"].value == "gloo"
    assert metadata["steps"].value == 4
    assert metadata["finetuned_test_perplexity"].value < metadata["base_test_perplexity"].value
    saved = json.loads((lake_root / "models" / "finetuned_lm" / "metrics.json").read_text())
    assert saved["steps"] == 4 and "bits_per_char" in saved  # rank 0's folder, completed by the asset
