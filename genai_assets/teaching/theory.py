"""The course's theory questions, answered with figures computed from the project's own models.

The sections of ``theory.md``, each a function returning a :class:`NotesSection`;
:func:`genai_assets.stages.teaching.run_theory_notes` runs them in order and writes ``theory.md``
(+ ``theory.html``) and its PNGs. Every number in the text is computed here, from the models in the lake, never typed in: attention maps of the
scratch transformer on a real poem line, the positional-encoding tables, a worked attention
example run through :func:`genai_assets.models.layers.scaled_dot_product_attention`, the hand-
written RNN/LSTM/GRU cells and their parity with torch, measured BPTT gradient norms of the trained
recurrent baselines, count-based vs GloVe embeddings, and contextual vs static embeddings from the
fine-tuned model's hidden states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from genai_assets.config_checks import Ge, raise_problems, range_problems
from genai_assets.escaping import markdown_to_safe_html, md_code_span, md_inline
from genai_assets.plotting import new_figure, write_figure


class MissingUpstreamError(FileNotFoundError):
    """A model or file the notes need is not in the lake; the message names the asset to materialize."""


@dataclass
class TheoryConfig:
    """What the theory notes probe. Defaults suit the demo corpus (Shakespeare is in it)."""

    poem_line: Annotated[str, "sonnet 18: attention maps are drawn on it"] = (
        "Shall I compare thee to a summer's day?"
    )
    poem_next_line: Annotated[
        str, "the line after poem_line: the encoder–decoder's cross-attention is drawn writing it"
    ] = "Thou art more lovely and more temperate:"
    max_heads_plotted: Annotated[int, "cap on layer × head panels in the attention figure"] = 16
    positions: Annotated[
        int, Ge(2), "rows of the sinusoidal heatmap (the similarity maps stop at the model's block size)"
    ] = 128
    bptt_steps: Annotated[int, Ge(2), "sequence length of the gradient-through-time probe"] = 40
    probe_words: Annotated[tuple[str, ...], "neighbour tables"] = ("love", "night", "sea", "death", "heart")
    two_sense_word: Annotated[str, 'a word with two senses in the corpus (flower / past of "rise")'] = "rose"
    sense_sentences: Annotated[
        tuple[str, ...],
        'A causal LM sees only the left context, so the words that decide the sense come first. sense A (the flower) sense A sense B (past of "rise")',
    ] = (
        "In the garden bloomed a red rose",  # sense A (the flower)
        "She gave her love a white rose",  # sense A
        "Over the quiet hill the sun rose",  # sense B (past of "rise")
    )
    tokenizer_words: Annotated[
        tuple[str, ...], "words whose BPE pieces / word-level ids the tokenizer table shows (one made up)"
    ] = ("wandering", "thee", "moonlitten")
    sampling_samples: Annotated[
        int, Ge(1), "continuations per sampling setting (distinct-2 is taken over them)"
    ] = 4
    sampling_tokens: Annotated[int, Ge(1), "tokens per continuation in the sampling table"] = 24
    seed: int = 0

    def __post_init__(self) -> None:
        problems = range_problems(self)
        if not self.poem_line.strip() or not self.poem_next_line.strip():
            problems.append("poem_line and poem_next_line must not be empty")
        if len(self.sense_sentences) != 3:
            problems.append("sense_sentences must be 3 sentences: two of one sense, then one of the other")
        elif any(self.two_sense_word not in s.lower().split() for s in self.sense_sentences):
            problems.append(f"every sense sentence must contain the word {self.two_sense_word!r}")
        raise_problems(self, problems)


@dataclass
class TheoryInputs:
    """Where the upstream artifacts are (lake paths); each is checked with the asset that writes it."""

    scratch_dir: Path  # scratch_transformer
    rnn_dirs: dict[str, Path]  # rnn_baselines: {"rnn": ..., "lstm": ..., "gru": ...}
    embeddings_dir: Path  # cooccurrence_embeddings
    finetuned_dir: Path  # finetuned_lm

    @classmethod
    def from_lake(cls, lake_root: str | Path) -> TheoryInputs:
        models = Path(lake_root) / "models"
        return cls(
            models / "scratch_transformer",
            {kind: models / f"rnn_{kind}" for kind in ("rnn", "lstm", "gru")},
            Path(lake_root) / "embeddings",
            models / "finetuned_lm",
        )

    def check(self) -> None:
        wanted = [(self.scratch_dir / "config.json", "scratch_transformer")]
        wanted += [
            (self.scratch_dir.parent / "next_line_transformer" / "config.json", "next_line_transformer")
        ]
        wanted += [(folder / "config.json", "rnn_baselines") for folder in self.rnn_dirs.values()]
        wanted += [
            (self.embeddings_dir / name, "cooccurrence_embeddings")
            for name in ("vocab.tsv", "svd_vectors.npy")
        ]
        wanted += [(self.finetuned_dir / "config.json", "finetuned_lm")]
        missing = [f"{path} (materialize '{asset}')" for path, asset in wanted if not path.is_file()]
        if missing:
            raise MissingUpstreamError("The theory notes need files the lake lacks: " + "; ".join(missing))


@dataclass
class TheoryResult:
    markdown: str
    figures: dict[str, Path] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)


def _fmt(matrix) -> str:
    rows = matrix.tolist()
    return "\n".join("  [" + ", ".join(f"{value:7.3f}" for value in row) + "]" for row in rows)


# --- attention ------------------------------------------------------------------------------------


def attention_maps(model, idx):
    """Per layer, the causal self-attention weights (nh, T, T) of ``model`` (a scratch GPT) on ``idx`` (1, T)."""
    import torch

    from genai_assets.models.layers import causal_mask

    captured = []

    def hook(module, args, kwargs):
        x = args[0]  # the (normalised) input of the attention sub-layer, (1, T, C)
        query, key, _ = module.in_proj(x).split(module.d_model, dim=2)
        query, key = module._split_heads(query), module._split_heads(key)  # (1, nh, T, hs)
        scores = query @ key.transpose(-2, -1) / math.sqrt(module.head_size)
        scores = scores.masked_fill(~causal_mask(x.size(1), x.size(1)), float("-inf"))
        captured.append(torch.softmax(scores, dim=-1)[0])

    handles = [
        layer.self_attention.register_forward_pre_hook(hook, with_kwargs=True) for layer in model.layers
    ]
    try:
        with torch.no_grad():
            model(idx)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def attention_figure(maps, tokens: list[str], max_panels: int):
    panels = [(layer, head) for layer in range(len(maps)) for head in range(maps[layer].size(0))][:max_panels]
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = new_figure(3.6 * columns + 1.2, 3.6 * rows + 0.6)
    axes = []
    for number, (layer, head) in enumerate(panels, start=1):
        axis = figure.add_subplot(rows, columns, number)
        image = axis.imshow(maps[layer][head].numpy(), cmap="viridis", vmin=0, vmax=1)
        axis.set_title(f"layer {layer} head {head}", fontsize=10)
        axis.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=8)
        axis.set_yticks(range(len(tokens)), tokens, fontsize=8)
        axis.set_xlabel("key (token read)", fontsize=8)
        axis.set_ylabel("query (token reading)", fontsize=8)
        axes.append(axis)
    figure.suptitle("scratch_transformer self-attention weights (each row sums to 1)")
    figure.colorbar(image, ax=axes, fraction=0.03, pad=0.02, label="attention weight (0–1)")
    return figure


def worked_attention_example() -> tuple[str, float]:
    """Eq. (1) step by step on 3 tokens with d_k = 2, checked against the project's function."""
    import torch

    from genai_assets.models.layers import scaled_dot_product_attention

    query = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    key = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    value = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    scores = query @ key.T
    scaled = scores / math.sqrt(query.size(-1))
    weights = torch.softmax(scaled, dim=-1)
    by_hand = weights @ value
    ours = scaled_dot_product_attention(query[None, None], key[None, None], value[None, None])[0, 0]
    gap = float((ours - by_hand).abs().max())
    text = "\n".join(
        [
            "```text",
            f"Q =\n{_fmt(query)}\nK =\n{_fmt(key)}\nV =\n{_fmt(value)}",
            f"1. scores = Q Kᵀ =\n{_fmt(scores)}",
            f"2. ÷ √d_k (d_k = 2, √2 = {math.sqrt(2):.4f}) =\n{_fmt(scaled)}",
            f"3. softmax per row (each row sums to 1) =\n{_fmt(weights)}",
            f"4. weighted sum of V rows = softmax(...) V =\n{_fmt(by_hand)}",
            f"genai_assets.models.layers.scaled_dot_product_attention gives\n{_fmt(ours)}",
            f"largest difference: {gap:.2e}",
            "```",
        ]
    )
    return text, gap


