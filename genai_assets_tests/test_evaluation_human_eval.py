"""Human A/B evaluation: blind sheet, key file, ratings reader, Wilson intervals, the HTML page."""

import shutil

import pandas as pd
import pytest

from genai_assets.evaluation.human_eval import (
    RatingsFormatError,
    build_sheet,
    preference_summary,
    read_ratings,
    wilson_interval,
    write_sheet,
)


def _samples(n_prompts: int = 6) -> pd.DataFrame:
    rows = []
    for prompt_id in range(n_prompts):
        for model in ("finetuned_lm", "base_lm", "scratch_transformer"):
            rows.append(
                {
                    "prompt_id": prompt_id,
                    "prompt": f"Prompt line {prompt_id} <b>&",
                    "model": model,
                    "text": f"{model} poem {prompt_id}\nsecond line",
                }
            )
    return pd.DataFrame(rows)


def test_sheet_is_blind_seeded_and_the_key_recovers_each_side():
    sheet = build_sheet(_samples(), "finetuned_lm", "base_lm", seed=7, max_items=4)
    again = build_sheet(_samples(), "finetuned_lm", "base_lm", seed=7, max_items=4)
    pd.testing.assert_frame_equal(sheet.sheet, again.sheet)
    assert sheet.sheet_id == again.sheet_id
    assert list(sheet.sheet.columns) == ["item_id", "prompt", "poem_1", "poem_2"]
    assert sheet.sheet["item_id"].tolist() == ["q01", "q02", "q03", "q04"]
    # Nothing in what raters see names a model column; the key says who wrote which side.
    for row, key in zip(sheet.sheet.itertuples(), sheet.key.itertuples(), strict=True):
        assert row.poem_1.startswith(key.poem_1_model) and row.poem_2.startswith(key.poem_2_model)
        assert {key.poem_1_model, key.poem_2_model} == {"finetuned_lm", "base_lm"}
    # With 4 items the seed puts finetuned_lm on both sides at least once for seed 7.
    assert set(sheet.key["poem_1_model"]) == {"finetuned_lm", "base_lm"}


def test_sheet_names_a_missing_model():
    with pytest.raises(ValueError, match="No samples from model 'rnn'"):
        build_sheet(_samples(), "finetuned_lm", "rnn")


def test_written_files_and_html_escape_the_text(tmp_path):
    sheet = build_sheet(_samples(), "finetuned_lm", "base_lm", seed=1)
    paths = write_sheet(sheet, tmp_path)
    page = paths["sheet_html"].read_text()
    assert "Prompt line 0 &lt;b&gt;&amp;" in page and "<b>&" not in page
    assert "finetuned_lm" in page  # the sample text itself mentions it in this toy ...
    assert "poem_1_model" not in page  # ... but the key never reaches the page
    key = pd.read_csv(paths["key_csv"])
    assert key["sheet_id"].unique().tolist() == [sheet.sheet_id]
    blank = pd.read_csv(paths["sheet_csv"], keep_default_na=False)
    assert {"sheet_id", "item_id", "rater", "choice"} <= set(blank.columns)


def _write_ratings(path, sheet, choices, rater="ann"):
    frame = pd.DataFrame(
        {
            "sheet_id": sheet.sheet_id,
            "item_id": sheet.sheet["item_id"][: len(choices)],
            "rater": rater,
            "choice": choices,
        }
    )
    frame.to_csv(path, index=False)
    return path


def test_preferences_count_wins_per_model_whatever_the_side(tmp_path):
    sheet = build_sheet(_samples(), "finetuned_lm", "base_lm", seed=3)
    # Pick the finetuned side on every item, except one tie and one unrated.
    finetuned_side = ["1" if m == "finetuned_lm" else "2" for m in sheet.key["poem_1_model"]]
    choices = finetuned_side[:4] + ["tie", ""]
    files = [_write_ratings(tmp_path / "ratings_ann.csv", sheet, choices)]
    ratings = read_ratings(files, sheet.key)
    assert len(ratings) == 5  # the unrated row is skipped
    summary = preference_summary(ratings, sheet.key)
    assert (summary["model_a"], summary["model_b"]) == ("base_lm", "finetuned_lm")
    assert (summary["wins_a"], summary["wins_b"], summary["ties"]) == (0, 4, 1)
    assert summary["win_rate_a"] == 0.0
    assert summary["win_rate_a_ci95"] == pytest.approx(list(wilson_interval(0, 4)))


