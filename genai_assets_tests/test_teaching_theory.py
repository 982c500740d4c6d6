"""theory_notes on a tiny lake: tiny scratch GPT, tiny RNN/LSTM/GRU, hand-made embeddings, tiny GPT-2."""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import torch

from genai_assets.definitions import build_definitions
from genai_assets.teaching.theory import TheoryConfig, worked_attention_example

POEMS = [
    "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate",
    "The red rose opened in the garden\nThe sun rose above the quiet hill",
    "My love is like the night and the sea\nAnd death shall have no dominion",
] * 4


def build_tiny_lake(root):
    from genai_assets.finetune.base_model import build_tiny_gpt2
    from genai_assets.models.loading import save_scratch_model
    from genai_assets.models.rnn import RNNConfig, RNNLanguageModel
    from genai_assets.models.transformer import GPT, GPTConfig
    from genai_assets.text.tokenization import (
        TokenizerTrainingConfig,
        train_bpe_tokenizer,
        train_wordlevel_tokenizer,
    )

    training = TokenizerTrainingConfig(vocab_size=300, min_frequency=1)
    tokenizer = train_bpe_tokenizer(POEMS, training)
    tokenizer_dir = root / "models" / "poem_tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    train_wordlevel_tokenizer(POEMS, training).save_pretrained(root / "models" / "poem_tokenizer_wordlevel")
    splits = ["train", "validation", "test"] * (len(POEMS) // 3)
    pd.DataFrame({"text": POEMS, "split": splits}).to_parquet(root / "cleansed_poems.parquet")
    build_tiny_next_line_model(root, tokenizer_dir, len(tokenizer))
    torch.manual_seed(0)
    gpt = GPT(GPTConfig.from_preset("tiny", vocab_size=len(tokenizer)))
    save_scratch_model(root / "models" / "scratch_transformer", gpt, tokenizer_dir, {}, "tiny")
    for kind in ("rnn", "lstm", "gru"):
        model = RNNLanguageModel(RNNConfig(kind=kind, vocab_size=len(tokenizer), n_embd=16, hidden_size=24))
        save_scratch_model(root / "models" / f"rnn_{kind}", model, tokenizer_dir, {}, "tiny")
    words = ["love", "night", "sea", "death", "heart", "day", "rose", "sun"]
    embeddings = root / "embeddings"
    embeddings.mkdir(parents=True)
    pd.DataFrame({"word": words, "count": range(len(words), 0, -1)}).to_csv(
        embeddings / "vocab.tsv", sep="\t", index=False
    )
    np.save(
        embeddings / "svd_vectors.npy",
        np.random.default_rng(0).normal(size=(len(words), 4)).astype(np.float32),
    )
    model, gpt2_tokenizer = build_tiny_gpt2()
    model.save_pretrained(root / "models" / "finetuned_lm")
    gpt2_tokenizer.save_pretrained(root / "models" / "finetuned_lm")


def build_tiny_next_line_model(root, tokenizer_dir, vocab_size: int) -> None:
    from genai_assets.models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderTransformer
    from genai_assets.models.loading import save_scratch_model

    torch.manual_seed(0)
    config = EncoderDecoderConfig(
        vocab_size=vocab_size, max_source_len=32, max_target_len=33, n_encoder_layers=1, n_decoder_layers=2,
        n_head=2, d_model=16,
    )  # fmt: skip
    model = EncoderDecoderTransformer(config).eval()
    save_scratch_model(root / "models" / "next_line_transformer", model, tokenizer_dir, {}, "tiny")


def materialize_theory(root, raise_on_error=True, **config):
    job = build_definitions(lake_root=str(root)).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        asset_selection=[dg.AssetKey("theory_notes")],
        run_config={"ops": {"theory_notes": {"config": {"bptt_steps": 12, **config}}}},
        raise_on_error=raise_on_error,
    )


PART_TWO_FIGURES = (
    "head_profiles",
    "cross_attention",
    "tokenizer_comparison",
    "sampling_penalties",
    "finetune_lora",
)
HOSTILE_LINE = "Shall I compare thee <img src=x onerror=alert(1)><script>alert(2)</script> to a day?"


def assert_no_markup_from(line: str, html: str) -> None:
    """No tag or attribute of ``line`` became markup in ``html``; its text is shown as written."""
    from html.parser import HTMLParser

    class Collect(HTMLParser):
        tags, attributes, text = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.attributes.extend(name for name, _ in attrs)

        def handle_data(self, data):
            self.text.append(data)

    page = Collect(convert_charrefs=True)
    page.feed(html)
    assert "script" not in page.tags and "onerror" not in page.attributes
    assert line in "".join(page.text)


