"""What each layer may import, checked in a fresh interpreter: the library packages never import
Dagster (only ``genai_assets.defs``, the code location and the CLI may), and loading the code
location or building the CLI parser never imports torch or transformers."""

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
    "playground",
)

PROBE = """
import importlib, json, pkgutil, sys
import genai_assets
packages = {packages}
modules = ["genai_assets." + name for name in ("lake", "escaping", "plotting", "schema", "eda", "cli_input", "config_checks")]
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


HEAVY = "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"


def run_probe(code: str) -> subprocess.CompletedProcess:
    """``code`` run by a fresh interpreter; fails the test with its output if it exits non-zero."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result


def test_library_packages_import_no_dagster():
    result = run_probe(PROBE.format(packages=repr(LIBRARY_PACKAGES)))
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["modules"]) > 40  # the walk really found the library
    culprits = [module for module, imported in report["dagster_after"].items() if imported]
    # The first module after which dagster is loaded is the one that imports it.
    assert culprits == [], f"dagster is imported by {culprits[0]} (library modules must not import it)"


def test_dagster_layer_still_imports_dagster():
    """The probe can fail: the Dagster layer does import dagster."""
    result = run_probe("import sys, genai_assets.defs._resources; print('dagster' in sys.modules)")
    assert result.stdout.strip() == "True"


def test_definitions_load_without_importing_torch():
    run_probe(f"import sys; from genai_assets.definitions import defs; defs.resolve_asset_graph(); {HEAVY}")


def test_building_the_cli_parser_stays_light():
    run_probe(
        "import sys; from genai_assets.cli import build_parser; "
        "args = build_parser().parse_args(['generate', '--model', 'm', '--prompt', 'p', '--greedy', '--top-k', '3']); "
        f"assert args.do_sample is False and args.top_k == 3 and args.prompt == ['p']; {HEAVY}"
    )