def test_wilson_interval_against_hand_computed_values():
    # p = 0.5, n = 10, z = 1.96: centre 0.5, half width 1.96*sqrt(.025 + .0096)/1.384 = 0.2366...
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 4) == pytest.approx((0.0, 0.4899), abs=1e-4)


def test_scipy_wilson_interval_equals_the_score_formula():
    """scipy's interval (now used) equals Wilson's closed form the module used to compute by hand."""
    import math

    def by_formula(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
        p = successes / trials
        denominator = 1 + z * z / trials
        centre = (p + z * z / (2 * trials)) / denominator
        half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
        return max(0.0, centre - half), min(1.0, centre + half)

    for trials in (1, 2, 7, 30, 250):
        for successes in sorted({0, 1, trials // 3, trials // 2, trials - 1, trials}):
            assert wilson_interval(successes, trials) == pytest.approx(
                by_formula(successes, trials), abs=1e-12
            )
    assert all(math.isnan(value) for value in wilson_interval(0, 0))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["choice"]), r"missing column\(s\) \['choice'\]"),
        (lambda f: f.assign(choice=["1", "maybe"] + ["1"] * (len(f) - 2)), r"row 2, column choice: 'maybe'"),
        (
            lambda f: f.assign(item_id=["q01", "q99"] + list(f["item_id"][2:])),
            r"row 2, column item_id: unknown item 'q99'",
        ),
        (
            lambda f: f.assign(sheet_id="0123abcd0000"),
            r"row 1, column sheet_id: '0123abcd0000' is not a known sheet",
        ),
    ],
)
def test_malformed_ratings_name_the_file_row_and_column(tmp_path, mutate, message):
    sheet = build_sheet(_samples(), "finetuned_lm", "base_lm", seed=3)
    path = _write_ratings(tmp_path / "bad.csv", sheet, ["1", "2", "tie"])
    mutate(pd.read_csv(path, dtype=str)).to_csv(path, index=False)
    with pytest.raises(RatingsFormatError, match=message) as error:
        read_ratings([path], sheet.key)
    assert "bad.csv" in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rater", "file_name"),
    [('Jo, "the" rater', "ratings_Jo___the__rater.csv"), ("=HYPERLINK(1)", "ratings__HYPERLINK_1_.csv")],
)
def test_html_page_downloads_ratings_the_reader_accepts(tmp_path, rater, file_name):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    sheet = build_sheet(_samples(), "finetuned_lm", "base_lm", seed=5, max_items=3)
    page_path = write_sheet(sheet, tmp_path / "human_eval")["sheet_html"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(page_path.as_uri())
            page.check('input[name="q01"][value="2"]')
            page.check('input[name="q03"][value="tie"]')
            page.fill("#rater", rater)
            with page.expect_download() as download_info:
                page.click("#download")
            download = download_info.value
            assert download.suggested_filename == file_name
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
        finally:
            browser.close()
    ratings = read_ratings([saved], sheet.key)
    assert ratings[["item_id", "choice"]].values.tolist() == [["q01", "2"], ["q03", "tie"]]
    assert ratings["rater"].unique().tolist() == [rater]
    # The page's own CSV escapes a formula-like name (OWASP), and the reader undoes it.
    assert ("'=HYPERLINK(1)" in saved.read_text()) == rater.startswith("=")


# Text a scraped prompt or a generated poem could hold: formulas, HTML, Markdown, CSV syntax.
HOSTILE_TEXTS = [
    '=HYPERLINK("http://evil","click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3\nsecond line",
    "@SUM(A1:A9)",
    "\t=1",
    "'=already quoted",
    "</pre><img src=x onerror=alert(1)><script>alert(2)</script>",
    'a "quoted", comma\r\nline',
]


def _hostile_samples() -> pd.DataFrame:
    rows = []
    for prompt_id, text in enumerate(HOSTILE_TEXTS):
        for model in ("finetuned_lm", "base_lm"):
            rows.append({"prompt_id": prompt_id, "prompt": text, "model": model, "text": f"{text} ({model})"})
    return pd.DataFrame(rows)


def test_sheet_csv_cells_are_no_formulas_and_read_back_exactly(tmp_path):
    import csv

    from genai_assets.escaping import csv_cell_original

    sheet = build_sheet(_hostile_samples(), "finetuned_lm", "base_lm", seed=1, max_items=len(HOSTILE_TEXTS))
    paths = write_sheet(sheet, tmp_path)
    with paths["sheet_csv"].open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == ["item_id", "prompt", "poem_1", "poem_2", "sheet_id", "rater", "choice"]
    assert len(rows) == len(HOSTILE_TEXTS)  # no cell broke its row
    for cells, expected in zip(rows, sheet.sheet.itertuples(index=False), strict=True):
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
        assert [csv_cell_original(cell) for cell in cells[:4]] == list(expected)
    # Writing again reads the escaped key back as the same key (no "differs" refusal).
    write_sheet(sheet, tmp_path)


def test_sheet_html_shows_hostile_text_as_text(tmp_path):
    from html.parser import HTMLParser

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.tags, self.pre = [], []
            self._in_pre = False

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self._in_pre = tag == "pre"
            if self._in_pre:
                self.pre.append("")

        def handle_endtag(self, tag):
            self._in_pre = False if tag == "pre" else self._in_pre

        def handle_data(self, data):
            if self._in_pre:
                self.pre[-1] += data

    def parse(frame):
        sheet = build_sheet(frame, "finetuned_lm", "base_lm", seed=1, max_items=len(HOSTILE_TEXTS))
        collector = Collect()
        collector.feed(write_sheet(sheet, tmp_path / sheet.sheet_id)["sheet_html"].read_text())
        return sheet, collector

    sheet, hostile = parse(_hostile_samples())
    _, clean = parse(_hostile_samples().assign(prompt="p", text=lambda frame: "t " + frame["model"]))
    assert hostile.tags == clean.tags  # same elements as a clean sheet: no <img>, no extra <script>
    expected = [value for row in sheet.sheet.itertuples(index=False) for value in row[1:]]
    assert hostile.pre == [value.replace("\r\n", "\n") for value in expected]  # read_text: universal newlines


def test_a_rater_name_the_page_escaped_reads_back_as_typed(tmp_path):
    sheet = build_sheet(_samples(), "finetuned_lm", "base_lm", seed=3)
    path = _write_ratings(tmp_path / "ratings_x.csv", sheet, ["1"], rater="'=cmd|' /C calc'!A0")
    assert read_ratings([path], sheet.key)["rater"].tolist() == ["=cmd|' /C calc'!A0"]


# --- human_eval_results: the ratings database, per-pair Wilson intervals, Fleiss' kappa, the sensor ---


def test_fleiss_kappa_matches_the_worked_example():
    """Fleiss (1971)'s method on the 10 items x 5 categories, 14 raters example (kappa = 0.210)."""
    from genai_assets.evaluation.human_eval import fleiss_kappa

    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(counts) == pytest.approx(0.2099, abs=1e-4)
    assert fleiss_kappa([[2, 0], [0, 2], [2, 0]]) == pytest.approx(1.0)  # full agreement
    with pytest.raises(ValueError, match="at least two raters"):
        fleiss_kappa([[1, 0]])


def test_report_per_pair_wilson_raters_and_agreement():
    from genai_assets.evaluation.human_eval import human_eval_report, judgements_with_winners

    sheet = build_sheet(_samples(4), "finetuned_lm", "base_lm", seed=3)
    key = sheet.key
    finetuned_side = {
        row.item_id: "1" if row.poem_1_model == "finetuned_lm" else "2" for row in key.itertuples()
    }
    rows = [
        {"sheet_id": sheet.sheet_id, "item_id": item, "rater": rater, "choice": side}
        for rater in ("ann", "bob")
        for item, side in finetuned_side.items()
    ]
    rows.append({"sheet_id": sheet.sheet_id, "item_id": "q01", "rater": "cy", "choice": "tie"})
    judgements = judgements_with_winners(pd.DataFrame(rows), key)
    text, summary = human_eval_report(judgements, current_sheet=sheet.sheet_id)
    (pair,) = summary["pairs"]
    assert (pair["model_a"], pair["wins_a"], pair["wins_b"], pair["ties"], pair["raters"]) == (
        "base_lm", 0, 8, 1, 3,
    )  # fmt: skip
    low, high = pair["win_rate_a_ci95"]
    assert (low, high) == pytest.approx(wilson_interval(0, 8))
    assert summary["agreement"]["statistic"] == "Fleiss' kappa" and summary["agreement"]["items"] == 4
    assert summary["wins_b"] == 8  # the current pair's figures at the top level too
    assert "Fleiss' kappa" in text and "| base_lm vs finetuned_lm |" in text


def test_results_read_the_database_and_the_sensor_requests_a_run(tmp_path, monkeypatch):
    import dagster as dg

    from genai_assets.defs._resources import DataLake
    from genai_assets.defs.evaluation import human_eval_results, new_ratings_sensor
    from genai_assets.evaluation.human_eval import mark_current_sheet, sheet_folder
    from genai_assets.evaluation.ratings_db import RatingsStore, ratings_db_url

    monkeypatch.delenv("GENAI_RATINGS_DB_URL", raising=False)
    root = tmp_path / "lake"
    sheet = build_sheet(_samples(3), "finetuned_lm", "base_lm", seed=1)
    write_sheet(sheet, sheet_folder(root / "human_eval", sheet.sheet_id))
    mark_current_sheet(root / "human_eval", sheet.sheet_id)
    lake = DataLake(root=str(root))
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance, resources={"lake": lake})
    assert isinstance(new_ratings_sensor(context), dg.SkipReason)  # no database yet: nothing created
    assert not (root / "human_eval" / "ratings.db").exists()

    store = RatingsStore(ratings_db_url(root))
    for row in sheet.key.itertuples():
        store.add_rating("ann", sheet.sheet_id, row.item_id, "1")
    result = new_ratings_sensor(dg.build_sensor_context(instance=instance, resources={"lake": lake}))
    assert [request.run_key for request in result.run_requests] == ["ratings-3"] and result.cursor == "3"
    again = new_ratings_sensor(
        dg.build_sensor_context(instance=instance, cursor="3", resources={"lake": lake})
    )
    assert isinstance(again, dg.SkipReason)  # nothing newer than the cursor

    # A CSV import adds bob's votes (ann's CSV repeats her database votes: kept once).
    ratings_dir = root / "human_eval" / "ratings"
    ratings_dir.mkdir(parents=True)
    for rater in ("ann", "bob"):
        sheet.key.assign(rater=rater, choice="2")[["sheet_id", "item_id", "rater", "choice"]].to_csv(
            ratings_dir / f"ratings_{rater}.csv", index=False
        )
    run = dg.materialize([human_eval_results], resources={"lake": lake})
    metadata = run.asset_materializations_for_node("human_eval_results")[0].metadata
    assert metadata["judgements"].value == 6 and metadata["raters"].value == 2
    assert metadata["csv_imported"].value == 3
    assert metadata["agreement"].value["items"] == 3
    assert "ratings.db" in metadata["database"].value
    assert store.count() == 6