def test_worked_attention_example_matches_the_project_function():
    text, gap = worked_attention_example()
    assert gap < 1e-6
    assert "1.414" in text or "1.4142" in text  # √d_k printed
    assert "softmax per row" in text


def test_theory_notes_on_a_tiny_lake(lake_root):
    build_tiny_lake(lake_root)
    bits = {"base": {"in_domain": 2.0, "ood": 1.5}, "finetuned": {"in_domain": 1.8, "ood": 1.53}}
    bits["change"] = {k: bits["finetuned"][k] / bits["base"][k] - 1 for k in bits["base"]}
    metrics = {"n_trainable_parameters": 1000, "config": {"lora": True}, "bits_per_char": bits}
    metrics["training_stats"] = [
        {"epoch": 1, "training_loss": 3.1, "validation_loss": 2.9},
        {"epoch": 2, "training_loss": 2.7, "validation_loss": 2.8},
    ]
    (lake_root / "models" / "finetuned_lm" / "metrics.json").write_text(json.dumps(metrics))
    evaluation = {"models": [
        {"model": "finetuned_lm", "bits_per_char": 1.8, "bleu": 3.0, "chrf": 20.0},
        {"model": "scratch_transformer", "bits_per_char": 2.5, "bleu": 4.0, "chrf": 15.0},
        {"model": "reference", "bits_per_char": None, "bleu": None, "chrf": None},
    ]}  # fmt: skip
    (lake_root / "reports").mkdir(parents=True, exist_ok=True)
    (lake_root / "reports" / "evaluation.json").write_text(json.dumps(evaluation))
    # A run-config line carrying markup (issue 20): the page must show it as text.
    result = materialize_theory(lake_root, poem_line=HOSTILE_LINE)
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["worked_example_gap"] < 1e-6
    assert metadata["rotation_error"] < 1e-4  # PE(p + k) is a rotation of PE(p)
    assert metadata["sinusoidal_diagonal_spread"] < 1e-4 < metadata["learned_diagonal_spread"]
    for kind in ("rnn", "lstm", "gru"):
        assert metadata[f"{kind}_cell_parity_gap"] < 1e-5
    assert -1.0 <= metadata["contextual_same_sense"] <= 1.0
    reports = lake_root / "reports"
    markdown = (reports / "theory.md").read_text()
    for heading in (
        "Self-attention",
        "step by step",
        "Positional encoding",
        "Sigmoid",
        "Back-propagation",
        "Contextual",
        "Why several heads",
        "Encoder layers vs decoder layers",
        "Tokenization: BPE vs word-level",
        "Sampling settings on the same prompt",
    ):
        assert heading in markdown
    assert metadata["heads_profiled"] == 4  # tiny preset: 2 layers x 2 heads
    assert "| moonlitten |" in markdown and "| encoder layer |" in markdown
    assert "LoRA adapters: 1,000 trainable parameters" in markdown
    assert "went down 10.0%: the model learned the corpus" in markdown and "up 2.0%: it forgot" in markdown
    assert (
        "by BLEU: `scratch_transformer`; by chrF: `finetuned_lm` — the three measures do not agree"
        in markdown
    )
    assert "| greedy (temperature 0) |" in markdown and metadata["distinct2_0"] <= 0.25 + 1e-9  # 4 equal rows
    for name in (
        "attention_heads",
        "positional_encoding",
        "positional_similarity",
        "activations",
        "bptt_gradients",
        *PART_TWO_FIGURES,
    ):
        assert (reports / "theory" / f"{name}.png").stat().st_size > 1000
    # Each part-two figure sits at the end of the section it answers (7-11), before the next heading.
    for name, section in (
        ("head_profiles", 7),
        ("cross_attention", 8),
        ("tokenizer_comparison", 9),
        ("sampling_penalties", 10),
        ("finetune_lora", 11),
    ):
        where = markdown.index(f"(theory/{name}.png)")
        assert markdown.index(f"## {section}.") < where < markdown.index(f"## {section + 1}.")
    assert metadata["cross_attention_layers"] == 2 and 0 < metadata["cross_attention_mean_peak"] <= 1
    assert "no full fine-tuning run was made" in markdown
    # Every theory_notes plot a bundled narration shows is one this asset wrote (no missing slide).
    from genai_assets.teaching.script import NARRATION_PATH, PART_TWO_PATH, load_script

    shown = {
        ref.path
        for path in (NARRATION_PATH, PART_TWO_PATH)
        for ref in load_script(path).plot_refs()
        if ref.asset == "theory_notes"
    }
    assert shown and all((lake_root / path).stat().st_size > 1000 for path in shown)
    assert "12 cleaned poems" in markdown  # the tokenizer figure counts the lake's poems
    assert "| love |" in markdown  # the neighbour table from the lake's embeddings
    html = (reports / "theory.html").read_text()
    assert "<table>" in html and "data:image/png;base64," in html
    assert_no_markup_from(HOSTILE_LINE, html)