# --- positional encodings -------------------------------------------------------------------------


def sinusoid_heatmap(table, width: int):
    """The sinusoidal table with its sin (even) and cos (odd) dimensions drawn apart, one half each.

    Interleaved, neighbouring columns alternate sin/cos and the right half reads as stripes; apart,
    each half runs from the fastest frequency (left) to the slowest (right).
    """
    figure = new_figure(10, 4.6)
    axes = [figure.add_subplot(1, 2, number) for number in (1, 2)]
    for axis, columns, name in zip(axes, (slice(0, None, 2), slice(1, None, 2)), ("sin", "cos"), strict=True):
        image = axis.imshow(table[:, columns].numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
        axis.set_xlabel(f"frequency index i (dimension {'2i' if name == 'sin' else '2i+1'}); ω_i falls →")
        axis.set_ylabel("position p")
        axis.set_title(
            f"{name}(p·ω_i), dimensions {'0, 2, 4' if name == 'sin' else '1, 3, 5'}, …", fontsize=10
        )
    figure.suptitle(f"Sinusoidal positional encoding, d_model = {width}, {table.size(0)} positions")
    figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02, label="encoding value (−1 to 1)")
    return figure


def positional_figures(model, positions: int, figures_dir: Path) -> tuple[dict[str, Path], dict[str, float]]:
    import torch

    from genai_assets.models.layers import SinusoidalPositionalEncoding

    width = model.config.n_embd
    table = SinusoidalPositionalEncoding(width, positions).table  # (positions, C): the heatmap's rows
    positions = min(positions, model.config.block_size)  # the similarity maps: positions the model has
    sinusoid = table[:positions]
    figure = sinusoid_heatmap(table, width)
    paths = {"positional_encoding": write_figure(figure, figures_dir / "positional_encoding.png")}

    def offset_similarity(table):
        unit = torch.nn.functional.normalize(table, dim=-1)
        return unit @ unit.T  # (T, T) cosine between positions

    sin_similarity = offset_similarity(sinusoid)
    numbers: dict[str, float] = {}
    learned = getattr(model.position_encoding, "embedding", None)
    figure = new_figure(10, 4.6)
    axis = figure.add_subplot(1, 2, 1)
    axes = [axis]
    image = axis.imshow(sin_similarity.numpy(), cmap="viridis", vmin=-1, vmax=1)
    axis.set_title("sinusoidal: cos(PE_i, PE_j)", fontsize=10)
    if learned is not None:
        learned_table = learned.weight.detach()[:positions]
        learned_similarity = offset_similarity(learned_table)
        axis = figure.add_subplot(1, 2, 2)
        axes.append(axis)
        axis.imshow(learned_similarity.numpy(), cmap="viridis", vmin=-1, vmax=1)
        axis.set_title("learned (scratch_transformer): cos(P_i, P_j)", fontsize=10)
        # Is similarity a function of the offset only? Spread of each diagonal, averaged (0 = yes).
        numbers["learned_diagonal_spread"] = _diagonal_spread(learned_similarity)
        numbers["learned_neighbour_cosine"] = float(learned_similarity.diagonal(1).mean())
    numbers["sinusoidal_diagonal_spread"] = _diagonal_spread(sin_similarity)
    numbers["sinusoidal_neighbour_cosine"] = float(sin_similarity.diagonal(1).mean())
    for axis in axes:
        axis.set_xlabel("position j")
        axis.set_ylabel("position i")
    figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02, label="cosine similarity")
    paths["positional_similarity"] = write_figure(figure, figures_dir / "positional_similarity.png")
    # The relative-offset property: PE(p + k) = R_k PE(p) with R_k a fixed block rotation, checked.
    offset = 5
    inverse_wavelength = torch.exp(
        torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width)
    )
    angle = offset * inverse_wavelength
    sin_p, cos_p = sinusoid[: positions - offset, 0::2], sinusoid[: positions - offset, 1::2]
    rotated_sin = sin_p * torch.cos(angle) + cos_p * torch.sin(angle)
    numbers["rotation_error"] = float((rotated_sin - sinusoid[offset:, 0::2]).abs().max())
    return paths, numbers


