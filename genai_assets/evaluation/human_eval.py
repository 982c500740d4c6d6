"""Blind A/B human evaluation: build the sheet, read the filled-in ratings, report preferences.

The sheet shows, per prompt, two continuations ("Poem 1", "Poem 2") from two models in an
order drawn with a seed; which model wrote which poem is kept in a separate key file so the
person rating never sees it. Raters fill in the self-contained HTML page (or the CSV) and
drop the downloaded ``ratings_*.csv`` files into ``<lake>/human_eval/ratings/``.

Ratings CSV (what the page downloads): ``sheet_id, item_id, rater, choice`` with ``choice`` one
of ``1``, ``2``, ``tie``, or empty (not rated yet; skipped). ``sheet_id`` ties a ratings file to
the sheet it was made from.

Sheets are versioned: each lives in ``<lake>/human_eval/sheet-<sheet_id>/`` with its own
``key.csv``, never overwritten, and ``current.json`` names the newest. Re-materializing the sheet
therefore never orphans ratings already handed out: every rating is joined with the key of its
own sheet version. Reading ratings is forgiving where it is safe: hidden files (``._x.csv``,
``.~lock``) are ignored, a UTF-8 BOM is accepted, the same judgement downloaded twice
(``ratings (1).csv``: same sheet, rater and item) counts once (the newest file wins), and a file
larger than :data:`MAX_RATINGS_FILE_BYTES` is refused unread.

Preference: model A's win rate over decisive judgements (ties excluded) with a 95% **Wilson
score interval** (Wilson 1927; good coverage for small n, unlike the normal approximation).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd

from genai_assets.config_checks import Ge, raise_problems, range_problems
from genai_assets.escaping import csv_cell_original, csv_frame_original, csv_frame_text, html_text

CHOICES = ("1", "2", "tie")
# A filled-in sheet is a few hundred bytes per item; 1 MiB is thousands of items. Bigger = not ours.
MAX_RATINGS_FILE_BYTES = 1 << 20
SHEET_FOLDER_PREFIX = "sheet-"
CURRENT_SHEET_FILE = "current.json"
RATING_COLUMNS = ("sheet_id", "item_id", "rater", "choice")
REFERENCE_MODEL = "reference"  # the real continuation, usable as a "model" in the sheet


class RatingsFormatError(ValueError):
    """A ratings file that cannot be read; the message names the file, row and column."""


# Preference order used when a configured model has no samples (e.g. not trained in this run).
FALLBACK_ORDER = ("finetuned_lm", "base_lm", "scratch_transformer", "rnn_baselines", REFERENCE_MODEL)


@dataclass
class HumanEvalSheetConfig:
    """Which two systems the blind A/B sheet compares, and how many prompts it holds."""

    model_a: Annotated[str, "first system ('reference' = the real poem's lines)"] = "finetuned_lm"
    model_b: Annotated[str, "second system; if either is missing, the first two available are used"] = (
        "base_lm"
    )
    max_items: Annotated[int, Ge(1), "prompts on the sheet"] = 16
    seed: Annotated[int, "seed of the item choice, item order and left/right sides"] = 2024

    def __post_init__(self) -> None:
        problems = range_problems(self)
        for name in ("model_a", "model_b"):
            if getattr(self, name) not in FALLBACK_ORDER:
                problems.append(f"{name} must be one of {list(FALLBACK_ORDER)}, got {getattr(self, name)!r}")
        if self.model_a == self.model_b:
            problems.append(f"model_a and model_b are both {self.model_a!r}; choose two different systems")
        raise_problems(self, problems)


HUMAN_EVAL_PRESETS: dict[str, dict] = {"tiny": {"max_items": 4}, "cpu": {}, "gpu": {"max_items": 40}}


@dataclass(frozen=True)
class HumanEvalSheet:
    sheet: pd.DataFrame  # item_id, prompt, poem_1, poem_2 (what raters see)
    key: pd.DataFrame  # sheet_id, item_id, poem_1_model, poem_2_model (kept apart)
    sheet_id: str


def build_sheet(
    samples: pd.DataFrame, model_a: str, model_b: str, seed: int = 1234, max_items: int = 16
) -> HumanEvalSheet:
    """Pair ``model_a`` and ``model_b`` samples for the same prompts, sides shuffled with ``seed``.

    ``samples`` has columns ``prompt_id``, ``prompt``, ``model``, ``text`` (one sample per model
    and prompt; the first is used if there are more).
    """
    missing_columns = {"prompt_id", "prompt", "model", "text"} - set(samples.columns)
    if missing_columns:
        raise ValueError(f"Samples table lacks columns {sorted(missing_columns)}.")
    if model_a == model_b:
        raise ValueError(f"model_a and model_b are both {model_a!r}; choose two different models.")
    available = sorted(samples["model"].unique())
    for name in (model_a, model_b):
        if name not in available:
            raise ValueError(f"No samples from model {name!r}; available: {available}.")
    first = samples.drop_duplicates(["prompt_id", "model"]).assign(
        text=lambda frame: frame["text"].str.strip()
    )
    wide = first.pivot(index="prompt_id", columns="model", values="text")[[model_a, model_b]].dropna()
    prompts = first.drop_duplicates("prompt_id").set_index("prompt_id")["prompt"]
    if wide.empty:
        raise ValueError(f"No prompt has samples from both {model_a!r} and {model_b!r}.")
    rng = np.random.default_rng(seed)
    chosen = sorted(wide.index)
    if len(chosen) > max_items:
        chosen = sorted(rng.choice(chosen, size=max_items, replace=False).tolist())
    order = rng.permutation(len(chosen))  # presentation order, also shuffled
    a_first = rng.random(len(chosen)) < 0.5
    sheet_rows, key_rows = [], []
    for position, chosen_index in enumerate(order):
        prompt_id = chosen[chosen_index]
        item_id = f"q{position + 1:02d}"
        left, right = (model_a, model_b) if a_first[chosen_index] else (model_b, model_a)
        sheet_rows.append(
            {
                "item_id": item_id,
                "prompt": prompts[prompt_id],
                "poem_1": wide.at[prompt_id, left],
                "poem_2": wide.at[prompt_id, right],
            }
        )
        key_rows.append(
            {"item_id": item_id, "prompt_id": prompt_id, "poem_1_model": left, "poem_2_model": right}
        )
    sheet = pd.DataFrame(sheet_rows)
    key = pd.DataFrame(key_rows)
    # Over what raters see AND the key: two sheets share an id (and a folder) only if both are equal.
    content = sheet.to_json(orient="records") + key.to_json(orient="records")
    sheet_id = hashlib.sha256(content.encode()).hexdigest()[:12]
    key.insert(0, "sheet_id", sheet_id)
    return HumanEvalSheet(sheet=sheet, key=key, sheet_id=sheet_id)


def _item_fieldset(row) -> str:
    """One item of the rating page: the prompt, both poems side by side and three radio buttons."""
    item = html_text(row.item_id)
    return f"""<fieldset id="{item}"><legend>{item}</legend>
