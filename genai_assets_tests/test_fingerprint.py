"""One fingerprint helper for resumable runs (scratch models and fine-tune): stable across the merge."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from genai_assets.finetune.train import FinetuneConfig, finetune_fingerprint
from genai_assets.training.checkpoint import run_fingerprint
from genai_assets.training.scratch_runs import SHORT_FINGERPRINT, checkpoint_folder


class FakeTokenizer:
    def __len__(self) -> int:
        return 321


def test_the_helper_gives_the_fingerprints_the_two_old_functions_gave(tmp_path):
    """Checkpoints written before the merge still resume: the same hex digests as before."""
    parts = ({"n_layer": 2, "dropout": 0.0}, {"max_steps": 6}, 4, {"train": {"n_tokens": 9}})
    old_scratch = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]
    assert checkpoint_folder(tmp_path, run_fingerprint(*parts)).name == f"run-{old_scratch}"
    assert SHORT_FINGERPRINT == 12

    config = FinetuneConfig()
    sequences = [np.arange(5), np.arange(3, 9)]
    relevant = {key: value for key, value in config.__dict__.items() if key not in FINETUNE_LENGTH_FIELDS}
    relevant["lora_target_modules"] = list(relevant["lora_target_modules"])
    old = hashlib.sha256(json.dumps([relevant, "rev1", 321], sort_keys=True).encode())
    for sequence in sequences:
        old.update(np.asarray(sequence, dtype=np.int64).tobytes())
    assert finetune_fingerprint(config, "rev1", FakeTokenizer(), sequences) == old.hexdigest()


FINETUNE_LENGTH_FIELDS = {
    "epochs", "max_steps", "eval_every", "eval_batches", "sample_every", "sample_max_new_tokens",
    "checkpoint_every", "resume", "perplexity_max_blocks", "sampling",
}  # fmt: skip


def test_a_fingerprint_follows_settings_and_tokens_but_not_the_run_length():
    sequences = [np.arange(5)]
    base = finetune_fingerprint(FinetuneConfig(), "r", FakeTokenizer(), sequences)
    assert finetune_fingerprint(FinetuneConfig(max_steps=500), "r", FakeTokenizer(), sequences) == base
    assert finetune_fingerprint(FinetuneConfig(learning_rate=5e-4), "r", FakeTokenizer(), sequences) != base
    assert finetune_fingerprint(FinetuneConfig(), "r", FakeTokenizer(), [np.arange(1, 6)]) != base
    assert run_fingerprint(1, arrays=[np.arange(3)]) != run_fingerprint(1, arrays=[np.arange(4)])
