"""Data files that ship inside installed pip packages (GloVe vectors, GPT-2's BPE files, ...), and
this project's own data files (``genai_assets/data/``).

The packages are located with ``importlib.util.find_spec`` and never imported: several of them
carry old or heavy ``__init__`` code we do not want to run, only their data.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path


def package_files(package: str, *names: str, install: str) -> tuple[Path, ...]:
    """The files ``names`` (relative paths) inside the installed ``package``, in order.

    Raises ``FileNotFoundError`` naming the package, the missing file and ``install`` (the command
    that installs it) when the package or one of its files is not there.
    """
    spec = importlib.util.find_spec(package)
    locations = [Path(location) for location in (spec.submodule_search_locations or [])] if spec else []
    if not locations:
        raise FileNotFoundError(f"Package {package!r} is not installed; install it with `{install}`.")
    found = []
    for name in names:
        path = next((location / name for location in locations if (location / name).is_file()), None)
        if path is None:
            searched = ", ".join(str(location) for location in locations)
            raise FileNotFoundError(
                f"{name} is missing from the {package!r} package (searched {searched}); "
                f"reinstall it with `{install}`."
            )
        found.append(path)
    return tuple(found)


def project_data_text(name: str) -> str:
    """The text of ``genai_assets/data/<name>``: data this project ships inside its own package
    (poem sets, word lists), kept out of Python literals; listed in pyproject's package data."""
    return resources.files("genai_assets").joinpath("data", name).read_text(encoding="utf-8")


def project_data_lines(name: str) -> list[str]:
    """The lines of a plain-text data file (word lists), without ``#`` comments and blank lines."""
    lines = (line.partition("#")[0].strip() for line in project_data_text(name).splitlines())
    return [line for line in lines if line]
