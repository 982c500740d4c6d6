"""Every stage's config and every preset, validated by the library dataclass AND by Dagster.

The Dagster configs are derived from the library dataclasses (``genai_assets.defs._config``): Dagster's
own validation refuses unknown keys, wrong types and enum values; a value the library refuses is
refused when the step builds its typed config, and by ``check_run_config`` (what ``genai-assets
materialize`` runs before launching), with the field named. A typo in any preset (the ``gpu`` one
is never run by the tests) fails here.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Annotated

import dagster as dg
import pytest

from genai_assets.definitions import build_definitions
from genai_assets.defs import _config, _presets, preset_jobs
from genai_assets.defs._config import StageConfig, check_run_config, derived_config_class, stage_config
from genai_assets.defs._presets import PRESET_NAMES, preset_run_config

# Assets whose config is not derived from a library dataclass (none left; keep it that way).
NOT_DERIVED: set[str] = set()

# Packages whose configs are new this round and reviewed by their owners' tests (teaching).
OWN_DESCRIPTIONS_CHECKED_ELSEWHERE = ("genai_assets.teaching",)


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    return build_definitions(lake_root=str(tmp_path_factory.mktemp("lake")))


def configured_assets(defs) -> dict[str, object]:
    """``{asset name: its op's config type}`` for every asset that takes config."""
    graph = defs.resolve_asset_graph()
    found = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_executable or node.assets_def.op.config_schema is None:
            continue
        config_type = node.assets_def.op.config_schema.as_field().config_type
        if getattr(config_type, "fields", None):
            found[key.to_user_string()] = config_type
    return found


def derived_classes(defs) -> dict[str, type[StageConfig]]:
    graph = defs.resolve_asset_graph()
    found = {}
    for name in configured_assets(defs):
        derived = derived_config_class(graph.get(dg.AssetKey(name)).assets_def.op.config_schema)
        if derived is not None:
            found[name] = derived
    return found


def test_every_configured_asset_derives_its_config_from_the_library(defs):
    configured = configured_assets(defs)
    derived = derived_classes(defs)
    assert set(configured) - set(derived) <= NOT_DERIVED, sorted(set(configured) - set(derived))
    # the stages the issue names, at least
    assert {
        "poem_tokenizer",
        "token_arrays",
        "cooccurrence_embeddings",
        "cleansed_poems",
        "corpus_eda",
    } <= set(derived)
    assert {"scratch_transformer", "next_line_transformer", "rnn_baselines", "evaluation"} <= set(derived)
    assert {"human_eval_sheet", "raw_poems", "base_lm", "finetuned_lm", "generated_poems"} <= set(derived)


def test_every_library_field_is_in_the_launchpad_with_its_description(defs):
    for asset_name, config_class in derived_classes(defs).items():
        library = config_class.library_class
        fields = configured_assets(defs)[asset_name].fields
        for item in dataclasses.fields(library):
            assert item.name in fields, f"{asset_name}: {item.name} missing from the Dagster schema"
            if not library.__module__.startswith(OWN_DESCRIPTIONS_CHECKED_ELSEWHERE):
                assert fields[item.name].description, f"{library.__name__}.{item.name} has no description"
        # the defaults are the library's (cpu profile), and they validate
        assert config_class().to_library() == library()


def test_a_field_added_to_the_dataclass_appears_without_touching_defs():
    @dataclasses.dataclass
    class Settings:
        """Doc."""

        rate: Annotated[float, "how fast"] = 0.5
        names: Annotated[tuple[str, ...], "which ones"] = ("a",)

    @dataclasses.dataclass
    class MoreSettings(Settings):
        rate: float = 0.25  # a new default keeps the base's description
        extra: Annotated[int, "a new knob"] = 3

    derived = stage_config(MoreSettings)
    shape = derived.config_schema().as_field().config_type
    assert set(shape.fields) == {"rate", "names", "extra"}
    assert (
        shape.fields["extra"].description == "a new knob" and shape.fields["rate"].description == "how fast"
    )
    assert shape.fields["rate"].default_value == 0.25
    assert derived(extra=5).to_library() == MoreSettings(extra=5)
    assert derived.__name__ == "DagsterMoreSettings"  # never the library class's name


def test_the_launchpad_shows_a_field_with_its_declared_description_and_default(defs):
    """What the Launchpad renders for scratch_transformer.n_layer comes from GPTArchitecture's declaration."""
    from genai_assets.models.gpt_config import GPTArchitecture

    field = configured_assets(defs)["scratch_transformer"].fields["n_layer"]
    # The description, then the range declared beside it (Ge(1)).
    assert field.description == "number of decoder layers (N in the paper); must be >= 1"
    assert field.default_value == GPTArchitecture.n_layer == 4
    assert not field.is_required
    evaluation = configured_assets(defs)["evaluation"].fields
    assert all(each.description for each in evaluation.values())


def test_a_nested_settings_field_shows_its_own_default_instance_in_the_launchpad(defs):
    """One SamplingConfig type, nested with different defaults per stage: Dagster would read a nested
    config's defaults from its class, so each default instance gets its own derived class."""
    from genai_assets.finetune.poem_samples import GeneratedPoemsConfig
    from genai_assets.training.scratch_config import ScratchTransformerConfig

    assets = configured_assets(defs)
    for asset_name, library in [
        ("generated_poems", GeneratedPoemsConfig),
        ("scratch_transformer", ScratchTransformerConfig),
    ]:
        nested = assets[asset_name].fields["sampling"].config_type.fields
        expected = dataclasses.asdict(library().sampling)
        assert {name: field.default_value for name, field in nested.items()} == expected
        assert all(field.description for field in nested.values())
    assert expected["temperature"] == 0.8 and expected["repetition_penalty"] == 1.0  # the scratch run's own
    poems = derived_classes(defs)["generated_poems"](sampling={"top_k": 3}).to_library()
    assert (poems.sampling.top_k, poems.sampling.seed, poems.sampling.max_new_tokens) == (3, 1234, 60)


def test_the_derivation_reads_no_source_and_imports_nothing_private():
    source = inspect.getsource(_config)
    assert "dagster._" not in source and "tokenize" not in source and "dg.Shape" not in source


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_every_preset_validates_in_the_library_and_in_dagster(defs, preset):
    ops = preset_run_config(preset)["ops"]
    derived = derived_classes(defs)
    for asset_name, fragment in ops.items():
        if asset_name in derived:
            library = derived[asset_name](**fragment["config"]).to_library()
            assert dataclasses.is_dataclass(library)
    for job_name in (f"demo_{preset}", f"raw_poems_{preset}"):
        job = defs.resolve_job_def(job_name)
        dg.validate_run_config(job)  # the job's own (preset) config
    whole = defs.resolve_implicit_global_asset_job_def()
    dg.validate_run_config(whole, preset_run_config(preset))  # what genai-assets materialize runs


def test_preset_jobs_carry_the_preset_values(defs):
    job = defs.resolve_job_def("demo_tiny")
    resolved = dg.validate_run_config(job)
    assert resolved["ops"]["scratch_transformer"]["config"]["max_steps"] == 6
    assert resolved["ops"]["poem_tokenizer"]["config"]["vocab_size"] == 512
    gpu = dg.validate_run_config(defs.resolve_job_def("demo_gpu"))
    assert gpu["ops"]["scratch_transformer"]["config"]["n_embd"] == 384
    cpu = dg.validate_run_config(defs.resolve_job_def("demo_cpu"))
    cpu_values = cpu["ops"]["scratch_transformer"]["config"] or {}  # cpu = no overrides
    assert derived_classes(defs)["scratch_transformer"](**cpu_values).to_library().max_steps == 300
    raw_job = defs.resolve_job_def("raw_poems_tiny")
    assert raw_job.partitions_def is not None and "raw_poems" not in [
        key.to_user_string() for key in defs.resolve_job_def("demo_tiny").asset_layer.executable_asset_keys
    ]


BAD_VALUES = [
    ("scratch_transformer", {"learning_rate": math.nan}, "learning_rate must be a finite number"),
    ("rnn_baselines", {"grad_clip": math.inf}, "grad_clip must be a finite number"),
    ("next_line_transformer", {"weight_decay": -0.1}, "weight_decay must be >= 0"),
    ("scratch_transformer", {"sample_prompts": []}, "sample_prompts must hold at least one prompt"),
    ("rnn_baselines", {"kinds": ["lstm", "transformer"]}, "kinds must be a non-empty subset"),
    ("human_eval_sheet", {"max_items": -3}, "max_items must be >= 1"),
    ("evaluation", {"temperature": math.nan}, "temperature must be a finite number"),
    ("cooccurrence_embeddings", {"max_sentences": -1}, "max_sentences must be >= 0"),
    ("poem_tokenizer", {"n_example_words": -1}, "n_example_words must be >= 0"),
    (
        "cleansed_poems",
        {"near_duplicate_threshold": math.nan},
        "near_duplicate_threshold must be a finite number",
    ),
    ("cleansed_poems", {"near_duplicate_threshold": 1.5}, "near_duplicate_threshold must be in (0, 1]"),
    ("finetuned_lm", {"grad_clip": math.nan}, "grad_clip must be a finite number"),
    ("finetuned_lm", {"adam_eps": math.inf}, "adam_eps must be a finite number"),
    ("finetuned_lm", {"sampling": {"top_p": 1.5}}, "top_p must be in (0, 1]"),
    ("raw_poems", {"poetrydb_max_poems": -1}, "max_poems must be >= 0, got -1"),
    ("raw_poems", {"collapse_min_ratio": math.nan}, "collapse_min_ratio must be a finite number"),
    ("generated_poems", {"prompts": []}, "prompts must hold at least one prompt"),
    ("generated_poems", {"preset": "corse"}, "Unknown sampling preset 'corse'"),
    ("generated_poems", {"sampling": {"temperature": 0.0}}, "temperature must be > 0"),
    (
        "scratch_transformer",
        {"sampling": {"num_return_sequences": 2}},
        "sampling.num_return_sequences must be 1",
    ),
]


@pytest.mark.parametrize(("asset_name", "values", "message"), BAD_VALUES)
def test_bad_values_are_refused_before_launch_and_at_step_start_with_the_field_named(
    defs, asset_name, values, message
):
    job = defs.resolve_implicit_global_asset_job_def()
    with pytest.raises(ValueError) as error:  # genai-assets materialize, before launching
        check_run_config(job, {"ops": {asset_name: {"config": values}}})
    assert message in str(error.value) and f"{asset_name}:" in str(error.value)
    config_class = derived_classes(defs)[asset_name]
    with pytest.raises(ValueError, match=message.split(" must")[0]):  # what the step start runs
        config_class(**values)


def test_unknown_field_and_unknown_enum_value_are_refused(defs):
    job = defs.resolve_implicit_global_asset_job_def()
    with pytest.raises(dg.DagsterInvalidConfigError, match='unexpected config entry "learning_rat"'):
        dg.validate_run_config(job, {"ops": {"scratch_transformer": {"config": {"learning_rat": 1e-3}}}})
    with pytest.raises(dg.DagsterInvalidConfigError, match="positional_encoding"):
        dg.validate_run_config(
            job, {"ops": {"scratch_transformer": {"config": {"positional_encoding": "rotary"}}}}
        )


def test_a_typo_in_the_gpu_preset_fails_here(defs, monkeypatch):
    from genai_assets.training import scratch_config

    typo = {**scratch_config.SCRATCH_PRESETS["scratch_transformer"]["gpu"], "n_emdb": 384}
    monkeypatch.setitem(scratch_config.SCRATCH_PRESETS["scratch_transformer"], "gpu", typo)
    from genai_assets.defs import scratch

    monkeypatch.setattr(
        scratch, "PRESETS", _presets_with(scratch.PRESETS, "gpu", "scratch_transformer", typo)
    )
    whole = defs.resolve_implicit_global_asset_job_def()
    with pytest.raises(dg.DagsterInvalidConfigError, match='unexpected config entry "n_emdb"'):
        dg.validate_run_config(whole, _presets.preset_run_config("gpu"))
    with pytest.raises(dg.DagsterInvalidConfigError, match="n_emdb"):
        rebuilt = dg.Definitions(
            assets=list(defs.assets), jobs=preset_jobs.preset_jobs(), resources=defs.resources
        )
        dg.validate_run_config(rebuilt.resolve_job_def("demo_gpu"))


def _presets_with(presets: dict, preset: str, asset_name: str, values: dict) -> dict:
    changed = {name: dict(fragments) for name, fragments in presets.items()}
    changed[preset][asset_name] = {"config": values}
    return changed


def test_materialize_refuses_a_bad_value_before_launching_anything(capsys, monkeypatch, tmp_path):
    """``genai-assets materialize`` runs the library's checks of every asset's config first: exit 2, field named."""
    from genai_assets.cli import main

    monkeypatch.setenv("GENAI_DATA_LAKE", str(tmp_path / "lake"))
    bad = '{"ops": {"scratch_transformer": {"config": {"learning_rate": -1.0}}}}'
    status = main(["materialize", "--select", "scratch_transformer", "--config-json", bad])
    error = capsys.readouterr().err
    assert status == 2 and "scratch_transformer: " in error and "learning_rate must be > 0" in error
    assert not (tmp_path / "lake" / "models").exists()  # nothing ran


def test_each_scratch_model_is_declared_once_and_its_stage_config_builds_it():
    """The next-line and RNN stage configs inherit their model's architecture (fields, descriptions,
    checks) as the transformer's does GPTArchitecture's; the loop's settings are TrainLoopConfig's."""
    from genai_assets.models.encoder_decoder_config import EncoderDecoderArchitecture, EncoderDecoderConfig
    from genai_assets.models.rnn_config import RNNArchitecture, RNNConfig
    from genai_assets.training.loop_config import TrainLoopConfig
    from genai_assets.training.scratch_config import NextLineTransformerConfig, RNNBaselinesConfig

    for stage, model in [
        (NextLineTransformerConfig, EncoderDecoderArchitecture),
        (RNNBaselinesConfig, RNNArchitecture),
    ]:
        described = _config.field_descriptions(stage)
        for base in (model, TrainLoopConfig):
            assert {item.name for item in dataclasses.fields(base)} <= set(described)
        assert (
            described["n_head" if model is EncoderDecoderArchitecture else "hidden_size"]
            == (
                _config.field_descriptions(model)[
                    "n_head" if model is EncoderDecoderArchitecture else "hidden_size"
                ]
            )
        )
    meta = {"vocab_size": 99, "pad_id": 0, "bos_id": 1, "eos_id": 2}
    built = NextLineTransformerConfig(d_model=64, n_head=2, max_line_tokens=10).model_config(meta)
    assert built == EncoderDecoderConfig(
        vocab_size=99, max_source_len=10, max_target_len=11, d_model=64, n_head=2
    )
    assert RNNBaselinesConfig(hidden_size=32).model_config("gru", 99) == RNNConfig(
        kind="gru", vocab_size=99, hidden_size=32
    )
    with pytest.raises(ValueError, match="d_model=30 must be divisible by n_head=4"):
        NextLineTransformerConfig(d_model=30)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        RNNBaselinesConfig(dropout=1.0)
    for stage, field_name in [(RNNBaselinesConfig, "n_layer"), (NextLineTransformerConfig, "d_model")]:
        with pytest.raises(ValueError, match=f"{field_name} must be <= ") as error:
            stage(**{field_name: 2**20})
        assert str(error.value).count(f"{field_name} must be <= ") == 1  # bounded once, by the architecture


def test_a_declared_range_is_checked_described_and_inherited():
    """One declaration per range: ``Annotated[int, Ge(1), "..."]`` is what the config checks, what
    the Launchpad shows, and what a subclass redeclaring the field's default keeps."""
    from genai_assets.config_checks import describe_bounds, field_bounds, range_problems
    from genai_assets.defs._config import stage_config
    from genai_assets.models.sampling_settings import SamplingConfig
    from genai_assets.reporting.eda import EdaConfig
    from genai_assets.training.scratch_config import ScratchTransformerConfig

    assert describe_bounds(field_bounds(SamplingConfig)["top_p"]) == "in (0, 1]"
    assert describe_bounds(field_bounds(EdaConfig)["n_samples"]) == ">= 0"
    # max_steps is redeclared (new default, no Annotated) by the scratch configs: the bound stays.
    assert describe_bounds(field_bounds(ScratchTransformerConfig)["max_steps"]) == ">= 1"
    with pytest.raises(ValueError, match="max_steps must be >= 1, got 0"):
        ScratchTransformerConfig(max_steps=0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\], got 1.5"):
        SamplingConfig(top_p=1.5)
    with pytest.raises(ValueError, match="heaps_points must be >= 1, got 0"):
        EdaConfig(heaps_points=0)
    # NaN passes no bound and is reported once, as not finite; edges of a closed bound are inside.
    config = SamplingConfig(top_p=1.0, top_k=0)
    config.temperature = float("nan")
    assert range_problems(config) == ["temperature must be a finite number, got nan"]
    fields = stage_config(SamplingConfig).to_config_schema().as_field().config_type.fields
    assert fields["top_p"].description.endswith("; must be in (0, 1]")
    assert fields["do_sample"].description == "sample (True) or greedy decoding (False)"  # no range
