"""The cleansed corpus as a Hugging Face dataset: typed ``Features``, a ``DatasetDict``, a ``DatasetCard``.

``poems_dataset_dict(poems)`` turns the ``cleansed_poems`` table (contract 2) into a
``DatasetDict`` with the splits ``train``/``validation``/``test`` (the pipeline's ``val`` is
renamed ``validation``, the name ``datasets`` users and the Hub viewer expect; the poem-level
split itself is unchanged, so no poem is in two splits). ``poems_dataset_card`` writes the card:
sources, the license of every poem (counted per license and source), the cleaning steps with
the rows each removed, and the counts per split. ``save_hub_dataset_folder`` writes the folder a
Hub dataset repo holds (``README.md`` + ``data/<split>-00000-of-00001.parquet``), which
``datasets.load_dataset(folder)`` reads back with the same splits and features, and which
``hub_upload`` pushes with ``upload_folder`` next to the model.

No Dagster here; ``datasets`` and ``huggingface_hub`` are imported inside the functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from genai_assets.escaping import md_bold, md_code_span, md_inline, md_table
from genai_assets.lake import atomic_directory
from genai_assets.schema import CLEANSED_POEM_COLUMNS
from genai_assets.sources.sites import ALL_SITES

DEFAULT_DATASET_REPO_ID = "genai-assets/cleansed-poems"
#: pipeline split name → published split name (the ``datasets``/Hub convention).
HUB_SPLITS = {"train": "train", "val": "validation", "test": "test"}
#: published columns, in order (``split`` becomes the DatasetDict key instead of a column).
POEM_COLUMNS = tuple(column for column in CLEANSED_POEM_COLUMNS if column != "split")
#: what each cleaning step does (``genai_assets.cleaning.pipeline``), for the card.
STEP_NOTES = {
    "transform": "text repaired in place (rows kept)",
    "filter": "poems dropped",
    "dedup": "duplicates dropped, keeping the best-attributed copy",
}


def poem_features(sources: Sequence[str] = ALL_SITES):
    """Typed columns of the published corpus; ``source`` is a class label over the site keys."""
    from datasets import ClassLabel, Features, List, Value

    return Features(
        {
            "poem_id": Value("string"),
            "source": ClassLabel(names=list(sources)),
            "url": Value("string"),
            "title": Value("string"),
            "author": Value("string"),
            "text": Value("string"),
            "tags": List(Value("string")),
            "form": Value("string"),
            "license": Value("string"),
            "fetched_at": Value("timestamp[us, tz=UTC]"),
            "content_hash": Value("string"),
            "n_lines": Value("int32"),
            "n_words": Value("int32"),
        }
    )


def poems_dataset_dict(poems):
    """``DatasetDict`` train/validation/test of the cleansed poems, table order kept in each split."""
    import pandas as pd
    from datasets import Dataset, DatasetDict

    missing = [column for column in (*POEM_COLUMNS, "split") if column not in poems.columns]
    if missing:
        raise ValueError(f"cleansed_poems lacks the columns {missing}; re-materialize cleansed_poems.")
    if poems.empty:
        raise ValueError("cleansed_poems is empty: nothing to publish.")
    unknown_splits = sorted(set(poems["split"].astype(str)) - set(HUB_SPLITS))
    if unknown_splits:
        raise ValueError(f"Unknown split names {unknown_splits}; expected {sorted(HUB_SPLITS)}.")
    unknown_sources = sorted(set(poems["source"].astype(str)) - set(ALL_SITES))
    if unknown_sources:
        raise ValueError(f"Unknown sources {unknown_sources}; the class label knows {list(ALL_SITES)}.")
    table = poems.loc[:, [*POEM_COLUMNS, "split"]].copy()
    table["fetched_at"] = pd.to_datetime(table["fetched_at"], utc=True).astype("datetime64[us, UTC]")
    table["tags"] = [list(tags) if tags is not None else [] for tags in table["tags"]]
    for column in ("url", "title", "author", "form"):  # pandas NaN → None (a null string)
        table[column] = [value if isinstance(value, str) else None for value in table[column]]
    features = poem_features()
    splits = {}
    for split, hub_split in HUB_SPLITS.items():
        rows = table[table["split"].astype(str) == split].drop(columns="split")
        rows = rows.assign(source=[ALL_SITES.index(source) for source in rows["source"]])
        splits[hub_split] = Dataset.from_pandas(
            rows, features=features, preserve_index=False, split=hub_split
        )
    return DatasetDict(splits)


def size_category(n_rows: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n_rows`` examples."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n_rows < limit:
            return label
    return "100K<n<1M" if n_rows < 1_000_000 else "n>1M"


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Every cell escaped (licenses and source names are scraped text): see ``genai_assets.escaping``."""
    return md_table(header, rows).rstrip("\n")


def _source_counts(dataset, sources: list[str]) -> tuple[dict, Counter]:
    """``(poems per source index by split, poems per (license, source name))`` of ``dataset``."""

    def column(part, name: str) -> list:  # one Arrow column (row selection applied): fast
        return part.select_columns([name]).with_format("arrow")[:][name].to_pylist()

    counts = {split: Counter(column(part, "source")) for split, part in dataset.items()}
    licenses: Counter = Counter()
    for part in dataset.values():
        labels = (sources[index] for index in column(part, "source"))
        licenses.update(zip(column(part, "license"), labels, strict=True))
    return counts, licenses


