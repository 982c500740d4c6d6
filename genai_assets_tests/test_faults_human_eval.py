"""Human evaluation with real-world ratings folders: duplicates, hidden files, BOMs, huge files, new sheets."""

import os
import time

import dagster as dg
import pandas as pd
import pytest

from genai_assets.defs._resources import DataLake
from genai_assets.defs.evaluation import human_eval_results, human_eval_sheet
from genai_assets.evaluation.human_eval import (
    MAX_RATINGS_FILE_BYTES,
    RatingsFormatError,
    build_sheet,
    load_sheet_keys,
    preference_summary,
    rater_from_file_name,
    ratings_files,
    read_ratings,
)


def _samples(texts_b="b"):
    rows = []
    for prompt_id in range(4):
        rows.append(
            {
                "prompt_id": prompt_id,
                "prompt": f"p{prompt_id}",
                "model": "finetuned_lm",
                "text": f"a{prompt_id}",
            }
        )
        rows.append(
            {
                "prompt_id": prompt_id,
                "prompt": f"p{prompt_id}",
                "model": "base_lm",
                "text": f"{texts_b}{prompt_id}",
            }
        )
    return pd.DataFrame(rows)


def _always_finetuned(key, rater="ann"):
    """Ratings rows that always prefer finetuned_lm, whichever side it is on."""
    choices = ["1" if model == "finetuned_lm" else "2" for model in key["poem_1_model"]]
    return pd.DataFrame(
        {"sheet_id": key["sheet_id"], "item_id": key["item_id"], "rater": rater, "choice": choices}
    )


def _write(path, frame, mtime=None, encoding="utf-8"):
    path.write_text(frame.to_csv(index=False), encoding=encoding)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_the_same_judgement_downloaded_twice_counts_once(tmp_path):
    sheet = build_sheet(_samples(), "finetuned_lm", "base_lm", max_items=4)
    ratings = _always_finetuned(sheet.key.astype(str))
    now = time.time()
    _write(tmp_path / "ratings_ann.csv", ratings, mtime=now - 60)
    changed = ratings.assign(choice="tie")  # the re-download, made later, changed every answer
    _write(tmp_path / "ratings_ann (1).csv", changed, mtime=now)
    files, _ = ratings_files(tmp_path)
    read = read_ratings(files, sheet.key.astype(str))
    assert len(read) == 4 and read.attrs["duplicates_dropped"] == 4
    assert set(read["choice"]) == {"tie"}  # the newest file wins
    assert preference_summary(read, sheet.key.astype(str))["judgements"] == 4
    # Without a rater column, "ratings_bob (1).csv" is still bob.
    assert rater_from_file_name(tmp_path / "ratings_bob (1).csv") == "ratings_bob"
    assert rater_from_file_name(tmp_path / "ratings_bob-2.csv") == "ratings_bob"


def test_hidden_files_are_ignored_and_a_bom_is_accepted(tmp_path):
    sheet = build_sheet(_samples(), "finetuned_lm", "base_lm", max_items=4)
    key = sheet.key.astype(str)
    _write(tmp_path / "ratings_ann.csv", _always_finetuned(key), encoding="utf-8-sig")  # Excel's BOM
    (tmp_path / "._ratings_ann.csv").write_bytes(b"\x00\x05\x16\x07Mac OS X resource fork\xff")
    (tmp_path / "~$ratings.csv").write_bytes(b"\x00lock")
    (tmp_path / "notes.txt").write_text("not ratings")
    files, ignored = ratings_files(tmp_path)
    assert [path.name for path in files] == ["ratings_ann.csv"]
    assert ignored == ["._ratings_ann.csv", "notes.txt", "~$ratings.csv"]
    summary = preference_summary(read_ratings(files, key), key)
    assert (summary["wins_a"], summary["wins_b"]) == (0, 4)  # model A = base_lm (sorted)


def test_oversized_file_is_refused_unread(tmp_path):
    sheet = build_sheet(_samples(), "finetuned_lm", "base_lm", max_items=4)
    big = tmp_path / "ratings_big.csv"
    with big.open("wb") as handle:
        handle.truncate(MAX_RATINGS_FILE_BYTES + 1)
    with pytest.raises(RatingsFormatError, match="over the 1,048,576-byte limit"):
        read_ratings([big], sheet.key.astype(str))


@pytest.fixture
def lake_with_samples(tmp_path):
    root = tmp_path / "lake"
    (root / "reports").mkdir(parents=True)
    _samples().to_parquet(root / "reports" / "evaluation_samples.parquet")
    return root


def _run(root, assets, config=None):
    return dg.materialize(
        assets,
        resources={"lake": DataLake(root=str(root))},
        run_config={"ops": {"human_eval_sheet": {"config": config}}} if config else None,
        selection=[asset.key for asset in assets] if len(assets) > 1 else None,
    )


def test_a_new_sheet_never_orphans_returned_ratings(lake_with_samples):
    root = lake_with_samples
    first = _run(root, [human_eval_sheet], {"seed": 1, "max_items": 4})
    first_id = first.asset_materializations_for_node("human_eval_sheet")[0].metadata["sheet_id"].value
    first_key = pd.read_csv(root / "human_eval" / f"sheet-{first_id}" / "key.csv", dtype=str)
    ratings_dir = root / "human_eval" / "ratings"
    _write(ratings_dir / "ratings_ann.csv", _always_finetuned(first_key, "ann"))

    # The sheet is re-materialized with another seed (other sides/order): a new version folder.
    second = _run(root, [human_eval_sheet], {"seed": 2, "max_items": 4})
    second_id = second.asset_materializations_for_node("human_eval_sheet")[0].metadata["sheet_id"].value
    assert second_id != first_id
    assert pd.read_csv(root / "human_eval" / f"sheet-{first_id}" / "key.csv", dtype=str).equals(first_key)
    again = _run(root, [human_eval_sheet], {"seed": 2, "max_items": 4})  # same sheet: same folder, no error
    assert (
        again.asset_materializations_for_node("human_eval_sheet")[0].metadata["sheet_id"].value == second_id
    )
    second_key = pd.read_csv(root / "human_eval" / f"sheet-{second_id}" / "key.csv", dtype=str)
    _write(ratings_dir / "ratings_bob.csv", _always_finetuned(second_key, "bob"))
    (ratings_dir / "._ratings_bob.csv").write_bytes(b"\x00\x05\x16\x07")

    result = _run(root, [human_eval_results])
    metadata = result.asset_materializations_for_node("human_eval_results")[0].metadata
    assert metadata["status"].value == "rated"
    assert metadata["judgements"].value == 8  # 4 from each sheet version, each joined with its own key
    assert metadata["win_rate/base_lm"].value == 0.0  # every judgement preferred finetuned_lm
    assert metadata["current_sheet"].value == second_id
    assert metadata["sheet_versions"].value == sorted([first_id, second_id])
    assert metadata["ignored_files"].value == ["._ratings_bob.csv"]
    assert len(load_sheet_keys(root / "human_eval")) == 8
