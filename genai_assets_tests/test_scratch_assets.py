"""The scratch assets materialize on the tiny preset, and their folders reload via load_scratch_model."""

import json

import dagster as dg
import pytest
import torch

from genai_assets.definitions import build_definitions
from genai_assets.defs._presets import preset_run_config
from genai_assets_tests.helpers import POEM_LINES


def make_poems(n_poems: int) -> list[str]:
    poems = []
    for index in range(n_poems):
        lines = [POEM_LINES[(index + offset * 3) % len(POEM_LINES)] for offset in range(4)]
        poems.append("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]))
    return poems


def write_token_arrays(lake_root, n_poems: int = 60, with_val: bool = True):
    """A tiny contract-4 folder (+ poem tokenizer) built with the tokens stage's own library."""
    import pandas as pd

    from genai_assets.text.token_arrays import encode_splits
    from genai_assets.text.token_arrays import write_token_arrays as write
    from genai_assets.text.tokenization import TokenizerTrainingConfig, train_bpe_tokenizer

    texts = make_poems(n_poems)
    splits = [
        "val" if with_val and i % 10 == 0 else "test" if i % 10 == 1 else "train" for i in range(n_poems)
    ]
    table = pd.DataFrame({"poem_id": [f"p{i}" for i in range(n_poems)], "text": texts, "split": splits})
    tokenizer = train_bpe_tokenizer(
        table["text"].tolist(), TokenizerTrainingConfig(vocab_size=300, min_frequency=1)
    )
    tokenizer_dir = lake_root / "models" / "poem_tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    folder = lake_root / "token_arrays"
    folder.mkdir(parents=True)
    return write(encode_splits(tokenizer, table), folder, tokenizer, tokenizer_dir)


def materialize(lake_root, names: list[str], extra: dict | None = None):
    defs = build_definitions(lake_root=str(lake_root))
    run_config = preset_run_config("tiny")
    ops = {name: run_config["ops"][name] for name in names}
    for name, overrides in (extra or {}).items():
        ops[name] = {"config": {**ops[name]["config"], **overrides}}
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        asset_selection=[dg.AssetKey(name) for name in names], run_config={"ops": ops}, raise_on_error=True
    )


def metadata_of(result, name: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == name]
    return event.materialization.metadata