def _card_data(dataset, repo_id: str, n_rows: int):
    """The card's YAML header: language, license, task, size bucket and the Parquet files per split."""
    from huggingface_hub import DatasetCardData

    return DatasetCardData(
        language=["en"],
        license="other",  # per-poem licenses, mostly public domain: see the license column and table
        pretty_name=repo_id.split("/")[-1],
        task_categories=["text-generation"],
        tags=["poetry"],
        size_categories=[size_category(n_rows)],
        source_datasets=["original"],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}-*.parquet"} for split in dataset],
            }
        ],
    )


def _cleaning_text(cleaning: dict | None) -> str:
    """The card's Cleaning section: rows in/out and one table row per step, or a note that it is unknown."""
    if not cleaning:
        return "_The cleaning report of this snapshot was not recorded; counts above are exact._"
    step_rows = [
        [
            step["kind"],
            md_code_span(step["rule"], table_cell=True),
            step["rows"],
            STEP_NOTES.get(step["kind"], ""),
        ]
        for step in cleaning.get("steps", [])
    ]
    return (
        f"{md_inline(cleaning.get('rows_in', '?'))} raw poems in, {md_inline(cleaning.get('rows_out', '?'))} out "
        "(asset `cleansed_poems`, `genai_assets.cleaning.pipeline`), step by step:\n\n"
        + _markdown_table(["kind", "step", "rows", "effect"], step_rows)
    )


def poems_dataset_card(dataset, repo_id: str = DEFAULT_DATASET_REPO_ID, cleaning: dict | None = None):
    """A ``huggingface_hub.DatasetCard`` for ``dataset`` (from :func:`poems_dataset_dict`).

    ``cleaning``: what ``cleansed_poems`` recorded — ``{"rows_in": int, "rows_out": int,
    "steps": [{"kind", "rule", "rows"}]}`` (rows changed by a transform, removed by the others);
    None when it is not known (the card then says so rather than inventing figures).
    """
    from huggingface_hub import DatasetCard

    sources = dataset["train"].features["source"].names
    counts, licenses = _source_counts(dataset, sources)
    n_rows = sum(len(part) for part in dataset.values())
    present = [index for index, _ in enumerate(sources) if any(counts[split][index] for split in counts)]
    card_data = _card_data(dataset, repo_id, n_rows)
    split_rows = [[sources[index], *(counts[split][index] for split in dataset)] for index in present]
    split_rows.append([md_bold("total"), *(len(part) for part in dataset.values())])
    license_rows = [[license, source, count] for (license, source), count in sorted(licenses.items())]
    feature_rows = [
        [name, md_code_span(feature, table_cell=True)] for name, feature in dataset["train"].features.items()
    ]
    body = f"""# {repo_id.split("/")[-1]}

Poems collected and cleaned by the `genai_assets` Dagster pipeline, for training and evaluating
small poetry language models. One row per poem: lines joined by `\\n`, stanzas by `\\n\\n`.

```python
from datasets import load_dataset

poems = load_dataset("{repo_id}")  # DatasetDict: {", ".join(dataset)}
```

## Splits and sources

Each poem is assigned to one split from a hash of its `poem_id`, so no poem appears in two
splits (`validation` is the pipeline's `val`).

{_markdown_table(["source", *dataset], split_rows)}

## Licenses

Every poem carries its own license in the `license` column; counts per license and source:

{_markdown_table(["license", "source", "poems"], license_rows)}

## Cleaning

{_cleaning_text(cleaning)}

## Features

{_markdown_table(["column", "type"], feature_rows)}
"""
    return DatasetCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def save_hub_dataset_folder(dataset, card, target: str | Path) -> list[str]:
    """Write ``README.md`` (the card) + ``data/<split>-00000-of-00001.parquet`` into ``target``, atomically.

    ``Dataset.to_parquet`` stores the ``Features`` in the Parquet schema metadata, so
    ``load_dataset(target)`` restores the class label, timestamps and int32 counts. Returns the
    files written, relative to ``target``.
    """
    target = Path(target)
    with atomic_directory(target) as staging:
        (staging / "data").mkdir()
        for split, part in dataset.items():
            part.to_parquet(str(staging / "data" / f"{split}-00000-of-00001.parquet"))
        (staging / "README.md").write_text(str(card), encoding="utf-8")
    return sorted(path.relative_to(target).as_posix() for path in target.rglob("*") if path.is_file())


def stage_hub_dataset_copy(source: str | Path, repo_id: str, target: str | Path) -> list[str]:
    """Copy a :func:`save_hub_dataset_folder` folder to ``target`` (atomically) for upload to ``repo_id``.

    The card's ``load_dataset("...")`` line and title are rewritten when the folder was written for
    another repo id, so the published card always names the repo it lives in.
    """
    import re
    import shutil

    source, target = Path(source), Path(target)
    readme = source / "README.md"
    if not readme.is_file() or not (source / "data").is_dir():
        raise FileNotFoundError(
            f"{source} is not a Hub dataset folder (README.md + data/): materialize poems_hf_dataset first."
        )
    card_text = readme.read_text(encoding="utf-8")
    written_for = re.search(r'load_dataset\("([^"]+)"\)', card_text)
    if written_for and written_for.group(1) != repo_id:
        old_id = written_for.group(1)
        card_text = card_text.replace(f'load_dataset("{old_id}")', f'load_dataset("{repo_id}")')
        card_text = card_text.replace(f"# {old_id.split('/')[-1]}\n", f"# {repo_id.split('/')[-1]}\n", 1)
        card_text = card_text.replace(
            f"pretty_name: {old_id.split('/')[-1]}\n", f"pretty_name: {repo_id.split('/')[-1]}\n", 1
        )
    with atomic_directory(target) as staging:
        shutil.copytree(source / "data", staging / "data")
        (staging / "README.md").write_text(card_text, encoding="utf-8")
    return sorted(path.relative_to(target).as_posix() for path in target.rglob("*") if path.is_file())
