"""Co-occurrence counts, PPMI, SVD/PCA and the GloVe comparison: exact values on toy corpora."""

import math
from types import SimpleNamespace

import dagster as dg
import numpy as np
import pytest

from genai_assets.defs._io_manager import ParquetIOManager
from genai_assets.defs._resources import DataLake
from genai_assets.stages.tokens import corpus_lines, run_cooccurrence_embeddings
from genai_assets.text import cooccurrence
from genai_assets.text.glove import (
    SharedSpace,
    WordVectors,
    answer_analogies,
    load_glove,
    neighbour_overlap,
    shared_space,
    similarity_spearman,
)
from genai_assets_tests.test_tokens_arrays import cleansed_poems_frame, sonnet_texts

TOY_LINES = ["The cat sat", "the dog sat", "A cat"]


def dense_counts(lines, window, vocab_size=100, min_count=1):
    corpus = cooccurrence.tokenize_lines(lines, vocab_size, min_count)
    return corpus, cooccurrence.cooccurrence_counts(corpus, window).toarray()


def cell(corpus, matrix, a, b):
    return matrix[corpus.vocabulary.index(a), corpus.vocabulary.index(b)]


def test_vocabulary_order_and_tokens():
    lines = ["O’er the King's sea, o'er 2 seas!", "", "'Tis the sea—Éire's"]
    corpus = cooccurrence.tokenize_lines(lines, vocab_size=100, min_count=1)
    # frequency first, then alphabetical; curly apostrophes folded; possessive 's dropped; 'tis → tis
    assert corpus.vocabulary == ["o'er", "sea", "the", "king", "seas", "tis", "éire"]
    assert corpus.word_counts.tolist() == [2, 2, 2, 1, 1, 1, 1]
    assert corpus.token_ids.tolist() == [0, 2, 3, 1, 0, 4, 5, 2, 1, 6]
    assert corpus.sentence_ids.tolist() == [0, 0, 0, 0, 0, 0, 2, 2, 2, 2]
    assert corpus.n_tokens == 10 and corpus.n_sentences == 3
    assert cooccurrence.tokenize_lines(lines, vocab_size=3, min_count=2).token_ids.tolist() == [
        0,
        2,
        -1,
        1,
        0,
        -1,
        -1,
        2,
        1,
        -1,
    ]


def test_counts_exact_on_hand_computed_toy_corpus():
    corpus, window1 = dense_counts(TOY_LINES, window=1)
    assert corpus.vocabulary == ["cat", "sat", "the", "a", "dog"]
    expected = {("cat", "the"): 1, ("cat", "sat"): 1, ("the", "dog"): 1, ("dog", "sat"): 1, ("a", "cat"): 1}
    want = np.zeros((5, 5), dtype=np.int64)
    for (a, b), value in expected.items():
        i, j = corpus.vocabulary.index(a), corpus.vocabulary.index(b)
        want[i, j] = want[j, i] = value  # symmetric; "sat" / "the" across lines never count
    assert np.array_equal(window1, want)
    _, window2 = dense_counts(TOY_LINES, window=2)
    assert cell(corpus, window2, "the", "sat") == cell(corpus, window2, "sat", "the") == 2
    assert window2.sum() == window1.sum() + 4


def test_repeated_word_and_out_of_vocabulary_slots():
    corpus, counts = dense_counts(["la la la"], window=2)
    assert counts.tolist() == [[6]]  # ordered pairs at distance 1 (4) and 2 (2)
    # "rare" is cut by min_count but keeps its slot: x and y are 2 apart.
    lines = ["x rare y", "x y", "x y"]
    corpus, window1 = dense_counts(lines, window=1, min_count=2)
    assert corpus.vocabulary == ["x", "y"] and window1.tolist() == [[0, 2], [2, 0]]
    _, window2 = dense_counts(lines, window=2, min_count=2)
    assert window2.tolist() == [[0, 3], [3, 0]]