def test_scratch_assets_materialize_and_reload(lake_root):
    from genai_assets.models.loading import is_scratch_model_folder, load_scratch_model

    meta = write_token_arrays(lake_root)
    names = ["scratch_transformer", "next_line_transformer", "rnn_baselines"]
    result = materialize(lake_root, names)
    assert result.success

    models = lake_root / "models"
    gpt_meta = metadata_of(result, "scratch_transformer")
    assert gpt_meta["steps"].value == 6
    assert gpt_meta["tokens_seen"].value == 6 * 4 * 32
    assert gpt_meta["val_bits_per_char"].value > 0
    assert (lake_root / "reports" / "scratch_transformer_loss.png").stat().st_size > 1000
    assert not list((lake_root / "checkpoints" / "scratch_transformer").iterdir())  # cleaned after success

    for name, model_type in [
        ("scratch_transformer", "genai_scratch_gpt"),
        ("next_line_transformer", "genai_scratch_encdec"),
        ("rnn_lstm", "genai_scratch_rnn"),
    ]:
        folder = models / name
        assert is_scratch_model_folder(folder)
        files = {path.name for path in folder.iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= files
        assert "README.md" in files
        assert json.loads((folder / "config.json").read_text())["model_type"] == model_type
        model, tokenizer = load_scratch_model(folder)
        assert tokenizer.bos_token_id == meta["bos_id"] and not model.training
        out = model.generate(torch.tensor([[meta["bos_id"], meta["bos_id"]]]), 5, temperature=0)
        assert out.shape[0] == 1 and out.shape[1] >= 1

    # The reloaded transformer computes exactly what the metrics say on the same input.
    model, _ = load_scratch_model(models / "scratch_transformer")
    assert model.config.n_layer == 2 and model.lm_head.weight is model.token_embedding.weight

    record = json.loads((models / "rnn_baselines.json").read_text())
    assert record["best"] in ("rnn", "lstm", "gru")
    assert set(record["models"]) == {"rnn", "lstm", "gru"}
    assert record["best_dir"] == str(models / f"rnn_{record['best']}")
    assert record["transformer"]["tokens_seen"] == gpt_meta["tokens_seen"].value
    assert "Transformer" in metadata_of(result, "rnn_baselines")["comparison"].value
    rnn_meta, line_meta = metadata_of(result, "rnn_baselines"), metadata_of(result, "next_line_transformer")
    # issue 16: every training asset reports tokens/s and MFU
    assert all(rnn_meta[f"{kind}_mfu"].value > 0 for kind in ("rnn", "lstm", "gru"))
    assert line_meta["mfu"].value > 0 and line_meta["tokens_per_second"].value > 0
    examples = metadata_of(result, "next_line_transformer")
    assert examples["train_pairs"].value > 0 and examples["val_pairs"].value > 0


def test_missing_token_arrays_is_a_clear_error(lake_root):
    with pytest.raises(Exception, match="token_arrays"):
        materialize(lake_root, ["scratch_transformer"])


def test_interrupted_asset_resumes_from_its_checkpoint(lake_root, monkeypatch):
    """Crash at training step 5 (after the step-3 checkpoint); the rerun resumes at step 3."""
    from genai_assets.training import scratch_runs

    write_token_arrays(lake_root, n_poems=40, with_val=False)  # also exercises the carved-out val split
    original = scratch_runs.device_loss
    calls = {"n": 0}

    def crashing_loss(model, batch):
        calls["n"] += model.training
        if calls["n"] == 5:
            raise RuntimeError("simulated interruption")
        return original(model, batch)

    monkeypatch.setattr(scratch_runs, "device_loss", crashing_loss)
    with pytest.raises(Exception, match="simulated interruption"):
        materialize(lake_root, ["scratch_transformer"])
    monkeypatch.setattr(scratch_runs, "device_loss", original)
    result = materialize(lake_root, ["scratch_transformer"])
    metadata = metadata_of(result, "scratch_transformer")
    assert metadata["resumed_from_step"].value == 3 and metadata["steps"].value == 6
    assert metadata["mfu"].value > 0 and metadata["precision"].value == "fp32"  # on CPU auto = fp32
    assert "validated on the last" in metadata["notes"].value


def test_library_stage_trains_and_saves_without_dagster(tmp_path):
    """stages.scratch is plain Python: a folder-layout object stands in for the DataLake resource."""
    from genai_assets.models.loading import load_scratch_model
    from genai_assets.stages.scratch import run_next_line_transformer
    from genai_assets.training.scratch_config import SCRATCH_PRESETS, NextLineTransformerConfig

    class Lake:
        path = tmp_path

        def model_dir(self, name):
            return tmp_path / "models" / name

        def checkpoint_dir(self, name):
            (tmp_path / "checkpoints" / name).mkdir(parents=True, exist_ok=True)
            return tmp_path / "checkpoints" / name

        def reports_dir(self):
            (tmp_path / "reports").mkdir(exist_ok=True)
            return tmp_path / "reports"

    write_token_arrays(tmp_path)
    config = NextLineTransformerConfig(**SCRATCH_PRESETS["next_line_transformer"]["tiny"])
    lines: list[str] = []
    trained = run_next_line_transformer(config, Lake(), log=lines.append)
    assert trained.run.train.steps == 6 and len(trained.run.examples) == 2
    assert trained.plot_path == tmp_path / "reports" / "next_line_transformer_loss.png"
    assert trained.plot_path.stat().st_size > 0 and any("step 6/6" in line for line in lines)
    assert not list((tmp_path / "checkpoints" / "next_line_transformer").glob("run-*"))  # cleaned up
    model, _ = load_scratch_model(trained.folder)
    assert model.config.d_model == 32
    with pytest.raises(ValueError, match="learning_rate must be a finite number, got nan"):
        NextLineTransformerConfig(learning_rate=float("nan"))
