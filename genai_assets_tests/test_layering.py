"""The library packages never import Dagster: only ``genai_assets.defs`` (and the code location
and CLI that load it) may. A fresh interpreter imports every library module and checks."""

from __future__ import annotations

import json
import subprocess
import sys

LIBRARY_PACKAGES = (
    "sources",
    "cleaning",
    "text",
    "models",
    "training",
    "finetune",
    "evaluation",
    "publish",
    "generation",
    "teaching",
    "reporting",
)

PROBE = """
import importlib, json, pkgutil, sys
import genai_assets
packages = {packages}
modules = ["genai_assets." + name for name in ("lake", "plotting", "schema", "eda", "cli_input", "config_checks")]
for name in packages:
    try:
        package = importlib.import_module("genai_assets." + name)
    except ModuleNotFoundError:
        continue  # a package not (yet) in this checkout
    modules.append(package.__name__)
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), package.__name__ + "."):
        modules.append(info.name)
dagster_after = {{}}
for module in modules:
    importlib.import_module(module)
    dagster_after[module] = "dagster" in sys.modules
print(json.dumps({{"modules": modules, "dagster_after": dagster_after}}))
"""


def test_library_packages_import_no_dagster():
    probe = PROBE.format(packages=repr(LIBRARY_PACKAGES))
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["modules"]) > 40  # the walk really found the library
    culprits = [module for module, imported in report["dagster_after"].items() if imported]
    # The first module after which dagster is loaded is the one that imports it.
    assert culprits == [], f"dagster is imported by {culprits[0]} (library modules must not import it)"


def test_dagster_layer_still_imports_dagster():
    """The probe can fail: the Dagster layer does import dagster."""
    probe = "import sys, genai_assets.defs._resources; print('dagster' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
