"""Stage "cleansing": ``cleansed_poems`` (+ exports), its blocking checks, and ``corpus_eda``.

* ``cleansed_poems`` (group ``data``) reads every materialized ``raw_poems`` partition, runs
  :func:`genai_assets.cleaning.pipeline.cleanse_poems` and writes ``<lake>/cleansed_poems.parquet``
  (contract 2) through the IO manager, plus ``<lake>/exports/raw_poems.json`` (seed format) and
  ``<lake>/exports/cleansed.txt`` (poems separated by ``<|endofpoem|>``), and a bar chart of what
  each rule removed (``<lake>/reports/cleansing_steps.png``).
* Blocking checks on it (schema, no empty text, no duplicates, no forbidden characters, valid
  splits) stop downstream assets in the same run when the table would poison them.
* ``corpus_eda`` (group ``data``) writes ``<lake>/reports/corpus_eda.md`` and its PNG plots.

Bodies only gather config and resources; the work is in :mod:`genai_assets.cleaning` and
:mod:`genai_assets.eda`.
"""

import time

import dagster as dg
import pandas as pd
from pydantic import Field

from genai_assets.cleaning.checks import CHECKS
from genai_assets.cleaning.pipeline import CleaningConfig
from genai_assets.defs._resources import DataLake

_DEFAULTS = CleaningConfig()  # one source of truth for the defaults (the cpu demo profile)


class CleansePoemsConfig(dg.Config):
    """Thresholds of the cleansing pipeline (validated by ``CleaningConfig``)."""

    min_lines: int = Field(_DEFAULTS.min_lines, description="Poems with fewer non-blank lines are dropped.")
    min_words: int = Field(_DEFAULTS.min_words, description="Poems with fewer words are dropped.")
    max_lines: int = Field(_DEFAULTS.max_lines, description="Poems with more lines are dropped.")
    max_words: int = Field(_DEFAULTS.max_words, description="Poems with more words are dropped.")
    min_ascii_letter_ratio: float = Field(
        _DEFAULTS.min_ascii_letter_ratio,
        description="Below this share of ASCII letters a poem is non-English.",
    )
    min_stopword_ratio: float = Field(
        _DEFAULTS.min_stopword_ratio,
        description="Below this share of English stopwords a poem is non-English.",
    )
    near_duplicate_threshold: float = Field(
        _DEFAULTS.near_duplicate_threshold,
        description="Estimated Jaccard similarity of word shingles at or above which poems are near duplicates.",
    )
    shingle_size: int = Field(_DEFAULTS.shingle_size, description="Words per shingle for MinHash.")
    num_perm: int = Field(_DEFAULTS.num_perm, description="MinHash permutations (16..1024).")
    lsh_false_negative_weight: float = Field(
        _DEFAULTS.lsh_false_negative_weight,
        description="LSH band layout: weight of missed near-duplicate pairs vs. false candidates, in (0, 1).",
    )
    near_dedup: bool = Field(_DEFAULTS.near_dedup, description="Run MinHash LSH near-duplicate removal.")
    containment_ratio: float = Field(
        _DEFAULTS.containment_ratio,
        description="A poem whose distinctive lines are at least this share already in kept poems is dropped.",
    )
    containment_min_line_words: int = Field(
        _DEFAULTS.containment_min_line_words, description="Words a line needs to count as distinctive."
    )
    containment_dedup: bool = Field(_DEFAULTS.containment_dedup, description="Run line-containment removal.")
    train_ratio: float = Field(_DEFAULTS.train_ratio, description="Share of poems in the train split.")
    val_ratio: float = Field(_DEFAULTS.val_ratio, description="Share in val; test gets the rest.")
    seed: int = Field(_DEFAULTS.seed, description="Seeds the split hash and the MinHash permutations.")
    write_exports: bool = Field(True, description="Write exports/raw_poems.json and exports/cleansed.txt.")

    def cleaning_config(self) -> CleaningConfig:
        return CleaningConfig(**self.model_dump(exclude={"write_exports"}))


class CorpusEdaConfig(dg.Config):
    top_k: int = Field(20, description="Rows of the top-words tables.")
    heaps_points: int = Field(40, description="Points sampled on the vocabulary growth curve.")
    zipf_fit_ranks: int = Field(1000, description="Ranks used to fit the Zipf exponent.")
    n_samples: int = Field(3, description="Sample poems shown in the report.")
    seed: int = Field(1337, description="Seeds the choice of sample poems.")


