"""The playground's functions without a browser: model listing and clear errors, validated knobs,
streaming equal to the one-shot generation, attention maps, and the blind rating flow on SQLite."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from genai_assets.evaluation.human_eval import build_sheet, mark_current_sheet, sheet_folder, write_sheet
from genai_assets.evaluation.ratings_db import RatingsStore
from genai_assets.generation import generate_poems
from genai_assets.generation.settings import SamplingConfig
from genai_assets.models.loading import save_scratch_model
from genai_assets.models.rnn import RNNConfig, RNNLanguageModel
from genai_assets.playground.core import (
    Playground,
    RatingSession,
    attention_figure,
    preset_knobs,
    sampling_from_form,
    stream_text,
)
from genai_assets_tests.helpers import vote_concurrently
from genai_assets_tests.test_generation_cli import save_scratch_gpt
from genai_assets_tests.test_publish_hub import save_tiny_gpt2

FORM = dict(temperature=1.0, top_k=50, top_p=0.95, repetition_penalty=1.2, no_repeat_ngram_size=2)


def build_playground_lake(root):
    """A lake with a tiny fine-tuned GPT-2, a tiny scratch GPT, a corrupt folder and a 3-item sheet."""
    models = root / "models"
    save_tiny_gpt2(models / "finetuned_lm", seed=1)
    # Built outside the lake and moved in: the lake holds only the files it expects.
    work = root.parent / f"{root.name}_work"
    folder, tokenizer = save_scratch_gpt(work)
    folder.rename(models / "scratch_transformer")
    torch.manual_seed(0)
    lstm = RNNLanguageModel(
        RNNConfig(kind="lstm", vocab_size=len(tokenizer), n_embd=8, hidden_size=8, n_layer=1)
    )
    save_scratch_model(models / "rnn_lstm", lstm, work / "tokenizer", {}, "# card\n")
    (models / "rnn_gru").mkdir()
    (models / "rnn_gru" / "config.json").write_text("{not json")
    return write_playground_sheet(root)


def write_playground_sheet(root):
    """The current human_eval sheet of the lake at ``root``: 3 items, finetuned_lm vs base_lm."""
    samples = pd.DataFrame(
        [
            {
                "prompt_id": f"p{index}",
                "prompt": f"Prompt {index}",
                "model": model,
                "text": f"{model} poem {index}",
            }
            for index in range(3)
            for model in ("finetuned_lm", "base_lm")
        ]
    )
    sheet = build_sheet(samples, "finetuned_lm", "base_lm", seed=7, max_items=3)
    human_eval = root / "human_eval"
    write_sheet(sheet, sheet_folder(human_eval, sheet.sheet_id))
    mark_current_sheet(human_eval, sheet.sheet_id)
    return sheet


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("playground_lake")
    sheet = build_playground_lake(root)
    return root, sheet


@pytest.fixture
def playground(lake, tmp_path):
    root, _ = lake
    return Playground.open(root, f"sqlite:///{tmp_path / 'ratings.db'}")


def test_models_are_listed_and_a_corrupt_folder_gives_one_clear_line(playground):
    assert playground.model_names() == ["finetuned_lm", "scratch_transformer", "rnn_gru", "rnn_lstm"]
    with pytest.raises(ValueError, match=r"config.json is not a valid JSON object .* corrupt"):
        playground.generator("rnn_gru")
    with pytest.raises(ValueError, match="No model folder 'nope'.*available: finetuned_lm"):
        playground.generator("nope")


def test_form_values_are_validated_with_messages():
    course = preset_knobs("course")
    assert (course["top_k"], course["repetition_penalty"], course["no_repeat_ngram_size"]) == (50, 1.2, 2)
    assert preset_knobs("greedy")["do_sample"] is False
    config = sampling_from_form("course", True, **FORM, max_new_tokens=20, seed=3)
    assert (config.top_p, config.max_new_tokens, config.seed) == (0.95, 20, 3)
    bad = [
        ({"top_p": 1.5}, "top_p must be in"),
        ({"temperature": 0}, "temperature must be > 0"),
        ({"max_new_tokens": 100000}, "max_new_tokens must be between 1 and 512"),
        ({"top_k": 2.5}, "top_k must be a whole number"),
        ({"seed": "abc"}, "seed must be a number"),
    ]
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            sampling_from_form("course", True, **{**FORM, "max_new_tokens": 20, "seed": 0, **change})
    with pytest.raises(ValueError, match="Unknown preset"):
        sampling_from_form("wild", True, **FORM, max_new_tokens=20, seed=0)


@pytest.mark.parametrize("model", ["finetuned_lm", "scratch_transformer", "rnn_lstm"])
def test_stream_equals_one_shot_generation_with_the_same_seed(playground, model):
    sampling = SamplingConfig(**FORM, max_new_tokens=12, seed=5)
    events = list(stream_text(playground, model, "The rose", sampling))
    assert events[-1].done and not any(event.done for event in events[:-1])
    assert [event.n_tokens for event in events[:-1]] == sorted(event.n_tokens for event in events[:-1])
    generator = playground.generator(model)
    (expected,) = generate_poems(generator.model, generator.tokenizer, ["The rose"], sampling)
    assert "The rose" + events[-1].text == expected["text"]
    assert events[-1].n_tokens == expected["n_new_tokens"] and events[-1].tokens_per_second > 0
    # Same seed again: the same text (what makes the side-by-side comparison fair).
    assert list(stream_text(playground, model, "The rose", sampling))[-1].text == events[-1].text


def test_attention_figure_for_the_scratch_transformer_only(playground):
    sampling = SamplingConfig(**FORM, max_new_tokens=8, seed=1)
    final = list(stream_text(playground, "scratch_transformer", "The rose", sampling))[-1]
    figure = attention_figure(playground, "scratch_transformer", final.ids)
    assert len(figure.axes) == 1 * 2  # 1 layer x 2 heads
    with pytest.raises(ValueError, match="not the scratch transformer"):
        attention_figure(playground, "finetuned_lm", final.ids)


def test_a_too_long_prompt_is_refused_with_a_message(playground):
    with pytest.raises(ValueError, match="context is 32 tokens"):
        list(stream_text(playground, "scratch_transformer", "word " * 40, SamplingConfig(max_new_tokens=5)))


def test_blind_rating_flow_stores_one_row_and_reveals_after_the_vote(lake, tmp_path):
    root, sheet = lake
    store = RatingsStore(f"sqlite:///{tmp_path / 'ratings.db'}")
    session = RatingSession(root, store)
    key = sheet.key.set_index("item_id")
    seen = []
    while (pair := session.next_pair("ann")) is not None:
        assert pair.sheet_id == sheet.sheet_id and {pair.left, pair.right} <= set(
            sheet.sheet["poem_1"]
        ) | set(sheet.sheet["poem_2"])
        picked = "left" if pair.left.startswith("finetuned_lm") else "right"  # always the fine-tuned poem
        stored, reveal = session.submit("ann", pair, picked)
        assert stored and "finetuned_lm" in reveal and "base_lm" in reveal
        assert session.submit("ann", pair, "tie")[0] is False  # a double click counts once
        seen.append((pair.item_id, pair.swapped))
    assert sorted(item for item, _ in seen) == sorted(sheet.sheet["item_id"])
    rows = store.ratings()
    assert len(rows) == 3 and set(rows["rater"]) == {"ann"}
    for row in rows.itertuples():  # the stored choice is in the sheet's numbering: the fine-tuned poem
        assert key.at[row.item_id, f"poem_{row.choice}_model"] == "finetuned_lm"
    assert session.progress("ann") == (3, 3) and session.progress("bob") == (0, 3)
    with pytest.raises(ValueError, match="Enter your name"):
        session.next_pair("   ")


def test_concurrent_raters_lose_and_duplicate_no_vote(tmp_path):
    """8 threads x 3 raters each vote every item twice at once: exactly one row per (rater, item)."""
    url = f"sqlite:///{tmp_path / 'ratings.db'}"
    RatingsStore(url).close()  # migrated once; each thread opens its own engine, as app processes do
    items = [f"q{item:02d}" for item in range(10)]
    outcomes = vote_concurrently(url, "sheet", items, raters=3, threads=8, repeats=2)
    rows = RatingsStore(url).ratings()
    assert len(rows) == 30 and sum(outcomes) == 30 and len(outcomes) == 160
    assert not rows.duplicated(["rater", "sheet_id", "item_id"]).any()


def test_schema_is_versioned_and_an_old_database_is_migrated(tmp_path):
    url = f"sqlite:///{tmp_path / 'ratings.db'}"
    old = RatingsStore(url, migrate=False)
    assert old.schema_version() == 0
    assert old.migrate(target=1) == 1  # what an earlier release created
    with old.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO ratings (sheet_id, item_id, rater, choice) VALUES ('s', 'q01', 'ann', '2')"
        )
    store = RatingsStore(url)  # opening with this release migrates to the current version
    assert store.schema_version() == 2
    rows = store.ratings()
    assert rows[["rater", "choice", "swapped"]].to_dict("records") == [
        {"rater": "ann", "choice": "2", "swapped": False}
    ]
    assert json.dumps(store.display_url).startswith('"sqlite')


def test_password_never_shown():
    store = RatingsStore("postgresql+psycopg2://user:s3cret@localhost:1/ratings", migrate=False)
    assert "s3cret" not in store.display_url and "***" in store.display_url
    assert torch.__version__  # the environment under test
