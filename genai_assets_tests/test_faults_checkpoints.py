"""Two runs of one training asset: a lock per asset, fingerprints inside checkpoints, data content hashed."""

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from genai_assets.finetune.train import prepare_checkpoint_dir
from genai_assets.training.checkpoint import (
    FINGERPRINT_FILE,
    TrainingLockedError,
    checkpoint_fingerprint,
    discard_run_checkpoint,
    has_checkpoint,
    prepare_checkpoint,
    remove_other_runs,
    save_checkpoint,
    training_lock,
)
from genai_assets.training.scratch_runs import locked_run_checkpoint, token_data_digest

HOLD_LOCK = """
import sys, time
from genai_assets.training.checkpoint import training_lock
with training_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()  # hold until the test closes our stdin
"""


@pytest.fixture
def other_process_holds(tmp_path):
    """Start a second Python process that holds the training lock of ``root`` until the test ends."""
    processes = []

    def hold(root):
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout.readline().strip() == "locked"
        return process

    yield hold
    for process in processes:
        process.stdin.close()
        process.wait(timeout=30)


def _token_dir(folder, train_ids, val_ids=(5, 6, 7)):
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = folder / "tokenizer"
    tokenizer_dir.mkdir(exist_ok=True)
    (tokenizer_dir / "tokenizer.json").write_text('{"model": "x"}')
    meta = {"dtype": "uint16", "vocab_size": 64, "tokenizer_dir": str(tokenizer_dir)}
    (folder / "meta.json").write_text(json.dumps(meta))
    np.asarray(train_ids, dtype=np.uint16).tofile(folder / "train.bin")
    np.asarray(val_ids, dtype=np.uint16).tofile(folder / "val.bin")
    return folder


def _save(folder, step=1):
    model = torch.nn.Linear(2, 2)
    save_checkpoint(folder, model, {"step": step})


def test_second_process_fails_fast_with_a_clear_message(tmp_path, other_process_holds):
    root = tmp_path / "checkpoints" / "scratch_transformer"
    holder = other_process_holds(root)
    started = time.perf_counter()
    with (
        pytest.raises(TrainingLockedError, match="Another run is training 'scratch_transformer'"),
        training_lock(root),
    ):
        pass
    assert time.perf_counter() - started < 5  # fails fast, does not wait
    holder.stdin.close()
    holder.wait(timeout=30)
    with training_lock(root):  # released by the other process: free again
        pass


def test_two_threads_exclude_each_other(tmp_path):
    root = tmp_path / "asset"
    inside, release, errors = threading.Event(), threading.Event(), []

    def first():
        with training_lock(root):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(10)
    try:
        with training_lock(root):
            pass
    except TrainingLockedError as error:
        errors.append(error)
    release.set()
    thread.join()
    assert len(errors) == 1


def test_run_folders_of_a_locked_asset_are_never_deleted(tmp_path, other_process_holds):
    base = tmp_path / "checkpoints" / "scratch_transformer"
    other_run = base / "run-bbbbbbbbbbbb"
    _save(other_run, step=7)
    token_dir = _token_dir(tmp_path / "tokens", [1, 2, 3, 4])
    other_process_holds(base)
    with (
        pytest.raises(TrainingLockedError),
        locked_run_checkpoint(base / "run-aaaaaaaaaaaa", token_dir, lambda row: None),
    ):
        pytest.fail("must not get here")
    assert has_checkpoint(other_run)
    with pytest.raises(RuntimeError, match="without holding its training lock"):
        remove_other_runs(base, keep="run-aaaaaaaaaaaa")
    assert has_checkpoint(other_run)