def _diagonal_spread(similarity) -> float:
    size = similarity.size(0)
    spreads = [
        float(similarity.diagonal(k).std()) for k in range(1, size - 1) if similarity.diagonal(k).numel() > 1
    ]
    return sum(spreads) / len(spreads)


# --- sigmoid, tanh, recurrent cells, BPTT ---------------------------------------------------------


def activation_figure():
    import torch

    x = torch.linspace(-6, 6, 241)
    figure = new_figure(8, 3.4)
    for number, (name, function) in enumerate([("sigmoid σ(x)", torch.sigmoid), ("tanh(x)", torch.tanh)], 1):
        axis = figure.add_subplot(1, 2, number)
        values = x.clone().requires_grad_(True)
        output = function(values)
        output.sum().backward()
        axis.plot(x.numpy(), output.detach().numpy(), label=name)
        axis.plot(x.numpy(), values.grad.numpy(), "--", label="derivative")
        axis.axhline(0, color="#999", linewidth=0.6)
        axis.set_xlabel("x (pre-activation)")
        axis.set_ylabel("value")
        axis.legend(fontsize=8)
        axis.set_title(name)
    return figure


def cell_parity(seed: int) -> dict[str, float]:
    """Largest |hand-written − torch| over outputs of each cell on random data with copied weights."""
    import torch

    from genai_assets.teaching.cells import CellWeights, run_cell

    torch.manual_seed(seed)
    gaps = {}
    for kind, layer_class in {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.items():
        layer = layer_class(input_size=6, hidden_size=8, batch_first=True)
        inputs = torch.randn(2, 7, 6)
        with torch.no_grad():
            expected, _ = layer(inputs)
            ours, _ = run_cell(kind, inputs, CellWeights.from_module(layer), 8)
        gaps[kind] = float((ours - expected).abs().max())
    return gaps


def bptt_probes(rnn_models: dict, token_ids, steps: int):
    """Gradient-through-time norms of layer 0 of each trained recurrent model, on embedded poem tokens."""
    import torch

    from genai_assets.teaching.cells import gradient_through_time

    probes = {}
    for kind, model in rnn_models.items():
        ids = torch.as_tensor(token_ids[:steps], dtype=torch.long)[None]  # (1, T)
        with torch.no_grad():
            inputs = model.token_embedding(ids)  # (1, T, E)
        recurrent = model.recurrent
        layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
        extra = {"nonlinearity": recurrent.nonlinearity} if kind == "rnn" else {}
        first = layer(recurrent.input_size, recurrent.hidden_size, batch_first=True, **extra)
        first.load_state_dict(
            {name: value for name, value in recurrent.state_dict().items() if name.endswith("_l0")}
        )
        probes[kind] = gradient_through_time(first, kind, inputs)
    return probes


def bptt_figure(probes):
    """One panel: relative gradient norm vs steps back. (A clipping panel was dropped: clipping rescales
    every step's gradient by one factor, so on these non-exploding runs it only shifted the curves.)"""
    figure = new_figure(7, 4)
    axis = figure.add_subplot(1, 1, 1)
    for kind, probe in probes.items():
        relative = [max(n / probe.norms[0], 1e-30) for n in probe.norms]
        axis.semilogy(range(len(relative)), relative, label=kind.upper())
    axis.set_xlabel("k (time steps back from the loss)")
    axis.set_ylabel("‖∂L/∂h_{T-k}‖ / ‖∂L/∂h_T‖ (ratio, log scale)")
    axis.legend(fontsize=8)
    axis.set_title("gradient through time, layer 0 of the trained rnn_baselines", fontsize=10)
    return figure


def bptt_reading(final: dict[str, float], k: int) -> str:
    """The BPTT paragraph, every sentence chosen by the measured ratios (``final``: kind → ratio at ``k``)."""
    ranking = sorted(final, key=final.get, reverse=True)
    sentences = [
        f"At k = {k} the gradient that is left ranks "
        + " > ".join(kind.upper() for kind in ranking)
        + (
            ": as the theory predicts, the plain RNN loses it fastest."
            if ranking[-1] == "rnn"
            else ": here the plain RNN does *not* lose it fastest."
        ),
        "In theory the plain RNN multiplies one Jacobian diag(1 - h²)·W_hh per step, so its gradient shrinks "
        "(or, with large weights, grows) geometrically, while the LSTM's cell path is multiplied only by the "
        "forget gate and the GRU's state path by z: gates held near 1 carry the gradient far back.",
    ]
    paths = {"lstm": "forget gate", "gru": "update gate z"}
    rnn = final.get("rnn")
    for kind, gate in paths.items():
        if kind not in final or rnn is None:
            continue
        if final[kind] > rnn:
            sentences.append(
                f"Measured, the {kind.upper()} keeps more than the RNN ({final[kind]:.1e} vs {rnn:.1e}): its "
                f"{gate} lets information from far back reach the loss."
            )
        else:
            sentences.append(
                f"Measured, the {kind.upper()} keeps *less* than the RNN ({final[kind]:.1e} vs {rnn:.1e}): with "
                f"these weights its {gate} is not held near 1, so the additive path does not carry the gradient "
                "back; a gate learns to stay open only when training rewards long memory, and short training "
                "windows (truncated BPTT) give it little reason to."
            )
    sentences.append(
        "Gradient clipping (`clip_grad_norm_` in the training loop) bounds *exploding* gradients by rescaling "
        "the whole gradient vector; it cannot restore a vanished one."
    )
    return " ".join(sentences)


# --- embeddings -----------------------------------------------------------------------------------


def static_neighbours(embeddings_dir: Path, words, k: int = 6) -> list[tuple[str, str, str]]:
    """(word, our PPMI/SVD neighbours, GloVe neighbours) for the probe words both vocabularies know."""
    import numpy as np
    import pandas as pd

    from genai_assets.text.cooccurrence import unit_rows
    from genai_assets.text.glove import load_glove, nearest

    vocab = pd.read_csv(embeddings_dir / "vocab.tsv", sep="\t", keep_default_na=False, quoting=3)
    words_in_order = vocab["word"].astype(str).tolist()
    ours = unit_rows(np.load(embeddings_dir / "svd_vectors.npy").astype(np.float64))
    our_rows = {word: row for row, word in enumerate(words_in_order)}
    glove = load_glove()
    glove_unit = None
    rows = []
    for word in words:
        if word not in our_rows:
            continue
        mine = ", ".join(words_in_order[i] for i in nearest(ours, our_rows[word], k))
        [glove_row] = glove.rows([word])
        if glove_row < 0:
            rows.append((word, mine, "(not in GloVe)"))
            continue
        if glove_unit is None:
            glove_unit = unit_rows(np.asarray(glove.vectors, dtype=np.float32))
        theirs = ", ".join(glove.words[i] for i in nearest(glove_unit, int(glove_row), k))
        rows.append((word, mine, theirs))
    return rows


def contextual_similarities(model, tokenizer, word: str, sentences) -> tuple[float, float]:
    """Cosine of the last hidden state of ``word`` between sentence 0 and 1 (same sense) and 0 and 2."""
    import torch

    vectors = []
    for sentence in sentences:
        encoded = tokenizer(sentence, return_tensors="pt")
        pieces = sentence.split()
        position = [piece.lower().strip(".,;:!?") for piece in pieces].index(word)
        prefix = " ".join(pieces[:position])
        # The word's tokens: those the tokenizer adds when the prefix is extended by the word.
        start = len(tokenizer(prefix)["input_ids"]) if prefix else 0
        end = len(tokenizer(" ".join(pieces[: position + 1]))["input_ids"])
        with torch.no_grad():
            hidden = model(**encoded, output_hidden_states=True).hidden_states[-1][0]  # (T, C)
        vectors.append(hidden[start:end].mean(dim=0))
    cosine = torch.nn.functional.cosine_similarity
    return float(cosine(vectors[0], vectors[1], dim=0)), float(cosine(vectors[0], vectors[2], dim=0))


# --- the report -----------------------------------------------------------------------------------

EMBEDDING_DIFFERENCES = """| | our co-occurrence counts → PPMI → SVD | GloVe 6B (pre-trained) |
|---|---|---|
| trained on | our poem lines only | 6 billion tokens of Wikipedia + newswire |
| how | count word pairs in a window, reweight by PPMI, factorise once (SVD) | fit vectors so dot products predict log co-occurrence (weighted least squares) |
| cost | seconds on a CPU, deterministic, no hyperparameter search | days of corpus processing; we only download the result |
| rare words | noisy: a few counts decide the vector | stable if frequent on the web, but no vector for unseen words |
| domain | knows poetic senses (thee, thou, o'er) | knows modern, encyclopaedic senses |
| use when | the domain is narrow, the corpus is yours, or you must explain every number | you need general semantics, analogies, or a strong start for a small model |"""


def _markdown_table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class NotesSection:
    """One numbered section of the notes: its Markdown lines, the figures it wrote, the numbers it measured."""

    parts: list[str]
    figures: dict[str, Path] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)


