"""cleansed_poems, its checks and corpus_eda materialized through the real definitions."""

import dagster as dg
import pandas as pd

from genai_assets.cleaning.exports import read_cleansed_text
from genai_assets.cleaning.pipeline import CleaningConfig, cleanse_poems, combine_partitions
from genai_assets.definitions import build_definitions
from genai_assets.defs.cleansing import PRESETS, CleansePoemsConfig, cleansed_poems_checks
from genai_assets_tests.test_cleaning_pipeline import toy_raw


def write_raw_partitions(lake_root) -> dict[str, pd.DataFrame]:
    raw = toy_raw()
    (lake_root / "raw_poems").mkdir()
    partitions = {}
    for source, frame in raw.groupby("source"):
        frame.to_parquet(lake_root / "raw_poems" / f"{source}.parquet", index=False)
        partitions[source] = pd.read_parquet(lake_root / "raw_poems" / f"{source}.parquet")
    return partitions


def materialize(lake_root, run_config=None):
    defs = build_definitions(lake_root=str(lake_root))
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        asset_selection=[dg.AssetKey("cleansed_poems"), dg.AssetKey("corpus_eda")],
        run_config=run_config or {},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_assets_write_table_exports_and_reports(lake_root):
    partitions = write_raw_partitions(lake_root)
    result = materialize(lake_root, {"ops": {"cleansed_poems": {"config": {"num_perm": 128}}}})
    assert result.success
    checks = {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}
    assert checks == dict.fromkeys(
        ("schema", "no_empty_text", "no_duplicates", "no_forbidden_characters", "valid_splits"), True
    )

    table = pd.read_parquet(lake_root / "cleansed_poems.parquet")
    expected = cleanse_poems(combine_partitions(partitions), CleaningConfig(num_perm=128)).table
    assert table["poem_id"].tolist() == expected["poem_id"].tolist()
    assert table["text"].tolist() == expected["text"].tolist()
    assert read_cleansed_text(lake_root / "exports" / "cleansed.txt") == table["text"].tolist()
    exported = pd.read_json(lake_root / "exports" / "raw_poems.json")
    assert (
        len(exported) == 9 and exported["source"].tolist()[:7] == ["gutenberg"] * 7
    )  # raw input, site order

    reports = lake_root / "reports"
    assert (reports / "corpus_eda.md").read_text().startswith("# Corpus EDA")
    for name in ("poem_lengths", "line_lengths", "heaps", "zipf", "sources"):
        assert (reports / f"corpus_eda_{name}.png").stat().st_size > 1000
    assert (reports / "cleansing_steps.png").exists()
    metadata = result.asset_materializations_for_node("cleansed_poems")[0].metadata
    assert metadata["rows_in"].value == 9 and metadata["rows_out"].value == 3
    assert metadata["dedup/near_duplicate"].value == 1


def test_blocking_checks_fail_on_a_poisoned_table(lake_root):
    write_raw_partitions(lake_root)
    assert materialize(lake_root).success
    poisoned = pd.read_parquet(lake_root / "cleansed_poems.parquet")
    poisoned.loc[0, "text"] = "{debris}"
    results = {result.check_name: result.passed for result in cleansed_poems_checks(poisoned)}
    assert results == {
        "schema": True,
        "no_empty_text": True,
        "no_duplicates": True,
        "no_forbidden_characters": False,
        "valid_splits": True,
    }
    specs = list(cleansed_poems_checks.check_specs)
    assert all(spec.blocking for spec in specs) and len(specs) == 5


def test_bad_config_is_rejected_with_a_clear_message(lake_root):
    # CleaningConfig refuses it when the step builds its config, before the asset writes anything.
    write_raw_partitions(lake_root)
    result = materialize(
        lake_root, {"ops": {"cleansed_poems": {"config": {"near_duplicate_threshold": 2.0}}}}
    )
    failures = [event for event in result.all_events if event.is_step_failure]
    assert not result.success and failures
    assert "near_duplicate_threshold must be in (0, 1]" in str(failures[0].event_specific_data.error)
    assert not (lake_root / "cleansed_poems.parquet").exists()


def test_presets_are_valid_configs():
    for preset in PRESETS.values():
        if "cleansed_poems" in preset:
            CleansePoemsConfig(**preset["cleansed_poems"]["config"]).to_library()


def test_invisible_characters_never_reach_the_cleansed_table(lake_root):
    from genai_assets.schema import raw_poems_frame
    from genai_assets_tests.test_cleaning_rules import INVISIBLE
    from genai_assets_tests.test_fuzz_parsing import refused

    write_raw_partitions(lake_root)
    smuggled = raw_poems_frame(
        [
            {
                "source": "poets_org",
                "source_key": "/poem/hidden",
                "title": "Ozymandias" + INVISIBLE.replace("\ud800", ""),  # raw_poems drops lone surrogates
                "author": "\u2067Percy Bysshe Shelley\u2069\U000e0068\U000e0069",
                "text": "I met a traveller from an antique land,\u202e\nWho said\u2014\u200d"
                "\U000e0049\U000e0067\U000e006e\U000e006f\U000e0072\U000e0065: Two vast and trunkless legs\n"
                "Of stone stand in the desert\ufe0f. Near them, on the sand,",
                "license": "PD",
            }
        ]
    )
    smuggled.to_parquet(lake_root / "raw_poems" / "poets_org.parquet", index=False)
    result = materialize(lake_root)
    assert result.success
    checks = {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}
    assert checks["no_forbidden_characters"] is True
    table = pd.read_parquet(lake_root / "cleansed_poems.parquet")
    [row] = table[table["source"] == "poets_org"].to_dict("records")
    assert row["title"] == "Ozymandias"  # the NEL among them became a space, then stripped
    assert row["author"] == "Percy Bysshe Shelley"
    assert row["text"].startswith("I met a traveller from an antique land,\nWho said\u2014: Two vast")
    for column in ("text", "title", "author"):
        assert all(refused(value) == [] for value in table[column].dropna()), column