def test_under_the_lock_stale_runs_go_and_the_fingerprint_is_inside(tmp_path):
    base = tmp_path / "checkpoints" / "rnn_baselines" / "gru"
    _save(base / "run-old000000000", step=3)
    token_dir = _token_dir(tmp_path / "tokens", [1, 2, 3, 4])
    rows = []
    with locked_run_checkpoint(base / "run-new000000000", token_dir, rows.append) as folder:
        _save(folder, step=2)  # what the loop does at its first checkpoint
    assert sorted(p.name for p in base.iterdir()) == ["run-new000000000"]
    assert rows[0]["removed"] == ["run-old000000000"]
    stored = checkpoint_fingerprint(folder)
    assert stored and json.loads((folder / FINGERPRINT_FILE).read_text())["fingerprint"] == stored
    # Same settings and data: resumed. Same token COUNT, different content: discarded.
    with locked_run_checkpoint(base / "run-new000000000", token_dir, rows.append) as folder:
        assert has_checkpoint(folder)
    _token_dir(tmp_path / "tokens", [1, 2, 3, 9])
    with locked_run_checkpoint(base / "run-new000000000", token_dir, rows.append) as folder:
        assert not has_checkpoint(folder)
        assert checkpoint_fingerprint(folder) not in (None, stored)
    assert rows[-1]["action"] == "discarded"


def test_data_digest_covers_content_not_counts(tmp_path):
    first = token_data_digest(_token_dir(tmp_path / "a", [1, 2, 3, 4]))
    assert token_data_digest(_token_dir(tmp_path / "b", [1, 2, 3, 4])) == first
    assert token_data_digest(_token_dir(tmp_path / "c", [4, 3, 2, 1])) != first  # same sizes
    assert token_data_digest(_token_dir(tmp_path / "d", [1, 2, 3, 4], val_ids=(5, 6, 8))) != first


def test_save_checkpoint_carries_the_fingerprint_atomically(tmp_path):
    folder = tmp_path / "run"
    assert prepare_checkpoint(folder, "fp-1") == "fresh"
    assert not has_checkpoint(folder)
    _save(folder, step=1)
    _save(folder, step=2)  # replaced whole: the fingerprint must survive each swap
    assert has_checkpoint(folder) and checkpoint_fingerprint(folder) == "fp-1"
    assert prepare_checkpoint(folder, "fp-1") == "resume"
    assert prepare_checkpoint(folder, "fp-2") == "discarded"
    assert not has_checkpoint(folder) and checkpoint_fingerprint(folder) == "fp-2"
    _save(folder, step=1)
    assert prepare_checkpoint(folder, "fp-2", resume=False) == "discarded"


def test_finetune_fingerprint_lives_inside_the_loop_folder(tmp_path):
    root = tmp_path / "finetuned_lm"
    (root / "fingerprint.json").parent.mkdir(parents=True)
    (root / "fingerprint.json").write_text('{"fingerprint": "a"}')  # the old stamp beside the folder
    rows = []
    with training_lock(root):  # the fine-tune holds it; deleting other runs' folders requires it
        loop_dir = prepare_checkpoint_dir(root, "a", True, rows.append)
        _save(loop_dir, step=4)
        assert not (root / "fingerprint.json").exists()
        assert checkpoint_fingerprint(loop_dir) == "a" and loop_dir.name.startswith("run-")
        assert prepare_checkpoint_dir(root, "a", True, rows.append) == loop_dir and has_checkpoint(loop_dir)
        prepare_checkpoint_dir(root, "b", True, rows.append)
    assert not has_checkpoint(loop_dir) and rows == [
        {"event": "checkpoint discarded", "reason": "different run"}
    ]
    # One folder policy: only the current run's folder is left (the scratch models' run-* rule).
    assert [path.name for path in root.iterdir() if path.is_dir()] == ["run-b"]


def test_a_finished_run_leaves_the_folder_to_a_run_that_took_the_lock(tmp_path, other_process_holds):
    base = tmp_path / "checkpoints" / "scratch_transformer"
    folder = base / "run-aaaaaaaaaaaa"
    _save(folder, step=5)
    holder = other_process_holds(base)  # a second run with the same settings resumed from it
    assert discard_run_checkpoint(folder) is False and has_checkpoint(folder)
    holder.stdin.close()
    holder.wait(timeout=30)
    assert discard_run_checkpoint(folder) is True and not folder.exists()
