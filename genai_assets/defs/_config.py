"""Dagster run config derived from the library's config dataclasses (one definition per stage).

Every stage's settings are a plain ``@dataclass`` in its library package, validated in
``__post_init__``, whose fields carry their description as data: ``name: Annotated[int, "what it
is"] = default``, with its range when it has one (``Annotated[int, Ge(1), "..."]``, see
:mod:`genai_assets.config_checks`). :func:`stage_config` turns such a dataclass into a ``dg.Config`` subclass named
``Dagster<LibraryClass>`` (so a reader, a traceback or the Launchpad never confuses the two): same
field names, types and defaults, and those descriptions (plus the range) as the Launchpad's. A field added to the
dataclass therefore appears in the Launchpad without touching ``defs/``.

Only Dagster's public pythonic-config API is used: the asset's ``config_schema`` is the derived
class's own (``Config.to_config_schema``), and ``Derived.from_context(context)`` builds the typed
config, whose pydantic validator runs the library's checks. Dagster validates run config against
that schema before the run (types, unknown keys, enum values); value checks (ranges, NaN, a field
that depends on another) run when the step starts, before the asset does any work, and fail it
with the library's message naming the field. ``genai-assets materialize`` runs the same checks for
every selected asset before launching (:func:`check_run_config`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar

import dagster as dg
from pydantic import Field, ValidationError, create_model, model_validator

from genai_assets.config_checks import describe_bounds, field_bounds, field_descriptions


class StageConfig(dg.Config):
    """Base of every derived config: knows its library dataclass and validates through it."""

    library_class: ClassVar[type]
    asset_only_fields: ClassVar[frozenset[str]] = frozenset()

    def library_values(self) -> dict[str, Any]:
        """The fields that belong to the library dataclass, nested configs as plain dicts."""
        values = self.model_dump()
        return {name: values[name] for name in _field_names(self.library_class)}

    def to_library(self):
        """The library dataclass with these values (its ``__post_init__`` validates them)."""
        return build_library_config(self.library_class, self.library_values())

    @model_validator(mode="after")
    def _validate_with_library(self):
        self.to_library()  # a ValueError here becomes a pydantic ValidationError naming the field
        return self

    @classmethod
    def config_schema(cls):
        """The asset's ``config_schema``: this class's own schema (fields, defaults, descriptions)."""
        return cls.to_config_schema()

    @classmethod
    def from_context(cls, context: dg.AssetExecutionContext):
        """The typed config of this run (defaults already filled in by Dagster; checked by the library:
        a refused value fails the step here, before the asset does any work, naming the field)."""
        try:
            return cls(**(context.op_config or {}))
        except ValidationError as error:
            raise ValueError(f"Invalid run config: {describe_validation_error(error)}") from None


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: ``field.path: message`` (the library's message names the field too)."""
    lines = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{location}: {message}" if location else message)
    return f"{error.title}: " + "; ".join(lines)


def build_library_config(library_class: type, values: Mapping[str, Any]):
    """``library_class(**values)`` with nested dataclass fields built from their dicts first."""
    hints = typing.get_type_hints(library_class)
    kwargs = {}
    for name, value in values.items():
        nested = _dataclass_type(hints.get(name))
        if nested and isinstance(value, Mapping):
            value = build_library_config(nested, value)
        elif typing.get_origin(hints.get(name)) is tuple and isinstance(value, list):
            value = tuple(value)  # Dagster has no tuple type: the derived config holds a list
        kwargs[name] = value
    return library_class(**kwargs)


@functools.cache
def stage_config(library_class: type, **asset_only_fields: tuple[type, Any, str]) -> type[StageConfig]:
    """A ``dg.Config`` subclass mirroring ``library_class`` (plus ``name=(type, default, description)``
    fields that only the asset uses, e.g. whether to write exports).

    Nested dataclass fields become nested configs whose defaults are the field's default instance
    (Dagster reads a nested config's defaults from its class, so each distinct default instance gets
    its own derived class); ``tuple[X, ...]`` becomes ``list[X]`` (Dagster has no tuple type; the
    dataclass converts back in ``__post_init__`` if it cares).
    """
    return _derived_config(library_class, None, tuple(asset_only_fields.items()))


@functools.cache
def _nested_config(library_class: type, defaults_json: str) -> type[StageConfig]:
    """The derived config of a nested dataclass field whose default instance is ``defaults_json``."""
    return _derived_config(library_class, json.loads(defaults_json), ())


def _derived_config(
    library_class: type, defaults: dict[str, Any] | None, asset_only_fields: tuple
) -> type[StageConfig]:
    fields = library_fields(library_class, defaults)
    for name, (annotation, default, description) in asset_only_fields:
        if name in fields:
            raise ValueError(f"Asset-only field {name!r} clashes with {library_class.__name__}.{name}.")
        fields[name] = (annotation, Field(default, description=description))
    derived = create_model(
        f"Dagster{library_class.__name__}",
        __base__=StageConfig,
        __doc__=_first_line(library_class.__doc__),
        **fields,
    )
    derived.library_class = library_class
    derived.asset_only_fields = frozenset(name for name, _ in asset_only_fields)
    _DERIVED_BY_SCHEMA_KEY[_schema_key(derived.to_config_schema())] = derived
    return derived