def attention_section(gpt, gpt_tokenizer, config: TheoryConfig, figures_dir: Path):
    """1. Attention maps of the scratch transformer on a real poem line; also returns the maps."""
    import torch

    figures: dict[str, Path] = {}
    ids = gpt_tokenizer(config.poem_line)["input_ids"][: gpt.config.block_size]
    tokens = [gpt_tokenizer.decode([token]) for token in ids]
    maps = attention_maps(gpt, torch.tensor([ids]))
    figures["attention_heads"] = write_figure(
        attention_figure(maps, tokens, config.max_heads_plotted), figures_dir / "attention_heads.png"
    )
    entropies = [float(-(m.clamp_min(1e-12).log() * m).sum(-1)[:, -1].mean()) for m in maps]
    parts = [
        "## 1. Self-attention of the scratch transformer on a poem line",
        # poem_line is run config: escaped, like the token pieces (genai_assets.escaping)
        f"Line: *{md_inline(config.poem_line)}* — {len(ids)} tokens: {md_code_span(' | '.join(tokens))}.",
        "",
        "![attention](theory/attention_heads.png)",
        "",
        "Each panel is one head: row *i* is how much token *i* reads each earlier token (the causal mask "
        "blanks the upper triangle). Mean entropy of the last token's attention per layer: "
        + ", ".join(f"layer {i}: {e:.2f} nats" for i, e in enumerate(entropies))
        + f" (uniform over {len(ids)} tokens would be {math.log(len(ids)):.2f}). Lower entropy = a sharper, "
        "more selective head.",
        "",
    ]

    return NotesSection(parts, figures), maps


def worked_example_section() -> NotesSection:
    """2. A worked scaled dot-product attention example."""
    numbers: dict[str, float] = {}
    worked, gap = worked_attention_example()
    numbers["worked_example_gap"] = gap
    parts = ["## 2. Scaled dot-product attention, step by step", "", worked, ""]

    return NotesSection(parts, numbers=numbers)


