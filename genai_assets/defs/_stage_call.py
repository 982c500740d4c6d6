"""The one wiring most asset bodies share: this run's typed stage config, the lake, a log, the inputs.

A stage function (``genai_assets.stages``) takes ``(config, lake, log, *inputs)`` and knows nothing
of Dagster; an asset that only adapts one calls :func:`run_stage` instead of repeating the config
and log plumbing, then turns the stage's result into metadata. Assets that read their config again
afterwards (for metadata) build it themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

from genai_assets.defs._config import StageConfig

Result = TypeVar("Result")


def run_stage(
    run: Callable[..., Result],
    config_class: type[StageConfig],
    context: dg.AssetExecutionContext,
    lake: Any,
    *inputs: Any,
    log: Callable[[str], None] | None = None,
) -> Result:
    """``run(config, lake, log, *inputs)`` with this run's validated library config.

    ``log`` defaults to the run's info log (a refused config fails the step before any work, naming
    the field: :meth:`StageConfig.from_context`).
    """
    config = config_class.from_context(context).to_library()
    return run(config, lake, context.log.info if log is None else log, *inputs)