_DERIVED_BY_SCHEMA_KEY: dict[str, type[StageConfig]] = {}


def derived_config_class(config_schema) -> type[StageConfig] | None:
    """The derived class whose schema an asset declares (None: not one of ours)."""
    return None if config_schema is None else _DERIVED_BY_SCHEMA_KEY.get(_schema_key(config_schema))


def check_run_config(job: dg.JobDefinition, run_config: Mapping[str, Any]) -> None:
    """Everything the step starts would check, before launching: Dagster's schema validation, then
    each configured asset's typed config built by the library (one ``ValueError`` naming the field)."""
    resolved = dg.validate_run_config(job, run_config)
    problems = []
    for node_name, node_config in resolved.get("ops", {}).items():
        derived = derived_config_class(job.graph.node_named(node_name).definition.config_schema)
        if derived is None:
            continue
        try:
            derived(**((node_config or {}).get("config") or {}))
        except ValidationError as error:
            problems.append(f"{node_name}: {describe_validation_error(error)}")
    if problems:
        raise ValueError("Invalid run config: " + " | ".join(problems))


def _schema_key(config_schema) -> str:
    return config_schema.as_field().config_type.key


def library_fields(
    library_class: type, defaults: Mapping[str, Any] | None = None
) -> dict[str, tuple[Any, Any]]:
    """``{name: (annotation, pydantic Field)}`` mirroring a dataclass: for ``create_model`` (configs,
    and resources such as the scraper's, whose HTTP settings are ``HttpPolicy``'s fields).
    ``defaults`` (a nested field's default instance, as a dict) replaces the class's defaults."""
    if not dataclasses.is_dataclass(library_class):
        raise TypeError(f"{library_class!r} is not a dataclass.")
    hints = typing.get_type_hints(library_class)  # without Annotated's extras: the plain types
    descriptions = field_descriptions(library_class)
    for name, bounds in field_bounds(library_class).items():  # the Launchpad shows each field's range
        ranged = f"must be {describe_bounds(bounds)}"
        descriptions[name] = f"{descriptions[name]}; {ranged}" if name in descriptions else ranged
    fields: dict[str, Any] = {}
    for item in dataclasses.fields(library_class):
        annotation = _config_annotation(hints[item.name], _default_instance(item))
        description = descriptions.get(item.name)
        if defaults is not None and item.name in defaults:
            fields[item.name] = (annotation, Field(defaults[item.name], description=description))
        elif item.default_factory is not dataclasses.MISSING:
            factory = functools.partial(_converted, item.default_factory, annotation)
            fields[item.name] = (annotation, Field(default_factory=factory, description=description))
        elif item.default is not dataclasses.MISSING:
            default = list(item.default) if isinstance(item.default, tuple) else item.default
            fields[item.name] = (annotation, Field(default, description=description))
        else:
            fields[item.name] = (annotation, Field(..., description=description))
    return fields


def asset_presets(presets_by_asset: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, dict]:
    """``{asset: {preset: overrides}}`` (as the library defines them) → ``{preset: {asset: {"config": ...}}}``,
    the run-config fragments :mod:`genai_assets.defs._presets` merges; empty overrides are left out."""
    result: dict[str, dict] = {}
    for asset_name, presets in presets_by_asset.items():
        for preset_name, overrides in presets.items():
            if overrides:
                result.setdefault(preset_name, {})[asset_name] = {"config": dict(overrides)}
    return result


def _field_names(library_class: type) -> list[str]:
    return [item.name for item in dataclasses.fields(library_class)]


def _first_line(doc: str | None) -> str | None:
    return doc.strip().splitlines()[0] if doc else None


def _dataclass_type(annotation) -> type | None:
    return annotation if isinstance(annotation, type) and dataclasses.is_dataclass(annotation) else None


def _converted(factory, annotation):
    """A default from the dataclass's factory, nested dataclasses turned into their derived config."""
    value = factory()
    if dataclasses.is_dataclass(value):
        return annotation(**dataclasses.asdict(value))
    return list(value) if isinstance(value, tuple) else value


def _default_instance(item: dataclasses.Field) -> Any:
    """A nested dataclass field's default value (None when it has none or is not a dataclass)."""
    if item.default_factory is not dataclasses.MISSING:
        value = item.default_factory()
    else:
        value = None if item.default is dataclasses.MISSING else item.default
    return value if dataclasses.is_dataclass(value) else None


def _config_annotation(annotation, default_instance: Any = None):
    """The pydantic/Dagster annotation for a dataclass field's type (a nested dataclass: its derived
    config, with ``default_instance``'s values as the defaults the Launchpad shows)."""
    nested = _dataclass_type(annotation)
    if nested is not None and default_instance is not None:
        return _nested_config(nested, json.dumps(dataclasses.asdict(default_instance), sort_keys=True))
    if nested is not None:
        return stage_config(nested)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple:
        inner = args[0] if args and all(arg == args[0] for arg in args if arg is not Ellipsis) else Any
        return list[_config_annotation(inner)]
    if origin is list:
        return list[_config_annotation(args[0])] if args else list
    if origin in (typing.Union, types.UnionType):
        converted = [_config_annotation(arg) for arg in args]
        return functools.reduce(lambda left, right: left | right, converted)
    return annotation