def positional_section(gpt, config: TheoryConfig, figures_dir: Path) -> NotesSection:
    """3. Positional encodings: the sinusoid table, its similarity, and our learned positions."""
    paths, position_numbers = positional_figures(gpt, config.positions, figures_dir)
    learned_line = (
        f"Our scratch model uses **learned** positions: neighbouring positions have mean cosine "
        f"{position_numbers['learned_neighbour_cosine']:.2f} and the similarity is far less a function of the "
        f"offset alone (mean spread along the diagonals {position_numbers['learned_diagonal_spread']:.3f} vs "
        f"{position_numbers['sinusoidal_diagonal_spread']:.3f} for sinusoids): nothing forces translation "
        "invariance on learned vectors, and positions rarely seen in training stay close to their random start."
        if "learned_neighbour_cosine" in position_numbers
        else "Our scratch model uses sinusoidal positions, so the two tables coincide."
    )
    parts = [
        "## 3. Positional encoding: what can you observe?",
        "![positional encoding](theory/positional_encoding.png)",
        "",
        "* The table interleaves sin (even dimensions) and cos (odd dimensions); the figure draws the two halves "
        "apart. Column *i* of each half is one frequency ω_i; the wavelength 2π/ω_i grows geometrically from 2π "
        "(left) to nearly 10000·2π (right), so in each half the left columns change at every position and the "
        "right ones barely move over these positions: together they write the position like the hands of a "
        "clock with many speeds.",
        "* Values stay in [-1, 1] at every position, whatever the sequence length.",
        "* A fixed offset *k* is a linear map: each (sin, cos) pair of position *p + k* is the pair of *p* rotated "
        f"by the angle *k·ω_i*. Checked on the table for k = 5: largest error {position_numbers['rotation_error']:.1e}. "
        "Attention can therefore learn relative offsets with a linear projection.",
        "* Cosine similarity between two positions depends only on their offset (the diagonals below are constant).",
        "",
        "![position similarity](theory/positional_similarity.png)",
        "",
        learned_line,
        "",
    ]

    return NotesSection(parts, paths, position_numbers)


def cells_section(config: TheoryConfig, figures_dir: Path) -> NotesSection:
    """4. Sigmoid, tanh and the hand-written RNN, LSTM and GRU cells (parity with torch)."""
    figures: dict[str, Path] = {}
    figures["activations"] = write_figure(activation_figure(), figures_dir / "activations.png")
    gaps = cell_parity(config.seed)
    numbers = {f"{kind}_cell_parity_gap": value for kind, value in gaps.items()}
    parts = [
        "## 4. Sigmoid, tanh and the RNN, LSTM and GRU cells",
        "![activations](theory/activations.png)",
        "",
        "* **sigmoid** σ(x) = 1/(1+e^-x): range (0, 1), σ(0) = 0.5, σ'(x) = σ(x)(1-σ(x)) ≤ 1/4 — a soft switch, "
        "used for gates. Its derivative is at most 1/4, so a chain of sigmoids shrinks gradients.",
        "* **tanh**: range (-1, 1), zero-centred, tanh'(0) = 1, saturates for |x| > 3 (derivative → 0).",
        "",
        "Written out by hand in `genai_assets/teaching/cells.py` (weights in torch's layout, so they copy across):",
        "",
        "* RNN: h_t = tanh(W_xh x_t + b_xh + W_hh h_{t-1} + b_hh)",
        "* LSTM: i, f, o = σ(W x_t + U h_{t-1} + b) per gate; g = tanh(...); c_t = f ⊙ c_{t-1} + i ⊙ g; h_t = o ⊙ tanh(c_t)",
        "* GRU: r, z = σ(...); n = tanh(W_n x_t + b_in + r ⊙ (U_n h_{t-1} + b_hn)); h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}",
        "",
        "Parity with `nn.RNN` / `nn.LSTM` / `nn.GRU` (copied weights, 7 steps; largest |difference|): "
        + ", ".join(f"{kind.upper()} {value:.1e}" for kind, value in gaps.items())
        + ". The tests (`genai_assets_tests/test_teaching_cells.py`) assert it.",
        "",
    ]

    return NotesSection(parts, figures, numbers)


def bptt_section(rnn_models: dict, gpt_tokenizer, config: TheoryConfig, figures_dir: Path) -> NotesSection:
    """5. Back-propagation through time, measured on the trained recurrent baselines."""
    figures: dict[str, Path] = {}
    numbers: dict[str, float] = {}
    stream = gpt_tokenizer(" ".join([config.poem_line] * 8))["input_ids"]
    probes = bptt_probes(rnn_models, stream, config.bptt_steps)
    figures["bptt"] = write_figure(bptt_figure(probes), figures_dir / "bptt_gradients.png")
    rows = []
    for kind, probe in probes.items():
        last = len(probe.norms) - 1
        marks = [k for k in (1, 5, 10, 20, last) if k <= last]
        ratios = [probe.norms[k] / probe.norms[0] if probe.norms[0] else 0.0 for k in marks]
        numbers[f"{kind}_grad_ratio_k{marks[-1]}"] = ratios[-1]
        rows.append((kind.upper(), *[f"{r:.2e}" for r in ratios]))
    final = {kind: numbers[f"{kind}_grad_ratio_k{marks[-1]}"] for kind in probes}
    parts = [
        "## 5. Back-propagation through time, measured",
        "For a loss on the last step only, how large is ∂L/∂h_{T-k} as *k* grows? Layer 0 of each trained "
        "baseline (`rnn_baselines`), fed the embedded tokens of a poem line, unrolled with the hand-written cells:",
        "",
        _markdown_table(["cell", *[f"k={k}" for k in marks]], rows),
        "",
        "![bptt](theory/bptt_gradients.png)",
        "",
        bptt_reading(final, marks[-1]),
        "",
    ]

    return NotesSection(parts, figures, numbers)