def test_ppmi_invariants_and_one_cell_by_hand():
    corpus, counts = dense_counts(TOY_LINES, window=1)
    plain = cooccurrence.ppmi_matrix(counts, alpha=1.0).toarray()
    assert (plain >= 0).all() and (plain[counts == 0] == 0).all()
    # N = 10; row("a") = 1, column("cat") = 3: PMI = log((1/10) / ((1/10) * (3/10))) = log(10/3)
    assert cell(corpus, plain, "a", "cat") == pytest.approx(math.log(10 / 3))
    smoothed = cooccurrence.ppmi_matrix(counts, alpha=0.75).toarray()
    column_totals = counts.sum(axis=0)  # cat 3, sat 2, the 2, a 1, dog 2
    p_alpha_cat = 3**0.75 / (column_totals**0.75).sum()
    assert cell(corpus, smoothed, "a", "cat") == pytest.approx(math.log((1 / 10) / ((1 / 10) * p_alpha_cat)))
    assert (smoothed[counts == 0] == 0).all()
    with pytest.raises(ValueError, match="all zeros"):
        cooccurrence.ppmi_matrix(np.zeros((3, 3)))


def test_svd_and_pca_shapes():
    lines = [" ".join(text.split("\n")) for text in sonnet_texts()]
    corpus = cooccurrence.tokenize_lines(lines, vocab_size=300, min_count=2)
    ppmi = cooccurrence.ppmi_matrix(cooccurrence.cooccurrence_counts(corpus, 3))
    vectors, singular_values = cooccurrence.svd_vectors(ppmi, dim=20, power=0.5)
    assert vectors.shape == (300, 20) and vectors.dtype == np.float32
    assert np.all(np.diff(singular_values) <= 1e-9)  # sorted, largest first
    coordinates = cooccurrence.pca_2d(vectors[:14])
    assert coordinates.shape == (14, 2)
    assert np.allclose(coordinates.mean(axis=0), 0, atol=1e-9)  # PCA centres the points
    with pytest.raises(ValueError, match="at least two"):
        cooccurrence.pca_2d(vectors[:1])


def test_config_validation():
    with pytest.raises(ValueError, match="ppmi_alpha"):
        cooccurrence.CooccurrenceConfig(ppmi_alpha=0)
    with pytest.raises(ValueError, match="window_size"):
        cooccurrence.CooccurrenceConfig(window_size=0)


def test_glove_loader_reads_known_rows():
    glove = load_glove()
    assert glove.vectors.shape == (400000, 50) and glove.vectors.dtype == np.float32
    assert isinstance(glove.vectors, np.memmap)
    assert glove.rows(["the", "king", "no-such-word-xyz"]).tolist() == [0, 691, -1]
    assert glove.vectors[0, :4].tolist() == pytest.approx([0.418, 0.24968, -0.41242, 0.1217])
    assert glove.vectors[691, :4].tolist() == pytest.approx([0.50451, 0.68607, -0.59517, -0.022801])


def test_comparison_of_a_space_with_itself_is_perfect():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)] + ["man", "king", "woman", "queen"]
    vectors = rng.normal(size=(34, 8))
    vectors[33] = vectors[31] - vectors[30] + vectors[32]  # queen = king - man + woman exactly
    reference = WordVectors(words=__import__("pandas").Index(words), vectors=vectors)
    space = shared_space(words + ["unknown"], np.vstack([vectors, rng.normal(size=(1, 8))]), reference)
    assert isinstance(space, SharedSpace) and len(space.words) == 34
    overlap = neighbour_overlap(space, ["w1", "w2", "missing"], k=5)
    assert overlap["word"].tolist() == ["w1", "w2"] and (overlap["overlap"] == 1).all()
    rho, n_pairs = similarity_spearman(space, 20)
    assert rho == pytest.approx(1.0) and n_pairs == 190
    analogies = answer_analogies(space, [("man", "king", "woman", "queen"), ("man", "king", "cat", "dog")])
    assert analogies.loc[0, "ours"] == analogies.loc[0, "glove"] == "queen"
    assert analogies.loc[1, "missing"] == "cat, dog"