@dg.asset(
    group_name="data",
    ins={"raw_poems": dg.AssetIn("raw_poems")},
    kinds={"pandas"},
    description="Cleaned, filtered, de-duplicated poems of every source with a train/val/test split.",
)
def cleansed_poems(
    context: dg.AssetExecutionContext,
    config: CleansePoemsConfig,
    lake: DataLake,
    raw_poems: dict[str, pd.DataFrame],
) -> pd.DataFrame:
    from genai_assets.cleaning.exports import write_cleansed_text, write_raw_poems_json
    from genai_assets.cleaning.pipeline import cleanse_poems, combine_partitions
    from genai_assets.defs._metadata import dataframe_markdown, save_figure
    from genai_assets.plotting import new_figure

    cleaning_config = config.cleaning_config()
    partitions = raw_poems if isinstance(raw_poems, dict) else {"raw_poems": raw_poems}
    raw = combine_partitions(partitions)
    context.log.info(f"Cleansing {len(raw)} raw poems from {sorted(partitions)}.")
    started = time.perf_counter()
    result = cleanse_poems(raw, cleaning_config)
    elapsed = time.perf_counter() - started
    table = result.table
    steps = result.steps_frame()
    context.log.info(f"Kept {len(table)} of {len(raw)} poems in {elapsed:.1f}s.")

    metadata: dict[str, object] = {
        "rows_in": dg.MetadataValue.int(len(raw)),
        "rows_out": dg.MetadataValue.int(len(table)),
        "seconds": dg.MetadataValue.float(round(elapsed, 2)),
        "steps": dg.MetadataValue.md(steps.to_markdown(index=False)),
        "rows_per_source": dg.MetadataValue.md(
            pd.DataFrame({"raw": raw["source"].value_counts(), "cleansed": table["source"].value_counts()})
            .fillna(0)
            .astype(int)
            .rename_axis("source")
            .reset_index()
            .to_markdown(index=False)
        ),
        "splits": dg.MetadataValue.json({k: int(v) for k, v in table["split"].value_counts().items()}),
        "preview": dataframe_markdown(table.loc[:, ["poem_id", "source", "title", "text", "split"]], 5),
    }
    for step in result.steps:
        metadata[f"{step.kind}/{step.rule}"] = dg.MetadataValue.int(
            step.rows_changed if step.kind == "transform" else step.rows_removed
        )
    if len(result.removed):
        duplicates = result.removed[result.removed["duplicate_of"].notna()]
        metadata["removed_examples"] = dataframe_markdown(
            duplicates.head(5) if len(duplicates) else result.removed.head(5), 5
        )

    figure = new_figure(7, 3.5)
    axis = figure.subplots()
    removing = steps[steps["kind"] != "transform"]
    axis.barh(removing["rule"], removing["rows_removed"], color="tab:red")
    axis.invert_yaxis()
    axis.set(title=f"Rows removed per step ({len(raw)} in, {len(table)} out)", xlabel="rows")
    metadata["removed_per_step"] = save_figure(figure, lake.reports_dir() / "cleansing_steps.png")

    if config.write_exports:
        exports = lake.exports_dir()
        json_path = write_raw_poems_json(raw, exports / "raw_poems.json")
        text_path = write_cleansed_text(table["text"], exports / "cleansed.txt")
        metadata["export_raw_poems_json"] = dg.MetadataValue.path(str(json_path))
        metadata["export_cleansed_txt"] = dg.MetadataValue.path(str(text_path))
    context.add_output_metadata(metadata)
    return table


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset="cleansed_poems", blocking=True, description=function.__doc__)
        for name, function in CHECKS.items()
    ],
    ins={"cleansed_poems": dg.AssetIn("cleansed_poems")},
)
def cleansed_poems_checks(cleansed_poems: pd.DataFrame):
    """Blocking data-quality checks: a failure stops every downstream asset in the run."""
    for name, function in CHECKS.items():
        outcome = function(cleansed_poems)
        yield dg.AssetCheckResult(
            asset_key="cleansed_poems",
            check_name=name,
            passed=bool(outcome.passed),
            description=outcome.description,
            metadata=outcome.metadata,
        )


@dg.asset(
    group_name="data",
    kinds={"pandas", "matplotlib"},
    description="Corpus statistics and plots: lengths, vocabulary growth, Zipf, top words, sources.",
)
def corpus_eda(
    context: dg.AssetExecutionContext,
    config: CorpusEdaConfig,
    lake: DataLake,
    cleansed_poems: pd.DataFrame,
) -> dg.MaterializeResult:
    from genai_assets.defs._metadata import save_figure
    from genai_assets.eda import PLOTS, compute_corpus_stats, render_report
    from genai_assets.lake import atomic_write_text

    stats = compute_corpus_stats(
        cleansed_poems,
        top_k=config.top_k,
        heaps_points=config.heaps_points,
        zipf_fit_ranks=config.zipf_fit_ranks,
        n_samples=config.n_samples,
        seed=config.seed,
    )
    reports = lake.reports_dir()
    metadata: dict[str, object] = {key: value for key, value in stats.summary().items()}
    image_files = {}
    for name, plot in PLOTS.items():
        file_name = f"corpus_eda_{name}.png"
        metadata[f"plot_{name}"] = save_figure(plot(stats), reports / file_name)
        image_files[name] = file_name
    report_path = atomic_write_text(reports / "corpus_eda.md", render_report(stats, image_files))
    context.log.info(f"Wrote {report_path} and {len(image_files)} plots.")
    metadata |= {
        "report": dg.MetadataValue.path(str(report_path)),
        "per_source": dg.MetadataValue.md(stats.per_source.to_markdown(index=False)),
        "per_split": dg.MetadataValue.md(stats.per_split.to_markdown(index=False)),
        "top_words": dg.MetadataValue.md(stats.top_words.to_markdown(index=False)),
        "top_words_without_stopwords": dg.MetadataValue.md(stats.top_content_words.to_markdown(index=False)),
        "poem_lengths": dg.MetadataValue.md(stats.poem_lengths.to_markdown()),
        "samples": dg.MetadataValue.md(
            "\n\n".join(
                f"**{row.source}** `{row.poem_id}`\n\n```\n{row.text}\n```"
                for row in stats.samples.itertuples()
            )
        ),
    }
    return dg.MaterializeResult(metadata=metadata)


#: Named presets (see genai_assets.defs._presets); the cpu profile is the defaults above.
PRESETS = {
    "tiny": {
        "cleansed_poems": {"config": {"num_perm": 32}},
        "corpus_eda": {"config": {"top_k": 10, "heaps_points": 10, "n_samples": 2}},
    },
    "gpu": {"cleansed_poems": {"config": {"num_perm": 128}}},
}

defs = dg.Definitions(assets=[cleansed_poems, corpus_eda], asset_checks=[cleansed_poems_checks])