<p class="label">Prompt</p><pre class="prompt">{html_text(row.prompt)}</pre>
<div class="pair"><div><p class="label">Poem 1</p><pre>{html_text(row.poem_1)}</pre></div>
<div><p class="label">Poem 2</p><pre>{html_text(row.poem_2)}</pre></div></div>
<label><input type="radio" name="{item}" value="1"> Poem 1 is better</label>
<label><input type="radio" name="{item}" value="2"> Poem 2 is better</label>
<label><input type="radio" name="{item}" value="tie"> About the same</label>
</fieldset>"""


_SHEET_STYLE = """body { font-family: Georgia, serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
fieldset { margin: 1.5rem 0; border: 1px solid #bbb; border-radius: 6px; }
.pair { display: flex; gap: 1.5rem; } .pair > div { flex: 1; }
pre { white-space: pre-wrap; font-family: inherit; background: #f7f5ef; padding: .6rem; }
.prompt { background: #eef; } .label { font-weight: bold; margin: .4rem 0 0; }
label { margin-right: 1.2rem; } #status { margin-left: 1rem; }
"""


def _download_script(sheet: HumanEvalSheet) -> str:
    """The page's inline script: the answers as a CSV, saved through a Blob URL (no network)."""
    # json.dumps + "</" escaping keeps the data inert inside <script>.
    item_ids = json.dumps(sheet.sheet["item_id"].tolist()).replace("</", "<\\/")
    sheet_id = json.dumps(sheet.sheet_id)
    return f"""<script>
const SHEET_ID = {sheet_id};
const ITEM_IDS = {item_ids};
function csvField(value) {{
  // OWASP CSV injection: a cell starting =, +, -, @, tab or CR gets a leading ' (csv_cell in Python).
  const raw = String(value);
  const text = /^'*[=+\\-@\\t\\r]/.test(raw) ? "'" + raw : raw;
  return /[",\\r\\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}}
document.getElementById("download").addEventListener("click", () => {{
  const rater = document.getElementById("rater").value.trim();
  const rows = [["sheet_id", "item_id", "rater", "choice"]];
  let answered = 0;
  for (const itemId of ITEM_IDS) {{
    const checked = document.querySelector('input[name="' + itemId + '"]:checked');
    if (checked) answered += 1;
    rows.push([SHEET_ID, itemId, rater, checked ? checked.value : ""]);
  }}
  const csvText = rows.map((row) => row.map(csvField).join(",")).join("\\n") + "\\n";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([csvText], {{ type: "text/csv" }}));
  link.download = "ratings_" + (rater.replace(/[^A-Za-z0-9_-]/g, "_") || "anonymous") + ".csv";
  document.body.appendChild(link);
  link.click();
  link.remove();
  document.getElementById("status").textContent = answered + " of " + ITEM_IDS.length + " rated.";
}});
</script>
"""


def sheet_html(sheet: HumanEvalSheet, title: str = "Which poem continues the prompt better?") -> str:
    """A self-contained rating page: radio buttons per item and a button that downloads the CSV.

    No network: the CSV is built in inline JavaScript and saved through a Blob URL.
    """
    body = "\n".join(_item_fieldset(row) for row in sheet.sheet.itertuples(index=False))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html_text(title)}</title>
<style>
{_SHEET_STYLE}</style></head><body>
<h1>{html_text(title)}</h1>
<p>For each prompt, read both continuations and pick the better poem (fluency, imagery, fit
with the prompt). The poems are shown in random order; you are not told which system wrote which.
When done, enter your name and press <em>Download ratings</em>; send the CSV file back.</p>
<p>Sheet <code>{html_text(sheet.sheet_id)}</code>, {len(sheet.sheet)} items.</p>
{body}
<p><label>Your name or initials <input id="rater" type="text"></label>
<button type="button" id="download">Download ratings (CSV)</button><span id="status"></span></p>
{_download_script(sheet)}</body></html>
"""


def sheet_folder(root: Path, sheet_id: str) -> Path:
    """``<root>/sheet-<sheet_id>``: where one version of the sheet and its key live."""
    return Path(root) / f"{SHEET_FOLDER_PREFIX}{sheet_id}"


def write_sheet(sheet: HumanEvalSheet, folder: Path) -> dict[str, Path]:
    """Write ``sheet.csv``, ``sheet.html`` and ``key.csv`` into ``folder`` (atomically each).

    ``folder`` is the sheet's own version folder (:func:`sheet_folder`). An existing ``key.csv``
    is never replaced: the sheet id hashes the sheet and its key, so the same folder means the same
    key; a different one there (edited by hand) is an error rather than silently lost.
    """
    from genai_assets.lake import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "sheet_csv": folder / "sheet.csv",
        "sheet_html": folder / "sheet.html",
        "key_csv": folder / "key.csv",
    }
    if paths["key_csv"].is_file():
        existing = csv_frame_original(pd.read_csv(paths["key_csv"], dtype=str, keep_default_na=False))
        if not existing.equals(sheet.key.astype(str)):
            raise ValueError(
                f"{paths['key_csv']} differs from sheet {sheet.sheet_id}'s key; refusing to overwrite it."
            )
    else:
        atomic_write_text(paths["key_csv"], csv_frame_text(sheet.key))
    # Prompts and poems are scraped/generated text: csv_frame_text keeps every cell from being a formula.
    atomic_write_text(
        paths["sheet_csv"], csv_frame_text(sheet.sheet.assign(sheet_id=sheet.sheet_id, rater="", choice=""))
    )
    atomic_write_text(paths["sheet_html"], sheet_html(sheet))
    return paths


def mark_current_sheet(root: Path, sheet_id: str) -> Path:
    """Record ``sheet_id`` as the sheet raters are handed now (``<root>/current.json``)."""
    from genai_assets.lake import atomic_write_text

    return atomic_write_text(Path(root) / CURRENT_SHEET_FILE, json.dumps({"sheet_id": sheet_id}) + "\n")


def current_sheet_id(root: Path) -> str | None:
    """The id in ``current.json``; None if no sheet was written yet."""
    path = Path(root) / CURRENT_SHEET_FILE
    if not path.is_file():
        return None
    return str(json.loads(path.read_text(encoding="utf-8"))["sheet_id"])


def load_sheet_keys(root: Path) -> pd.DataFrame:
    """The keys of every sheet version under ``root`` (and a pre-versioning ``key.csv``), stacked."""
    root = Path(root)
    paths = sorted(root.glob(f"{SHEET_FOLDER_PREFIX}*/key.csv"))
    if (root / "key.csv").is_file():
        paths.append(root / "key.csv")
    columns = ["sheet_id", "item_id", "prompt_id", "poem_1_model", "poem_2_model"]
    frames = [csv_frame_original(pd.read_csv(path, dtype=str, keep_default_na=False)) for path in paths]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True).drop_duplicates(["sheet_id", "item_id"])


def ratings_files(folder: Path) -> tuple[list[Path], list[str]]:
    """``(CSV files to read, names ignored)`` in ``folder``; hidden and non-CSV files are ignored.

    ``._x.csv`` (macOS resource forks), ``.~lock.x.csv#`` and ``~$x.csv`` (office lock files) are
    not ratings. Files are ordered oldest first (then by name), so a later download wins duplicates.
    """
    if not Path(folder).is_dir():
        return [], []
    files, ignored = [], []
    for path in Path(folder).iterdir():
        hidden = path.name.startswith((".", "~$"))
        if path.is_file() and not hidden and path.suffix.lower() == ".csv":
            files.append(path)
        else:
            ignored.append(path.name)
    files.sort(key=lambda path: (path.stat().st_mtime, path.name))
    return files, sorted(ignored)


# "ratings_ann (1)", "ratings_ann-2", "ratings_ann copy": the browser's names for a re-download.
_DOWNLOAD_SUFFIX = re.compile(r"(\s*\(\d+\)|-\d+|\s+copy(\s+\d+)?)$")


def rater_from_file_name(path: Path) -> str:
    """The rater a file without a rater column stands for: its name without a re-download suffix."""
    return _DOWNLOAD_SUFFIX.sub("", path.stem)


def read_ratings(files: list[Path], key: pd.DataFrame) -> pd.DataFrame:
    """Validated ratings (file, sheet_id, rater, item_id, choice) from filled-in CSVs; unrated rows skipped.

    ``key`` may hold several sheet versions; each row is checked against its own sheet. The same
    judgement (sheet, rater, item) in several files counts once: the last file in ``files`` wins
    (:func:`ratings_files` orders them oldest first); ``attrs["duplicates_dropped"]`` says how many.
    Raises ``RatingsFormatError`` naming the file, row (1-based data row, as a spreadsheet shows it
    minus the header) and column for anything malformed, and for a file over
    :data:`MAX_RATINGS_FILE_BYTES` (not read).
    """
    known = {(str(sheet), str(item)) for sheet, item in zip(key["sheet_id"], key["item_id"], strict=True)}
    sheet_ids = set(key["sheet_id"].astype(str))
    rows = []
    for path in files:
        size = path.stat().st_size
        if size > MAX_RATINGS_FILE_BYTES:
            raise RatingsFormatError(
                f"{path}: {size:,} bytes, over the {MAX_RATINGS_FILE_BYTES:,}-byte limit for a ratings file; "
                "not read (is it really a downloaded ratings CSV?)."
            )
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                header = [column.strip() for column in reader.fieldnames or []]
                reader.fieldnames = header
                missing = [column for column in ("sheet_id", "item_id", "choice") if column not in header]
                if missing:
                    raise RatingsFormatError(
                        f"{path}: missing column(s) {missing}; expected header {','.join(RATING_COLUMNS)}."
                    )
                for row_number, record in enumerate(reader, start=1):
                    rows.extend(_validated_row(path, row_number, record, known, sheet_ids))
        except UnicodeDecodeError as error:
            raise RatingsFormatError(f"{path}: not UTF-8 text ({error}).") from error
        except csv.Error as error:
            raise RatingsFormatError(f"{path}: not a readable CSV ({error}).") from error
    ratings = pd.DataFrame(rows, columns=["file", "sheet_id", "rater", "item_id", "choice"])
    unique = ratings.drop_duplicates(["sheet_id", "rater", "item_id"], keep="last").reset_index(drop=True)
    unique.attrs["duplicates_dropped"] = len(ratings) - len(unique)
    return unique


def _validated_row(path: Path, row_number: int, record: dict, known: set, sheet_ids: set) -> list[dict]:
    def value(column: str) -> str:
        return (record.get(column) or "").strip()

    if None in record:  # csv.DictReader puts surplus fields under the key None
        raise RatingsFormatError(f"{path}, row {row_number}: more fields than the header has columns.")
    if value("sheet_id") not in sheet_ids:
        raise RatingsFormatError(
            f"{path}, row {row_number}, column sheet_id: {value('sheet_id')!r} is not a known sheet "
            f"({', '.join(sorted(sheet_ids))}); its sheet-<id>/key.csv is missing."
        )
    if (value("sheet_id"), value("item_id")) not in known:
        raise RatingsFormatError(
            f"{path}, row {row_number}, column item_id: unknown item {value('item_id')!r}."
        )
    choice = value("choice").lower()
    if choice == "":
        return []  # not rated
    if choice not in CHOICES:
        raise RatingsFormatError(
            f"{path}, row {row_number}, column choice: {value('choice')!r} is not one of {', '.join(CHOICES)} "
            "(or empty for not rated)."
        )
    rater = csv_cell_original(value("rater")) or rater_from_file_name(path)
    return [
        {
            "file": path.name,
            "sheet_id": value("sheet_id"),
            "rater": rater,
            "item_id": value("item_id"),
            "choice": choice,
        }
    ]


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (scipy's, default 95%); (nan, nan) for 0 trials."""
    if trials == 0:
        return math.nan, math.nan
    from scipy.stats import binomtest

    interval = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def preference_summary(ratings: pd.DataFrame, key: pd.DataFrame) -> dict:
    """Wins per model, ties, and model A's decisive win rate with its 95% Wilson interval.

    Model A is the model the key lists first for item 1 sorted by name, so the summary does not
    depend on presentation order.
    """
    models = sorted(set(key["poem_1_model"]) | set(key["poem_2_model"]))
    if len(models) != 2:
        raise ValueError(f"The key must compare exactly two models, found {models}.")
    model_a, model_b = models
    # Each rating joins the key of its own sheet version (item ids repeat across versions).
    on = ["sheet_id", "item_id"] if "sheet_id" in ratings and "sheet_id" in key else ["item_id"]
    joined = ratings.merge(key.drop_duplicates(on), on=on, how="left", suffixes=("", "_key"))
    winners = np.where(
        joined["choice"] == "1",
        joined["poem_1_model"],
        np.where(joined["choice"] == "2", joined["poem_2_model"], "tie"),
    )
    wins_a = int((winners == model_a).sum())
    wins_b = int((winners == model_b).sum())
    ties = int((winners == "tie").sum())
    low, high = wilson_interval(wins_a, wins_a + wins_b)
    return {
        "model_a": model_a,
        "model_b": model_b,
        "judgements": len(joined),
        "raters": int(joined["rater"].nunique()),
        "wins_a": wins_a,
        "wins_b": wins_b,
        "ties": ties,
        "win_rate_a": wins_a / (wins_a + wins_b) if wins_a + wins_b else math.nan,
        "win_rate_a_ci95": [low, high],
        "interval": "Wilson score, 95%, ties excluded",
    }


def judgements_with_winners(ratings: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    """``ratings`` joined with their own sheet version's key: adds ``pair`` ("a vs b", names sorted)
    and ``winner`` (a model name or ``tie``). Ratings of items no key knows are dropped."""
    joined = ratings.merge(
        key.drop_duplicates(["sheet_id", "item_id"])[["sheet_id", "item_id", "poem_1_model", "poem_2_model"]],
        on=["sheet_id", "item_id"],
        how="inner",
    )
    joined["pair"] = [
        " vs ".join(sorted((first, second)))
        for first, second in zip(joined["poem_1_model"], joined["poem_2_model"], strict=True)
    ]
    joined["winner"] = np.where(
        joined["choice"] == "1",
        joined["poem_1_model"],
        np.where(joined["choice"] == "2", joined["poem_2_model"], "tie"),
    )
    return joined


def pair_preferences(judgements: pd.DataFrame) -> list[dict]:
    """Per model pair: wins, ties, raters, and the first model's decisive win rate with its 95%
    Wilson score interval (ties excluded). ``judgements`` from :func:`judgements_with_winners`."""
    rows = []
    for pair, group in judgements.groupby("pair", sort=True):
        model_a, model_b = pair.split(" vs ")
        wins_a = int((group["winner"] == model_a).sum())
        wins_b = int((group["winner"] == model_b).sum())
        low, high = wilson_interval(wins_a, wins_a + wins_b)
        rows.append(
            {
                "model_a": model_a,
                "model_b": model_b,
                "judgements": len(group),
                "raters": int(group["rater"].nunique()),
                "wins_a": wins_a,
                "wins_b": wins_b,
                "ties": int((group["winner"] == "tie").sum()),
                "win_rate_a": wins_a / (wins_a + wins_b) if wins_a + wins_b else math.nan,
                "win_rate_a_ci95": [low, high],
            }
        )
    return rows


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa (Fleiss 1971) of an (items × categories) table of how many raters chose each.

    Items may have different numbers of raters (each needs at least two): the per-item agreement
    P_i = (Σ_j n_ij² − n_i) / (n_i (n_i − 1)) is averaged, and chance agreement P_e = Σ_j p_j² uses
    the category shares over all ratings. 1 = perfect agreement, 0 = chance level; nan when chance
    agreement is already 1 (every rating in one category).
    """
    counts = np.asarray(counts, dtype=float)
    per_item = counts.sum(axis=1)
    if counts.ndim != 2 or len(counts) == 0 or (per_item < 2).any():
        raise ValueError("Fleiss' kappa needs at least one item, each rated by at least two raters.")
    observed = ((counts**2).sum(axis=1) - per_item) / (per_item * (per_item - 1))
    shares = counts.sum(axis=0) / per_item.sum()
    chance = float((shares**2).sum())
    if math.isclose(chance, 1.0):
        return math.nan
    return float((observed.mean() - chance) / (1 - chance))


def inter_rater_agreement(judgements: pd.DataFrame) -> dict:
    """Fleiss' kappa over the items (sheet version + item) that two or more raters judged; the
    categories are the preferred model or ``tie``, so the sides a rater saw do not matter."""
    table = pd.crosstab([judgements["sheet_id"], judgements["item_id"]], judgements["winner"])
    shared = table[table.sum(axis=1) >= 2]
    result = {"statistic": "Fleiss' kappa", "items": len(shared), "kappa": math.nan}
    if len(shared):
        result["kappa"] = fleiss_kappa(shared.to_numpy())
    return result


def human_eval_report(judgements: pd.DataFrame, current_sheet: str | None = None) -> tuple[str, dict]:
    """Markdown and JSON summary: preferences per pair (Wilson 95%), raters, Fleiss' kappa.

    With ``current_sheet``, the summary's ``current_pair`` is the row of the pair that sheet compares
    (pooled over every sheet version of that pair, ``sheet_versions``) and its fields are repeated
    at the top level (``model_a``, ``wins_a``, ...), the headline of the report.
    """
    pairs = pair_preferences(judgements)
    agreement = inter_rater_agreement(judgements)
    summary = {
        "judgements": len(judgements),
        "raters": int(judgements["rater"].nunique()),
        "pairs": pairs,
        "agreement": agreement,
        "interval": "Wilson score, 95%, ties excluded",
    }
    current_pairs = set(judgements.loc[judgements["sheet_id"] == current_sheet, "pair"])
    if len(current_pairs) == 1:
        (pair,) = current_pairs
        headline = next(row for row in pairs if f"{row['model_a']} vs {row['model_b']}" == pair)
        versions = sorted(judgements.loc[judgements["pair"] == pair, "sheet_id"].unique().tolist())
        summary["current_pair"] = {**headline, "sheet_versions": versions}
        summary.update(headline)
    return _report_markdown(summary), summary


def _report_markdown(summary: dict) -> str:
    """The report's Markdown: one table row per pair, then the inter-rater agreement."""
    from genai_assets.escaping import md_table

    header = [
        "pair",
        "judgements",
        "raters",
        "wins (first)",
        "wins (second)",
        "ties",
        "first preferred",
        "95% Wilson",
    ]
    rows = [
        [
            f"{row['model_a']} vs {row['model_b']}",
            row["judgements"],
            row["raters"],
            row["wins_a"],
            row["wins_b"],
            row["ties"],
            f"{row['win_rate_a']:.1%}",
            "{:.1%} – {:.1%}".format(*row["win_rate_a_ci95"]),
        ]
        for row in summary["pairs"]
    ]
    agreement = summary["agreement"]
    kappa = agreement["kappa"]
    lines = [
        "# Human evaluation",
        "",
        f"{summary['judgements']} judgements by {summary['raters']} rater(s).",
        "",
        md_table(header, rows).rstrip("\n"),
        "",
        f"Inter-rater agreement: {agreement['statistic']} = "
        + ("n/a (no item judged by two raters)" if math.isnan(kappa) else f"{kappa:.3f}")
        + f" over {agreement['items']} item(s) judged by two or more raters.",
        "",
    ]
    return "\n".join(lines)
