"""One model-card writer: the fine-tuned folder's card and the scratch models' cards come from
``publish.model_card.build_model_card`` too, so the Hub parses all of them the same way."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard

from genai_assets.finetune.model_card import model_card_stub
from genai_assets.publish.model_card import ModelCardInputs, build_model_card
from genai_assets.stages.scratch import model_card

HEADINGS = (
    "## What it is",
    "## Training procedure",
    "## Evaluation",
    "## Limitations and intended use",
    "## How to use",
)


def load(text: str, tmp_path) -> ModelCard:
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    return ModelCard.load(path)


def test_finetuned_folder_card_is_a_model_card_with_its_figures(tmp_path):
    metrics = {
        "base_model": {"name": "HuggingFaceTB/SmolLM2-135M", "kind": "hub", "license": "apache-2.0"},
        "config": {"learning_rate": 5e-4, "lora": True, "collation": "packing"},
        "steps": 40,
        "base_test_perplexity": 30.25,
        "finetuned_test_perplexity": 24.5,
    }
    card = load(model_card_stub(metrics), tmp_path)
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M" and card.data.license == "apache-2.0"
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation"
    assert all(heading in card.text for heading in HEADINGS)
    assert "| learning_rate | 5e-04 |" in card.text or "| learning_rate | 0.0005 |" in card.text
    assert (
        "**base test perplexity**: 30.25" in card.text
        and "**fine-tuned test perplexity**: 24.50" in card.text
    )
    # A local base is named in the text, never claimed as a Hub base_model.
    local = load(model_card_stub({"base_model": {"name": "tiny-gpt2-random", "kind": "local"}}), tmp_path)
    assert local.data.base_model is None and "`tiny-gpt2-random` (not on the Hub)" in local.text


def test_scratch_model_card_shows_config_figures_and_samples(tmp_path):
    metrics = {"val_loss": 3.25, "steps": 12, "samples": [{"prompt": "The rose", "text": "The rose is red"}]}
    card = load(
        model_card("scratch_transformer", "A tiny GPT.", {"n_layer": 2, "n_head": 4}, metrics), tmp_path
    )
    assert card.data.library_name is None  # not loadable by transformers: no claim that it is
    assert card.data.license == "other" and "from-scratch" in card.data.tags
    assert all(heading in card.text for heading in HEADINGS)
    assert '"n_head": 4' in card.text and "**val_loss (validation split)**: 3.25" in card.text
    assert "The rose is red" in card.text and "load_scratch_model" in card.text


def test_a_card_without_a_hub_id_must_say_how_to_use_it():
    with pytest.raises(ValueError, match="usage"):
        ModelCardInputs(repo_id=None, model_name="x", base_model=None)
    card = build_model_card(ModelCardInputs(repo_id=None, model_name="x", base_model=None, usage="Load it."))
    assert card.data.model_name == "x" and card.text.rstrip().endswith("Load it.")


def _rendered(card_text: str):
    """Headings, tags, attributes and table cells of the card as the Hub would render it (raw HTML on)."""
    from html.parser import HTMLParser

    from markdown_it import MarkdownIt

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.tags, self.attributes, self.headings, self.cells, self.code = [], [], [], [], []
            self._open: list[tuple[str, list[str]]] = []  # captures in progress (a code span inside a cell)

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.attributes += attrs
            if tag in ("h1", "h2", "h3", "td", "code"):
                self._open.append((tag, []))

        def handle_endtag(self, tag):
            if self._open and self._open[-1][0] == tag:
                _, parts = self._open.pop()
                {"td": self.cells, "code": self.code}.get(tag, self.headings).append("".join(parts))

        def handle_data(self, data):
            for _, parts in self._open:
                parts.append(data)

    collector = Collect()
    collector.feed(MarkdownIt("commonmark", {"html": True}).enable("table").render(card_text))
    return collector


HOSTILE_SAMPLE = "The rose\n```\n# Fake heading\n<img src=x onerror=alert(1)>\n````"


def test_hostile_samples_and_config_stay_inside_their_fences_and_cells(tmp_path):
    clean = ModelCardInputs(repo_id="me/poems", model_name="Poems", base_model=None, usage="Load it.")
    hostile = ModelCardInputs(
        repo_id="me/poems",
        model_name="Poems <script>alert(1)</script>",
        base_model=None,
        base_model_label="label`with`ticks",
        usage="Load it.",
        hyperparameters={"poem_line": "a | b <img src=x onerror=alert(1)>\n| c | d |"},
        training_results={"note": "x\n# Fake result heading"},
        sample_poems=[{"prompt": "```\n## Injected", "text": HOSTILE_SAMPLE}],
        configuration={"poem_line": "```\n# Fake config heading"},
    )
    card_text = load(str(build_model_card(hostile)), tmp_path).text
    page, baseline = _rendered(card_text), _rendered(str(build_model_card(clean)).split("---\n", 2)[2])
    assert page.headings[0] == "Poems <script>alert(1)</script>"  # shown as text, not run
    # The same sections as a clean card (plus Configuration): no fake heading got out of a fence.
    expected = baseline.headings[1:2] + ["Configuration"] + baseline.headings[2:]
    assert page.headings[1:] == expected and "Sample poems" in expected
    assert not {"img", "script"} & set(page.tags)
    assert page.cells == ["poem_line", "a | b <img src=x onerror=alert(1)> / | c | d |"]
    assert HOSTILE_SAMPLE + "\n" in page.code and "```\n## Injected\n" in page.code
    assert any("# Fake config heading" in block for block in page.code)
    assert "label`with`ticks" in page.code
