"""The evaluation assets end to end on a temp lake: tiny GPT-2 models, synthetic poems, human eval."""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from genai_assets.defs._io_manager import ParquetIOManager
from genai_assets.defs._resources import DataLake
from genai_assets.defs.evaluation import evaluation, human_eval_results, human_eval_sheet
from genai_assets.evaluation.metrics import bleu_score
from genai_assets_tests.test_publish_hub import save_tiny_gpt2

WORDS = [
    "moon",
    "sea",
    "night",
    "light",
    "day",
    "gray",
    "rose",
    "love",
    "heart",
    "art",
    "bright",
    "star",
    "far",
    "sky",
    "high",
    "wind",
    "mind",
]


def synthetic_poems(n_poems: int = 48, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(n_poems):
        lines = [" ".join(rng.choice(WORDS, size=5)) for _ in range(int(rng.integers(4, 7)))]
        split = "test" if index % 4 == 0 else "val" if index % 4 == 1 else "train"
        rows.append({"poem_id": f"p{index:03d}", "text": "\n".join(lines), "split": split})
    return pd.DataFrame(rows)


@dg.asset(name="cleansed_poems")
def cleansed_poems_stub() -> pd.DataFrame:
    return synthetic_poems()


def _materialize(lake_root, selection, run_config=None, raise_on_error=True):
    resources = {"io_manager": ParquetIOManager(root=str(lake_root)), "lake": DataLake(root=str(lake_root))}
    return dg.materialize(
        [cleansed_poems_stub, evaluation, human_eval_sheet, human_eval_results],
        selection=selection,
        resources=resources,
        run_config=run_config or {},
        raise_on_error=raise_on_error,
    )


TINY_RUN = {
    "ops": {"evaluation": {"config": {"max_perplexity_poems": 6, "n_prompts": 4, "max_new_tokens": 10}}}
}


@pytest.fixture(scope="module")
def evaluated_lake(tmp_path_factory):
    """A lake with two tiny GPT-2 models (no scratch/RNN folders) after evaluation + sheet + results."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("lake")
    save_tiny_gpt2(root / "models" / "base_lm", seed=0)
    finetuned = save_tiny_gpt2(root / "models" / "finetuned_lm", seed=1)
    # The fine-tuned model knows the poem start marker, as genai_assets.finetune makes it.
    tokenizer = AutoTokenizer.from_pretrained(finetuned)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|startofpoem|>"]})
    model = AutoModelForCausalLM.from_pretrained(finetuned)
    model.resize_token_embeddings(len(tokenizer))
    model.save_pretrained(finetuned)
    tokenizer.save_pretrained(finetuned)
    tokenizer_dir = tmp_path_factory.mktemp("gpt2_tokenizer")
    AutoTokenizer.from_pretrained(root / "models" / "base_lm").save_pretrained(tokenizer_dir)
    save_scratch_models(root, tokenizer_dir)
    result = _materialize(
        root, ["cleansed_poems", "evaluation", "human_eval_sheet", "human_eval_results"], TINY_RUN
    )
    return root, result


def save_scratch_models(root, tokenizer_dir):
    """A tiny scratch GPT (context 16 tokens: shorter than the prompts) and RNN/GRU folders + summary."""
    import torch

    from genai_assets.models.loading import save_scratch_model
    from genai_assets.models.rnn import RNNConfig, RNNLanguageModel
    from genai_assets.models.transformer import GPT, GPTConfig

    torch.manual_seed(0)
    vocab = 50257  # the GPT-2 tokenizer of the tiny models
    gpt = GPT(GPTConfig(vocab_size=vocab, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0))
    save_scratch_model(root / "models" / "scratch_transformer", gpt, tokenizer_dir, {}, "card")
    for kind in ("rnn", "gru"):
        rnn = RNNLanguageModel(RNNConfig(kind=kind, vocab_size=vocab, n_embd=16, hidden_size=16, n_layer=1))
        save_scratch_model(root / "models" / f"rnn_{kind}", rnn, tokenizer_dir, {}, "card")
    summary = {"best": "gru", "selection": "lowest validation loss", "models": {}}
    (root / "models" / "rnn_baselines.json").write_text(json.dumps(summary))


def test_evaluation_compares_existing_models_and_skips_missing_ones(evaluated_lake):
    root, result = evaluated_lake
    assert result.success
    report = json.loads((root / "reports" / "evaluation.json").read_text())
    names = ["base_lm", "finetuned_lm", "scratch_transformer", "rnn_baselines", "reference"]
    assert [row["model"] for row in report["models"]] == names
    assert [row["kind"] for row in report["models"]] == ["transformers"] * 2 + ["scratch"] * 2 + [
        "real poems"
    ]
    assert report["skipped"] == {}
    assert report["notes"] == {"rnn_baselines": "best RNN by validation loss (lowest validation loss): gru"}
    for row in report["models"][:4]:
        assert row["perplexity"] > 1 and 0 < row["bits_per_char"] < 30
        assert 0 < row["ood_bits_per_char"] < 30  # the out-of-domain poems, scored for every model
        assert 0 <= row["distinct_1"] <= 1 and 0 <= row["self_bleu"] <= 100
    reference = report["models"][4]
    # Synthetic poems have 4-6 lines: 2 prompt lines + the next 2-4 real lines.
    assert reference["perplexity"] is None and 4 <= reference["lines_per_poem"] <= 6
    # BLEU in the report is sacrebleu's over the stored continuations vs the stored references.
    samples = pd.read_parquet(root / "reports" / "evaluation_samples.parquet")
    assert len(samples) == 5 * 4 and samples.groupby("model").size().tolist() == [4] * 5
    assert (samples["prompt"].str.count("\n") == 2).all()  # two prompt lines, each ending in \n
    markdown = (root / "reports" / "evaluation.md").read_text()
    assert "| model" in markdown and "`rnn_baselines`: best RNN by validation loss" in markdown
    for plot in ("evaluation_quality.png", "evaluation_diversity_form.png"):
        assert (root / "reports" / plot).stat().st_size > 1000
    metadata = result.asset_materializations_for_node("evaluation")[0].metadata
    assert "evaluation_table" in metadata and "model_choice" in metadata
    assert metadata["finetuned_lm/bleu"].value == pytest.approx(report["models"][1]["bleu"], abs=1e-9)
    # The reported BLEU is sacrebleu's over the scored continuations and the real lines.
    finetuned = samples[samples["model"] == "finetuned_lm"]
    assert report["models"][1]["bleu"] == pytest.approx(
        bleu_score(finetuned["scored_text"].tolist(), finetuned["reference"].tolist())
    )


def test_missing_models_are_skipped_with_a_note(evaluated_lake, tmp_path):
    import shutil

    root, _ = evaluated_lake
    lake = tmp_path / "lake"
    shutil.copytree(root / "models" / "finetuned_lm", lake / "models" / "finetuned_lm")
    result = _materialize(lake, ["cleansed_poems", "evaluation"], TINY_RUN)
    report = json.loads((lake / "reports" / "evaluation.json").read_text())
    assert [row["model"] for row in report["models"]] == ["finetuned_lm", "reference"]
    assert report["skipped"] == {
        "base_lm": f"no model folder at {lake / 'models' / 'base_lm'}",
        "scratch_transformer": f"no model folder at {lake / 'models' / 'scratch_transformer'}",
        "rnn_baselines": f"no {lake / 'models' / 'rnn_baselines.json'} (rnn_baselines not materialized)",
    }
    metadata = result.asset_materializations_for_node("evaluation")[0].metadata
    assert "`rnn_baselines`: no " in metadata["skipped_models"].value


def test_evaluation_is_reproducible_with_its_seed(evaluated_lake, tmp_path):
    root, _ = evaluated_lake
    first = pd.read_parquet(root / "reports" / "evaluation_samples.parquet")
    assert _materialize(root, ["evaluation"], TINY_RUN).success
    again = pd.read_parquet(root / "reports" / "evaluation_samples.parquet")
    pd.testing.assert_frame_equal(first, again)


def test_human_eval_sheet_and_no_ratings_yet(evaluated_lake):
    root, result = evaluated_lake
    sheet_metadata = result.asset_materializations_for_node("human_eval_sheet")[0].metadata
    folder = root / "human_eval" / f"sheet-{sheet_metadata['sheet_id'].value}"
    assert {"sheet.csv", "sheet.html", "key.csv"} <= {path.name for path in folder.iterdir()}
    assert sheet_metadata["compared"].value == "finetuned_lm vs base_lm"
    results_metadata = result.asset_materializations_for_node("human_eval_results")[0].metadata
    assert results_metadata["status"].value == "no ratings yet"
    assert "No ratings yet" in results_metadata["note"].value


def test_human_eval_results_from_ratings_and_malformed_file(evaluated_lake):
    root, _ = evaluated_lake
    (key_path,) = (root / "human_eval").glob("sheet-*/key.csv")
    key = pd.read_csv(key_path, dtype=str)
    ratings_dir = root / "human_eval" / "ratings"
    # Always prefer the fine-tuned model.
    choices = ["1" if model == "finetuned_lm" else "2" for model in key["poem_1_model"]]
    pd.DataFrame(
        {"sheet_id": key["sheet_id"], "item_id": key["item_id"], "rater": "ann", "choice": choices}
    ).to_csv(ratings_dir / "ratings_ann.csv", index=False)
    result = _materialize(root, ["human_eval_results"])
    metadata = result.asset_materializations_for_node("human_eval_results")[0].metadata
    assert metadata["status"].value == "rated"
    assert metadata["win_rate/base_lm"].value == 0.0  # model A = base_lm (sorted); it never wins
    summary = json.loads((root / "reports" / "human_eval.json").read_text())
    assert (summary["wins_a"], summary["wins_b"], summary["ties"]) == (0, len(key), 0)

    (ratings_dir / "ratings_bob.csv").write_text(
        f"sheet_id,item_id,rater,choice\n{key['sheet_id'][0]},q01,bob,3\n"
    )
    failed = _materialize(root, ["human_eval_results"], raise_on_error=False)
    assert not failed.success
    message = "".join(
        str(event.event_specific_data.error) for event in failed.all_events if event.is_step_failure
    )
    assert "ratings_bob.csv, row 1, column choice: '3'" in message


def test_evaluation_config_is_validated(evaluated_lake):
    # Refused by EvaluationSettings when the step builds its config, before the asset does any work.
    root, _ = evaluated_lake
    bad = {"ops": {"evaluation": {"config": {"n_prompts": 1, "models": ["finetuned_lm", "gpt5"]}}}}
    result = _materialize(root, ["evaluation"], bad, raise_on_error=False)
    message = "".join(
        str(event.event_specific_data.error) for event in result.all_events if event.is_step_failure
    )
    assert not result.success
    assert "n_prompts must be >= 2" in message and "'gpt5'" in message