def test_missing_upstream_names_the_asset(lake_root):
    with pytest.raises(Exception, match="materialize 'scratch_transformer'"):
        materialize_theory(lake_root)


def test_bad_theory_config_is_refused():
    with pytest.raises(ValueError, match="must contain the word 'rose'"):
        TheoryConfig(sense_sentences=("a rose", "a rose", "a tulip"))
    assert json.dumps(TheoryConfig().probe_words)


def test_bptt_paragraph_follows_the_measured_numbers():
    from genai_assets.teaching.theory import bptt_reading

    # The demo run's shape: the LSTM's gradient decayed most, the GRU kept more than the RNN.
    text = bptt_reading({"rnn": 1e-3, "lstm": 1e-6, "gru": 1e-2}, 39)
    assert "ranks GRU > RNN > LSTM: here the plain RNN does *not* lose it fastest." in text
    assert "the LSTM keeps *less* than the RNN (1.0e-06 vs 1.0e-03)" in text
    assert "the GRU keeps more than the RNN (1.0e-02 vs 1.0e-03): its update gate z lets information" in text
    assert "forget gate lets information" not in text
    text = bptt_reading({"rnn": 1e-6, "lstm": 1e-3, "gru": 1e-2}, 39)
    assert "as the theory predicts, the plain RNN loses it fastest" in text and "*less*" not in text


def test_figures_carry_labels_and_colorbars():
    import torch

    from genai_assets.teaching.theory import EMBEDDING_DIFFERENCES, activation_figure, attention_figure

    maps = [torch.softmax(torch.randn(2, 4, 4), dim=-1) for _ in range(2)]
    figure = attention_figure(maps, ["a", "b", "c", "d"], max_panels=4)
    *panels, colorbar = figure.axes
    assert len(panels) == 4 and colorbar.get_ylabel() == "attention weight (0–1)"
    assert all(axis.get_xlabel() and axis.get_ylabel() for axis in panels)
    assert all(axis.get_xlabel() and axis.get_ylabel() for axis in activation_figure().axes)
    assert "neural" not in EMBEDDING_DIFFERENCES.splitlines()[0]  # GloVe is a fit to counts


def test_head_profiles_and_their_reading_follow_the_weights():
    from genai_assets.teaching.theory import head_profiles, head_reading, sampling_reading

    previous = torch.zeros(4, 4)
    previous[0, 0] = 1.0
    previous[1:, :-1] = torch.eye(3)  # every query reads the token just before it
    first = torch.zeros(4, 4)
    first[:, 0] = 1.0  # every query reads the first token
    rows = head_profiles([torch.stack([previous, first])])
    third = pytest.approx(1 / 3)  # query 1's previous token is also the first token
    assert [(r["previous"], r["first"]) for r in rows] == [(1.0, third), (third, 1.0)]
    assert rows[0]["distance"] == 1.0 and rows[1]["distance"] == 2.0  # mean of 1, 2, 3 steps back
    text = head_reading(rows)
    assert "layer 0 head 1 looks furthest back (on average 2.0 tokens)" in text
    assert "layer 0 head 0 puts the most weight on the previous token (100% on average)" in text
    reading = sampling_reading(dict(zip(
        ["greedy (temperature 0)", "temperature 0.7", "temperature 1.3", "top-k 10", "top-p 0.9",
         "top-p 0.9 + repetition penalty 1.3 + no repeated 3-grams"],
        [0.25, 0.8, 0.6, 0.7, 0.7, 0.9], strict=True,
    )))  # fmt: skip
    assert "temperature 1.3 gave less varied text than 0.7 (0.60 vs 0.80)" in reading
    assert "gave more varied text (0.90 vs 0.70)" in reading


# --- issue 22: part two's figures ------------------------------------------------------------------