def embeddings_section(
    inputs: TheoryInputs, finetuned, finetuned_tokenizer, config: TheoryConfig
) -> NotesSection:
    """6. Two count-based static embeddings (ours, GloVe); static vs contextual."""
    neighbours = static_neighbours(inputs.embeddings_dir, config.probe_words)
    same, different = contextual_similarities(
        finetuned, finetuned_tokenizer, config.two_sense_word, config.sense_sentences
    )
    numbers = {"contextual_same_sense": same, "contextual_other_sense": different}
    sentences = config.sense_sentences
    parts = [
        "## 6. Two static embeddings from co-occurrence counts; static vs contextual",
        "Both are built from word co-occurrence counts: ours factorises a reweighted count matrix once, GloVe "
        "fits vectors by weighted least squares so their dot products predict the log counts (it is not a "
        "neural network; word2vec is the neural, prediction-based counterpart).",
        "",
        EMBEDDING_DIFFERENCES,
        "",
        "Nearest neighbours measured in the lake (`cooccurrence_embeddings`) and in GloVe:",
        "",
        _markdown_table(["word", "ours (PPMI/SVD on poems)", "GloVe 6B"], neighbours)
        if neighbours
        else "(none of the probe words is in our vocabulary)",
        "",
        f"**Contextual vs static.** A static table gives *{config.two_sense_word}* one vector, so its two senses "
        f"are identical (cosine 1.00). The fine-tuned model's last hidden state depends on the sentence "
        f"(its left part: the model is causal): "
        f"cosine between “{sentences[0]}” and “{sentences[1]}” (same sense) = **{same:.3f}**, between "
        f"“{sentences[0]}” and “{sentences[2]}” (other sense) = **{different:.3f}**."
        + (
            " The same sense is closer, as it should be."
            if same > different
            else " Here the other sense is as close or closer: this model does not separate the senses of this "
            "word (small model, or the word is rare in its fine-tuning data)."
        ),
        "",
    ]
    return NotesSection(parts, numbers=numbers)


def markdown_to_html(markdown: str, base_dir: Path) -> str:
    """Self-contained HTML: markdown-it (tables on), images inlined as data URIs."""
    import base64
    import re

    # Raw HTML off: a tag in the Markdown (from run config or a sample) comes out as text.
    body = markdown_to_safe_html(markdown)

    def inline(match: re.Match) -> str:
        path = base_dir / match.group(1)
        if not path.is_file():
            return match.group(0)
        return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"'

    body = re.sub(r'src="([^"]+\.png)"', inline, body)
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;line-height:1.5}"
        "img{max-width:100%}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "pre{background:#f6f6f6;padding:8px;overflow-x:auto}"
    )
    return f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Theory notes</title><style>{style}</style></head><body>{body}</body></html>\n'


# --- part two of the course questions (issue 22) -------------------------------------------------


def head_profiles(maps) -> list[dict]:
    """Per layer and head, what it attends to, measured: mean distance back, share on the previous
    token and on the first token, entropy (averaged over query positions 1..T-1)."""
    import torch

    rows = []
    for layer, heads in enumerate(maps):
        size = heads.size(-1)
        if size < 2:
            continue
        offsets = (torch.arange(size)[:, None] - torch.arange(size)[None, :]).clamp_min(0).float()  # (T, T)
        for head, weights in enumerate(heads):  # weights (T, T), rows sum to 1
            queries = weights[1:]
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "distance": float((queries * offsets[1:]).sum(-1).mean()),
                    "previous": float(weights.diagonal(-1).mean()),
                    "first": float(queries[:, 0].mean()),
                    "entropy": float(-(queries.clamp_min(1e-12).log() * queries).sum(-1).mean()),
                }
            )
    return rows


def head_reading(rows: list[dict]) -> str:
    """Sentences chosen by the measured profiles: which head looks furthest back, which reads the
    previous token most, which the first token most, and how much they differ."""
    if len(rows) < 2:
        return "With a single head there is nothing to compare."
    name = lambda row: f"layer {row['layer']} head {row['head']}"  # noqa: E731
    far, near = max(rows, key=lambda r: r["distance"]), min(rows, key=lambda r: r["distance"])
    previous, first = max(rows, key=lambda r: r["previous"]), max(rows, key=lambda r: r["first"])
    return (
        f"The heads differ: {name(far)} looks furthest back (on average {far['distance']:.1f} tokens), "
        f"{name(near)} stays closest ({near['distance']:.1f}). {name(previous)} puts the most weight on "
        f"the previous token ({previous['previous']:.0%} on average), {name(first)} on the first token "
        f"({first['first']:.0%}). One head would have to average these patterns into one; several heads "
        "keep them apart, each in its own subspace, and the output projection mixes what they read."
    )


def layer_comparison(d_model: int, n_heads: int, d_ff: int) -> list[tuple]:
    """(layer, sub-layers, self-attention mask, parameters) of an encoder layer and both decoder kinds."""
    from genai_assets.models.layers import DecoderLayer, EncoderLayer

    def count(module) -> str:
        return f"{sum(p.numel() for p in module.parameters()):,}"

    return [
        ("encoder layer", "self-attention → feed-forward", "none (sees the whole input)",
         count(EncoderLayer(d_model, n_heads, d_ff))),
        ("decoder layer (encoder–decoder)", "masked self-attention → cross-attention → feed-forward",
         "causal", count(DecoderLayer(d_model, n_heads, d_ff, cross_attention=True))),
        ("decoder layer (GPT)", "masked self-attention → feed-forward", "causal",
         count(DecoderLayer(d_model, n_heads, d_ff, cross_attention=False))),
    ]  # fmt: skip


def tokenizer_rows(tokenizers: dict, texts: list[str], words: list[str]) -> tuple[list[tuple], list[tuple]]:
    """(per tokenizer: tokens per text, unknown tokens) and (per word: its pieces in each tokenizer)."""
    counts = []
    for name, tokenizer in tokenizers.items():
        ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
        unknown = (
            sum(row.count(tokenizer.unk_token_id) for row in ids) if tokenizer.unk_token_id is not None else 0
        )
        counts.append((name, f"{sum(len(row) for row in ids) / len(ids):.1f}", unknown))
    pieces = []
    for word in words:
        cells = []
        for tokenizer in tokenizers.values():
            tokens = tokenizer.tokenize(" " + word)
            cells.append(" · ".join(tokenizer.convert_tokens_to_string([t]).strip() or "␣" for t in tokens))
        pieces.append((word, *cells))
    return counts, pieces