def test_asset_on_sonnets_lists_missing_words(lake_root):
    from genai_assets.defs import embeddings

    poems = cleansed_poems_frame(sonnet_texts())
    poems.to_parquet(lake_root / "cleansed_poems.parquet")
    words = ["love", "time", "rose", "xyzzyq", "hippopotamus"]
    config = {"vocab_size": 500, "min_count": 2, "embedding_dim": 16, "plot_words": words}
    result = dg.materialize(
        [dg.AssetSpec("cleansed_poems"), embeddings.cooccurrence_embeddings],
        selection=["cooccurrence_embeddings"],
        resources={
            "io_manager": ParquetIOManager(root=str(lake_root)),
            "lake": DataLake(root=str(lake_root)),
        },
        run_config={"ops": {"cooccurrence_embeddings": {"config": config}}},
    )
    assert result.success
    metadata = result.asset_materializations_for_node("cooccurrence_embeddings")[0].metadata
    assert metadata["missing_plot_words"].value == {"ours": ["xyzzyq", "hippopotamus"], "glove": ["xyzzyq"]}
    assert "Spearman rho" in metadata["analysis"].value and "Top-10 neighbours" in metadata["analysis"].value
    n_lines = sum(1 for text in poems["text"] for line in text.split("\n") if line.strip())
    assert metadata["n_sentences"].value == n_lines == 2156  # non-blank lines of the 154-sonnet fixture
    folder = lake_root / "embeddings"
    from scipy import sparse

    counts = sparse.load_npz(folder / "cooccurrence_counts.npz")
    assert counts.shape == (500, 500) and (counts != counts.T).nnz == 0
    assert np.load(folder / "svd_vectors.npy").shape == (500, 16)
    assert (folder / "vocab.tsv").read_text().splitlines()[:2] == ["word\tcount", "and\t490"]
    assert (lake_root / "reports" / "cooccurrence_vs_glove.png").exists()


def test_asset_rejects_a_corpus_too_small_for_a_vocabulary(lake_root):
    from genai_assets.defs import embeddings

    cleansed_poems_frame(["one line only", "another line"]).to_parquet(lake_root / "cleansed_poems.parquet")
    with pytest.raises(Exception, match="too small a corpus"):
        dg.materialize(
            [dg.AssetSpec("cleansed_poems"), embeddings.cooccurrence_embeddings],
            selection=["cooccurrence_embeddings"],
            resources={
                "io_manager": ParquetIOManager(root=str(lake_root)),
                "lake": DataLake(root=str(lake_root)),
            },
        )
    assert corpus_lines(cleansed_poems_frame(["a\n\nb\n  \nc"]), max_sentences=2) == ["a", "b"]


def test_library_run_writes_the_folder_without_dagster(tmp_path):
    """The stage's plain function: same files and figures the asset reports, no Dagster involved."""
    poems = cleansed_poems_frame(sonnet_texts())
    config = cooccurrence.CooccurrenceConfig(
        vocab_size=300, min_count=2, embedding_dim=8, plot_words=["love", "time"]
    )
    messages: list[str] = []
    lake = SimpleNamespace(
        path=tmp_path, reports_dir=lambda: tmp_path / "reports"
    )  # a folder layout, no resource
    run = run_cooccurrence_embeddings(config, lake, messages.append, poems)
    assert sorted(path.name for path in run.folder.iterdir()) == [
        "cooccurrence_counts.npz", "meta.json", "ppmi.npz", "svd_vectors.npy", "vocab.tsv",
    ]  # fmt: skip
    assert run.meta["n_sentences"] == 2156 and run.meta["vocab_size"] == 300
    assert (
        run.meta["config"]["plot_words"] == ["love", "time"]
        and run.plot_path == tmp_path / "reports" / "cooccurrence_vs_glove.png"
    )
    assert run.missing_plot_words == {"ours": [], "glove": []} and "2156 lines" in messages[0]
    with pytest.raises(ValueError, match="neighbours must be >= 1"):
        cooccurrence.CooccurrenceConfig(neighbours=0)
