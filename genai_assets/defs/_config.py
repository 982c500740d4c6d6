"""Dagster run config derived from the library's config dataclasses (one definition per stage).

Every stage's settings are a plain ``@dataclass`` in its library package, with a comment per field
and validation in ``__post_init__``. :func:`stage_config` turns such a dataclass into a
``dg.Config`` subclass: same field names, types, defaults, and the field comments as Launchpad
descriptions. A field added to the dataclass therefore appears in the Launchpad without touching
``defs/``.

Why the asset declares ``config_schema=Derived.config_schema()`` instead of a ``config: Derived``
parameter: Dagster validates run config against a schema of *types* only (a NaN learning rate is a
valid ``Float``), and pydantic validators run only when the step starts. The schema returned here
wraps the config shape in a :class:`dagster.Shape` whose ``post_process`` builds the library
dataclass, so ``dagster.validate_run_config`` — what the Launchpad's launch, ``dagster asset
materialize`` and ``genai-assets materialize`` go through before any step runs — rejects every
value the library rejects, with the library's message (which names the field). The asset body then
calls ``Derived.from_context(context)`` to get the typed config back.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import textwrap
import tokenize
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar

import dagster as dg
from dagster._config.errors import PostProcessingError
from pydantic import Field, ValidationError, create_model, model_validator


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
    def config_schema(cls) -> dg.Field:
        """The asset's ``config_schema``: this class's shape, post-processed by the library dataclass."""
        inferred = cls.to_config_schema().as_field()
        shape = inferred.config_type
        checked = _LibraryCheckedShape(shape.fields, shape.description, cls)
        return dg.Field(checked, description=inferred.description, is_required=False)

    @classmethod
    def from_context(cls, context: dg.AssetExecutionContext):
        """The typed config of this run (defaults already filled in by Dagster)."""
        return cls(**(context.op_config or {}))


class _LibraryCheckedShape(dg.Shape):
    """A strict shape whose post-processing constructs the stage's config (see module docstring)."""

    def __new__(cls, fields, description, config_class: type[StageConfig]):
        # Shape.__new__ memoizes plain Shape instances by key, which would drop this subclass.
        instance = object.__new__(cls)
        instance._initialized = False
        return instance

    def __init__(self, fields, description, config_class: type[StageConfig]):
        # The library class in the description also gives this type its own key in the snapshot.
        library_name = config_class.library_class.__qualname__
        super().__init__(
            fields=fields, description=f"{description or ''} (checked by {library_name})".strip()
        )
        self._config_class = config_class

    def post_process(self, value):
        # Fields with a default factory (lists, nested configs) may be absent: pydantic fills them in.
        try:
            self._config_class(**value)
        except ValidationError as error:
            raise PostProcessingError(describe_validation_error(error)) from error
        return value


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

    Nested dataclass fields become nested configs; ``tuple[X, ...]`` becomes ``list[X]`` (Dagster
    has no tuple type; the dataclass converts back in ``__post_init__`` if it cares).
    """
    fields = library_fields(library_class)
    for name, (annotation, default, description) in asset_only_fields.items():
        if name in fields:
            raise ValueError(f"Asset-only field {name!r} clashes with {library_class.__name__}.{name}.")
        fields[name] = (annotation, Field(default, description=description))
    derived = create_model(
        library_class.__name__,
        __base__=StageConfig,
        __doc__=_first_line(library_class.__doc__),
        **fields,
    )
    derived.library_class = library_class
    derived.asset_only_fields = frozenset(asset_only_fields)
    return derived


def library_fields(library_class: type) -> dict[str, tuple[Any, Any]]:
    """``{name: (annotation, pydantic Field)}`` mirroring a dataclass: for ``create_model`` (configs,
    and resources such as the scraper's, whose HTTP settings are ``HttpPolicy``'s fields)."""
    if not dataclasses.is_dataclass(library_class):
        raise TypeError(f"{library_class!r} is not a dataclass.")
    hints = typing.get_type_hints(library_class)
    comments = field_comments(library_class)
    fields: dict[str, Any] = {}
    for item in dataclasses.fields(library_class):
        annotation = _config_annotation(hints[item.name])
        description = comments.get(item.name)
        if item.default_factory is not dataclasses.MISSING:
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


def field_comments(library_class: type) -> dict[str, str]:
    """``{field: comment}`` from the ``# ...`` comments on (or right above) each field's line.

    Base dataclasses are read too; a subclass that redeclares a field (to change its default)
    may give it a new comment, else the base's comment is kept.
    """
    result: dict[str, str] = {}
    for klass in reversed(library_class.__mro__):
        if dataclasses.is_dataclass(klass) and klass is not object:
            result.update(_own_field_comments(klass))
    return result


def _own_field_comments(library_class: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(library_class))
    except (OSError, TypeError):
        return {}
    comments_by_line: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments_by_line[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    [class_node] = ast.parse(source).body
    result: dict[str, str] = {}
    for statement in class_node.body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        # a comment anywhere in the statement (a formatter may wrap a long line), else the block above
        inside = [
            comments_by_line[line]
            for line in range(statement.lineno, statement.end_lineno + 1)
            if line in comments_by_line
        ]
        above, line = [], statement.lineno - 1
        while line in comments_by_line and lines[line - 1].strip().startswith("#"):
            above.insert(0, comments_by_line[line])
            line -= 1
        if inside or above:
            result[statement.target.id] = " ".join(inside or above)
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


def _config_annotation(annotation):
    """The pydantic/Dagster annotation for a dataclass field's type."""
    nested = _dataclass_type(annotation)
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