def test_cross_attention_maps_reproduce_the_layer_output():
    """The captured weights, applied to the memory's values, give the cross-attention sub-layer's output."""
    from genai_assets.models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderTransformer
    from genai_assets.teaching.course_figures import cross_attention_maps

    torch.manual_seed(0)
    config = EncoderDecoderConfig(vocab_size=40, n_encoder_layers=1, n_decoder_layers=2, n_head=2, d_model=16)
    model = EncoderDecoderTransformer(config).eval()
    source = torch.tensor([[5, 6, 7, 8, config.pad_id]])  # a padded source: its last key gets no weight
    target = torch.tensor([[9, 10, 11, config.eos_id]])
    seen = []
    layer = model.decoder_layers[1].cross_attention
    handle = layer.register_forward_hook(lambda m, args, out: seen.append((args[1], out)))
    maps = cross_attention_maps(model, source, target)
    handle.remove()
    assert [tuple(m.shape) for m in maps] == [(2, 4, 5), (2, 4, 5)]
    assert torch.allclose(maps[1].sum(-1), torch.ones(2, 4)) and float(maps[1][..., -1].abs().max()) == 0.0
    memory, output = seen[0]
    channels = config.d_model
    value = torch.nn.functional.linear(
        memory, layer.in_proj.weight[2 * channels :], layer.in_proj.bias[2 * channels :]
    )
    heads = layer._split_heads(value)[0]  # (nh, S, hs)
    mixed = (maps[1] @ heads).transpose(0, 1).reshape(1, 4, channels)  # (1, T, C)
    assert torch.allclose(layer.out_proj(mixed), output, atol=1e-5)


def test_course_figures_carry_labels_and_colorbars():
    from genai_assets.teaching.course_figures import (
        cross_attention_figure,
        finetune_figure,
        head_profile_figure,
        penalty_figure,
        repeated_ngrams,
        tokenizer_figure,
    )

    maps = [torch.softmax(torch.randn(2, 3, 4), dim=-1) for _ in range(2)]
    figure = cross_attention_figure(maps, ["a", "b", "c", "d"], ["x", "y", "z"])
    *panels, colorbar = figure.axes
    assert len(panels) == 2 and colorbar.get_ylabel() == "cross-attention weight (0–1)"
    assert all(axis.get_xlabel() and axis.get_ylabel() for axis in panels)
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["a", "b", "c", "d"]
    rows = [{"layer": 0, "head": h, "distance": 1.0 + h, "previous": 0.5, "first": 0.2} for h in range(2)]
    assert all(axis.get_xlabel() and axis.get_ylabel() for axis in head_profile_figure(rows).axes)
    histogram, _ = tokenizer_figure(
        {"bpe": [5, 9], "word": [3, 4]}, [("thee", "the·e", "thee")], "2 poems"
    ).axes
    assert histogram.get_xlabel() == "tokens per poem" and histogram.get_ylabel() == "poems"
    assert repeated_ngrams([7, 8, 7, 8, 7, 8]) == 2 and repeated_ngrams([]) == 0
    penalty = [{"setting": s, "distinct_1": 0.5, "distinct_2": 0.6, "repeated_3grams": 3, "first": "o sea"}
               for s in ("greedy", "greedy + penalties")]  # fmt: skip
    bars = [axis for axis in penalty_figure(penalty, "Shall I", 4).axes if axis.axison]
    assert len(bars) == 2 and all(axis.get_xlabel() and axis.get_ylabel() for axis in bars)
    stats = [{"epoch": 1, "training_loss": 3.0, "validation_loss": 2.9}]
    metrics = {"config": {"lora": True}, "n_trainable_parameters": 10, "training_stats": stats}
    losses, counts = finetune_figure(metrics, 1000).axes
    assert "no full fine-tuning run was made" in losses.get_title()
    assert [line.get_ydata()[0] for line in losses.get_lines()[:2]] == [3.0, 2.9]
    assert counts.get_ylabel().startswith("trainable parameters") and "1.00%" in counts.get_xlabel()


def test_figure_notes_end_their_sections():
    from genai_assets.teaching.course_figures import with_figure_notes

    parts = ["## 7. heads", "text 7", "## 8. layers", "text 8", "## 11. fine-tuning", "text 11"]
    notes = {
        "head_profiles": "N7",
        "cross_attention": "N8",
        "finetune_lora": "N11",
        "sampling_penalties": "N10",
    }
    placed = with_figure_notes(parts, notes)
    assert (
        placed.index("N7")
        < placed.index("## 8. layers")
        < placed.index("N8")
        < placed.index("## 11. fine-tuning")
    )
    # A section the parts lack (10): its note still comes before the next heading; the last one ends it all.
    assert placed.index("N8") < placed.index("N10") < placed.index("## 11. fine-tuning")
    assert placed.index("text 11") < placed.index("N11") == len(placed) - 2
