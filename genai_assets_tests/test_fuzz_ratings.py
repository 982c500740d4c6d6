"""Property-based (hypothesis) tests of the human-eval ratings reader: whatever a rater sends
back, the result is validated ratings or one ``RatingsFormatError`` naming the file, never
another exception, and a well-formed file is read exactly (BOM, CRLF, case, spaces, duplicates).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from genai_assets.evaluation.human_eval import CHOICES, RatingsFormatError, read_ratings

KEY = pd.DataFrame(
    {
        "sheet_id": ["s1"] * 4,
        "item_id": ["1", "2", "3", "4"],
        "prompt_id": ["p1", "p2", "p3", "p4"],
        "poem_1_model": ["a", "b", "a", "b"],
        "poem_2_model": ["b", "a", "b", "a"],
    }
)
CSV_PIECES = st.sampled_from(
    ["sheet_id", "item_id", "rater", "choice", ",", "\n", "\r\n", '"', "s1", "1", "2", "tie", "TIE ", "x",
     "\ufeff", "\x00", "\xff", " ", ",,,,", "\t"]
)  # fmt: skip
ANY_CSV = st.one_of(
    st.binary(max_size=300),
    st.lists(st.one_of(CSV_PIECES, st.text(max_size=6)), max_size=40).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
)  # fmt: skip


def read_bytes_as_ratings(files: dict[str, bytes]) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for name, content in files.items():
            path = Path(folder) / name
            path.write_bytes(content)
            paths.append(path)
        return read_ratings(paths, KEY)


@given(ANY_CSV)
def test_any_file_gives_valid_ratings_or_a_ratings_format_error(content):
    try:
        ratings = read_bytes_as_ratings({"ratings_ann.csv": content})
    except RatingsFormatError as error:
        assert "ratings_ann.csv" in str(error)  # the message names the file
        return
    assert set(ratings["choice"]) <= set(CHOICES)
    assert set(ratings["sheet_id"]) <= {"s1"} and set(ratings["item_id"]) <= set(KEY["item_id"])
    assert not ratings.duplicated(["sheet_id", "rater", "item_id"]).any()


ROW = st.tuples(
    st.sampled_from(["1", "2", "3", "4"]),
    st.sampled_from(["1", "2", "tie", "TIE", " Tie ", ""]),
    st.sampled_from(["", "ann", "bob"]),
)


@given(
    st.lists(st.lists(ROW, max_size=6), min_size=1, max_size=3),
    st.booleans(),
    st.booleans(),
)
def test_well_formed_files_are_read_exactly(files_rows, bom, crlf):
    newline = "\r\n" if crlf else "\n"
    files, expected = {}, {}
    for index, rows in enumerate(files_rows):
        name = "ratings_zed.csv" if index == 0 else f"ratings_zed ({index}).csv"  # re-downloads
        lines = ["sheet_id,item_id,rater,choice"] + [
            f"s1,{item},{rater},{choice}" for item, choice, rater in rows
        ]
        files[name] = (("\ufeff" if bom else "") + newline.join(lines) + newline).encode()
        for item, choice, rater in rows:
            if choice.strip():
                expected[(rater or "ratings_zed", item)] = choice.strip().lower()  # later file wins
    ratings = read_bytes_as_ratings(files)
    got = {(rater, item): choice for rater, item, choice in zip(ratings["rater"], ratings["item_id"], ratings["choice"], strict=True)}  # fmt: skip
    assert got == expected