SAMPLING_SETTINGS = (
    ("greedy (temperature 0)", {"temperature": 0.0}),
    ("temperature 0.7", {"temperature": 0.7}),
    ("temperature 1.3", {"temperature": 1.3}),
    ("top-k 10", {"temperature": 1.0, "top_k": 10}),
    ("top-p 0.9", {"temperature": 1.0, "top_p": 0.9}),
    ("top-p 0.9 + repetition penalty 1.3 + no repeated 3-grams",
     {"temperature": 1.0, "top_p": 0.9, "repetition_penalty": 1.3, "no_repeat_ngram_size": 3}),
)  # fmt: skip


def sampling_table(model, tokenizer, prompt: str, samples: int, new_tokens: int, seed: int) -> list[tuple]:
    """(setting, distinct-2 over ``samples`` continuations of one prompt, the first continuation)."""
    import torch

    from genai_assets.evaluation.metrics import distinct_n

    ids = tokenizer(prompt)["input_ids"][-(model.config.block_size - new_tokens) :]
    prompt_ids = torch.tensor([ids] * samples)  # (samples, T): one row per sample
    rows = []
    for label, options in SAMPLING_SETTINGS:
        generator = torch.Generator().manual_seed(seed)
        out = model.generate(prompt_ids, new_tokens, generator=generator, **options)
        texts = [tokenizer.decode(row[len(ids) :].tolist(), skip_special_tokens=True) for row in out]
        first = " ".join(texts[0].split())[:160]
        rows.append((label, f"{distinct_n(texts, 2):.2f}", first))
    return rows


def course_sections(
    gpt, gpt_tokenizer, maps, inputs: TheoryInputs, config: TheoryConfig
) -> tuple[list[str], dict]:
    """Sections 7–10: heads measured, encoder vs decoder layers, tokenizers, sampling on one prompt."""
    # In the original order: building the layers of section 8 draws from torch's random state.
    parts, numbers = heads_section(maps)
    parts += layers_section(gpt)
    parts += tokenizers_section(gpt_tokenizer, inputs, config)
    sampling_parts, sampling_numbers = sampling_section(gpt, gpt_tokenizer, config)
    parts += sampling_parts
    return parts, numbers | sampling_numbers


def heads_section(maps) -> tuple[list[str], dict]:
    """7. What each head of the scratch transformer reads, measured on the poem line."""
    from genai_assets.escaping import md_table

    profiles = head_profiles(maps)
    numbers = {"heads_profiled": float(len(profiles))}
    parts = [
        "## 7. Why several heads: what each head reads, measured",
        "On the line above, per head of `scratch_transformer` (averaged over the query positions): mean "
        "distance back to the tokens read, weight on the previous token, weight on the first token, entropy.",
        "",
        md_table(
            [
                "layer",
                "head",
                "mean distance (tokens)",
                "on previous token",
                "on first token",
                "entropy (nats)",
            ],
            [
                (
                    r["layer"],
                    r["head"],
                    f"{r['distance']:.2f}",
                    f"{r['previous']:.0%}",
                    f"{r['first']:.0%}",
                    f"{r['entropy']:.2f}",
                )
                for r in profiles
            ],
        ),  # fmt: skip
        "",
        head_reading(profiles),
        "",
    ]
    return parts, numbers


def layers_section(gpt) -> list[str]:
    """8. Encoder layers vs decoder layers, built at the scratch model's width."""
    from genai_assets.escaping import md_table

    width, heads = gpt.config.n_embd, gpt.config.n_head
    return [
        "## 8. Encoder layers vs decoder layers",
        f"Built at our scratch model's width (d_model = {width}, {heads} heads, d_ff = {4 * width}):",
        "",
        md_table(
            ["layer", "sub-layers", "self-attention mask", "parameters"],
            layer_comparison(width, heads, 4 * width),
        ),
        "",
        "An encoder layer lets every token see the whole input (only padding is masked): it builds a "
        "representation of a text. A decoder layer masks the future so it can generate; in an encoder–decoder "
        "model (our `next_line_transformer`) its cross-attention reads the encoder's output, with queries from the "
        "decoder and keys/values from the encoder. A GPT is a stack of decoder layers without cross-attention.",
        "",
    ]


