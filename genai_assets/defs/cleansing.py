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
:mod:`genai_assets.reporting.eda` (run by :mod:`genai_assets.stages.data`).
"""

import dagster as dg
import pandas as pd

from genai_assets.cleaning.checks import CHECKS
from genai_assets.cleaning.pipeline import CLEANING_PRESETS, CleaningConfig
from genai_assets.defs._config import asset_presets, stage_config
from genai_assets.defs._resources import DataLake
from genai_assets.defs._stage_call import run_stage
from genai_assets.reporting.eda import EDA_PRESETS, EdaConfig

# ``write_exports`` is the asset's own switch; every other field is ``CleaningConfig``'s.
CleansePoemsConfig = stage_config(
    CleaningConfig,
    write_exports=(bool, True, "Write exports/raw_poems.json and exports/cleansed.txt."),
)
CorpusEdaConfig = stage_config(EdaConfig)


def _cleansing_metadata(run) -> dict[str, object]:
    """What ``cleansed_poems`` reports (``run``: a ``stages.data.CleansedPoemsResult``)."""
    from genai_assets.defs._metadata import dataframe_markdown, image_markdown, table_markdown

    raw, result, elapsed = run.raw, run.cleaning, run.seconds
    table, steps = result.table, result.steps_frame()
    metadata: dict[str, object] = {
        "rows_in": dg.MetadataValue.int(len(raw)),
        "rows_out": dg.MetadataValue.int(len(table)),
        "seconds": dg.MetadataValue.float(round(elapsed, 2)),
        "steps": table_markdown(steps),
        "rows_per_source": table_markdown(
            pd.DataFrame({"raw": raw["source"].value_counts(), "cleansed": table["source"].value_counts()})
            .fillna(0)
            .astype(int)
            .rename_axis("source")
            .reset_index()
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

    metadata["removed_per_step"] = image_markdown(run.plot_path)
    if run.export_paths:
        metadata["export_raw_poems_json"] = dg.MetadataValue.path(str(run.export_paths["raw_poems.json"]))
        metadata["export_cleansed_txt"] = dg.MetadataValue.path(str(run.export_paths["cleansed.txt"]))
    return metadata


@dg.asset(
    group_name="data",
    ins={"raw_poems": dg.AssetIn("raw_poems")},
    kinds={"pandas"},
    description="Cleaned, filtered, de-duplicated poems of every source with a train/val/test split.",
    config_schema=CleansePoemsConfig.config_schema(),
)
def cleansed_poems(
    context: dg.AssetExecutionContext,
    lake: DataLake,
    raw_poems: dict[str, pd.DataFrame],
) -> pd.DataFrame:
    from genai_assets.defs._io_manager import asset_version
    from genai_assets.stages.data import run_cleansed_poems

    config = CleansePoemsConfig.from_context(context)
    partitions = raw_poems if isinstance(raw_poems, dict) else {"raw_poems": raw_poems}
    # Every file of this asset is staged in one version the IO manager publishes with the table
    # (genai_assets.lake.AssetVersion): a kill at any moment leaves all files of one run.
    version = asset_version(str(lake.path), context.asset_key, None, context.run_id)
    run = run_cleansed_poems(
        config.to_library(),
        lake,
        context.log.info,
        partitions,
        config.write_exports,
        stage_file=version.stage,
    )
    context.add_output_metadata(_cleansing_metadata(run))
    return run.cleaning.table


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
    config_schema=CorpusEdaConfig.config_schema(),
)
def corpus_eda(
    context: dg.AssetExecutionContext,
    lake: DataLake,
    cleansed_poems: pd.DataFrame,
) -> dg.MaterializeResult:
    from genai_assets.defs._metadata import image_markdown, samples_markdown, table_markdown
    from genai_assets.escaping import md_bold, md_code_span
    from genai_assets.stages.data import run_corpus_eda

    result = run_stage(run_corpus_eda, CorpusEdaConfig, context, lake, cleansed_poems)
    stats, report_path = result.stats, result.report_path
    metadata: dict[str, object] = {key: value for key, value in stats.summary().items()}
    metadata |= {f"plot_{name}": image_markdown(path) for name, path in result.plot_paths.items()}
    metadata |= {
        "report": dg.MetadataValue.path(str(report_path)),
        "per_source": table_markdown(stats.per_source),
        "per_split": table_markdown(stats.per_split),
        "top_words": table_markdown(stats.top_words),
        "top_words_without_stopwords": table_markdown(stats.top_content_words),
        "poem_lengths": table_markdown(stats.poem_lengths, index=True),
        "samples": samples_markdown(  # scraped text: in fences it cannot close
            stats.samples.to_dict("records"),
            label=lambda row: f"{md_bold(row['source'])} {md_code_span(row['poem_id'])}",
        ),
    }
    return dg.MaterializeResult(metadata=metadata)


PRESETS = asset_presets({"cleansed_poems": CLEANING_PRESETS, "corpus_eda": EDA_PRESETS})

defs = dg.Definitions(assets=[cleansed_poems, corpus_eda], asset_checks=[cleansed_poems_checks])