def tokenizers_section(gpt_tokenizer, inputs: TheoryInputs, config: TheoryConfig) -> list[str]:
    """9. Tokenization: our BPE vs the word-level baseline on the notes' lines and words."""
    from genai_assets.escaping import md_table

    tokenizers = {"poem BPE": gpt_tokenizer}
    wordlevel_dir = inputs.scratch_dir.parent / "poem_tokenizer_wordlevel"
    if (wordlevel_dir / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        tokenizers["word-level"] = AutoTokenizer.from_pretrained(wordlevel_dir)
    texts = [config.poem_line, *config.sense_sentences]
    counts, pieces = tokenizer_rows(tokenizers, texts, list(config.tokenizer_words))
    return [
        "## 9. Tokenization: BPE vs word-level",
        md_table(["tokenizer", "tokens per line (the lines above)", "unknown tokens"], counts),
        "",
        md_table(["word", *tokenizers], pieces),
        "",
        "BPE splits a word it has not merged whole into pieces it knows (down to bytes), so nothing is unknown; "
        "the word-level tokenizer maps every word outside its vocabulary to one unknown token, and the word is "
        "lost to the model."
        + ("" if "word-level" in tokenizers else " (The word-level tokenizer is not in this lake: materialize "
           "'poem_tokenizer' to add its column.)"),
        "",
    ]  # fmt: skip


def sampling_section(gpt, gpt_tokenizer, config: TheoryConfig) -> tuple[list[str], dict]:
    """10. Sampling settings on the same prompt, with distinct-2 per setting."""
    from genai_assets.escaping import md_inline, md_table

    torch_seed = config.seed
    rows = sampling_table(
        gpt, gpt_tokenizer, config.poem_line, config.sampling_samples, config.sampling_tokens, torch_seed
    )
    numbers = {f"distinct2_{i}": float(row[1]) for i, row in enumerate(rows)}
    parts = [
        "## 10. Sampling settings on the same prompt",
        f"Prompt: *{md_inline(config.poem_line)}*; {config.sampling_samples} continuations of "
        f"{config.sampling_tokens} tokens per setting from `scratch_transformer`, same seed; distinct-2 = share "
        "of unique word bigrams over them (higher = more varied).",
        "",
        md_table(["setting", "distinct-2", "first continuation"], rows),
        "",
        sampling_reading({label: float(value) for label, value, _ in rows}),
        "",
    ]
    return parts, numbers


def sampling_reading(distinct: dict[str, float]) -> str:
    """What the sampling table shows, each comparison stated as measured (settings: SAMPLING_SETTINGS)."""
    labels = [label for label, _ in SAMPLING_SETTINGS]
    greedy, cold, hot, _, nucleus, controlled = (distinct[label] for label in labels)

    def compare(a: float, b: float) -> str:
        return "more" if a > b else "less" if a < b else "as"

    return (
        "In theory, greedy decoding repeats one continuation, a higher temperature flattens the distribution "
        "and varies more, top-k and top-p cut the unlikely tail, and the repetition controls break loops. "
        f"Measured here: greedy {greedy:.2f}; temperature 1.3 gave {compare(hot, cold)} varied text than 0.7 "
        f"({hot:.2f} vs {cold:.2f}); adding the repetition controls to top-p gave {compare(controlled, nucleus)} "
        f"varied text ({controlled:.2f} vs {nucleus:.2f})."
    )


def finetune_section(finetuned, finetuned_dir: Path) -> list[str]:
    """11. LoRA vs all weights: trainable parameters and learning vs forgetting, from finetuned_lm's metrics."""
    import json

    metrics_path = finetuned_dir / "metrics.json"
    total = sum(p.numel() for p in finetuned.parameters())
    parts = ["## 11. Fine-tuning: LoRA adapters vs all weights"]
    if not metrics_path.is_file():
        return parts + [
            f"(`{metrics_path}` is missing: materialize 'finetuned_lm' for the measured run.)",
            "",
        ]
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    trained = int(metrics.get("n_trainable_parameters", total))
    lora = bool(metrics.get("config", {}).get("lora", False))
    parts += [
        f"The demo run trained {'LoRA adapters' if lora else 'all weights'}: {trained:,} trainable parameters, "
        f"{trained / total:.2%} of the {total:,} in the saved model"
        + (" (the adapters were merged into it before saving)." if lora else ".")
        + " Full fine-tuning trains every one of them, and AdamW keeps two more numbers per trained parameter.",
        "",
    ]
    bits = metrics.get("bits_per_char")
    if bits:
        change = bits["change"]
        learned = change.get("in_domain", 0.0)
        forgot = change.get("ood", 0.0)
        parts += [
            md_table_rows(
                ["texts", "base bits/char", "fine-tuned bits/char", "change"],
                [
                    (
                        name,
                        f"{bits['base'][name]:.4f}",
                        f"{bits['finetuned'][name]:.4f}",
                        f"{change[name]:+.1%}",
                    )
                    for name in bits["base"]
                ],
            ),  # fmt: skip
            "",
            f"On held-out poems (in domain) bits per character went {'down' if learned < 0 else 'up'} "
            f"{abs(learned):.1%}: the model {'learned' if learned < 0 else 'did not learn'} the corpus; on "
            f"out-of-domain verse it went {'up' if forgot > 0 else 'down'} {abs(forgot):.1%}: "
            + ("it forgot some of what it knew." if forgot > 0 else "no forgetting is measured there."),
            "",
        ]
    return parts


def evaluation_section(reports_dir: Path) -> list[str]:
    """12. BLEU vs chrF vs bits/char, from the evaluation report, and what a human A/B adds."""
    import json

    path = reports_dir / "evaluation.json"
    parts = ["## 12. BLEU, chrF, bits per character and human A/B"]
    rows = []
    if path.is_file():
        models = json.loads(path.read_text(encoding="utf-8"))["models"]
        rows = [
            (m["model"], f"{m['bits_per_char']:.3f}", f"{m['bleu']:.2f}", f"{m['chrf']:.2f}")
            for m in models
            if m.get("model") != "reference" and m.get("bits_per_char") is not None
        ]
    if rows:
        by = {name: (float(b), float(bleu), float(chrf)) for name, b, bleu, chrf in rows}
        best_bits = min(by, key=lambda name: by[name][0])
        best_bleu = max(by, key=lambda name: by[name][1])
        best_chrf = max(by, key=lambda name: by[name][2])
        agree = "agree" if len({best_bits, best_bleu, best_chrf}) == 1 else "do not agree"
        parts += [
            md_table_rows(["model", "bits/char (lower better)", "BLEU", "chrF"], rows),
            "",
            f"Best by bits per character: `{best_bits}`; by BLEU: `{best_bleu}`; by chrF: `{best_chrf}` — the "
            f"three measures {agree} here.",
            "",
        ]
    else:
        parts += [f"(`{path}` is missing: materialize 'evaluation' for the measured table.)", ""]
    parts += [
        "BLEU counts word n-grams (up to 4) shared with the real continuation, chrF character n-grams (kinder to "
        "a different word ending), and bits per character scores the probability the model gives the real "
        "text, so it needs no sampling at all. For poetry all three reward closeness to one reference, while "
        "many different continuations are good. A blind human A/B comparison (`human_eval_sheet`: two models, "
        "the same prompts, sides shuffled) measures what they cannot: which poem a reader prefers.",
        "",
    ]
    return parts


def md_table_rows(header: list[str], rows: list[tuple]) -> str:
    from genai_assets.escaping import md_table

    return md_table(header, rows)
