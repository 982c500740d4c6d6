"""What each layer may import, checked in a fresh interpreter: the library packages never import
Dagster (only ``genai_assets.defs``, the code location and the CLI may), and loading the code
location or building the CLI parser never imports torch or transformers."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

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
    "stages",  # orchestration, still no Dagster: defs/ adapts it
)

PROBE = """
import importlib, json, pkgutil, sys
import genai_assets
packages = {packages}
modules = ["genai_assets." + name for name in ("lake", "escaping", "plotting", "schema", "cli_input", "config_checks", "package_data")]
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


# --- Layers: every import of our own modules (top-level and inside functions) points downward. ---

#: Bottom to top. A module may import its own package, any package of a lower layer, and, inside a
#: layer, only along ``SAME_LAYER_EDGES`` (domain) or without forming a cycle (the other layers).
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "core",
        frozenset(
            {
                "__init__",
                "schema",
                "lake",
                "config_checks",
                "package_data",
                "plotting",
                "cli_input",
                "escaping",
                "data",
            }
        ),
    ),
    ("domain", frozenset({"sources", "cleaning", "text", "models"})),
    ("engine", frozenset({"training"})),
    (
        "features",
        frozenset({"finetune", "evaluation", "generation", "publish", "teaching", "reporting", "playground"}),
    ),
    ("stages", frozenset({"stages"})),
    ("dagster", frozenset({"defs"})),
    ("entry", frozenset({"definitions", "cli"})),
)
#: Inside the domain layer: ``text`` may use ``cleaning`` (never the reverse), ``cleaning`` may use
#: ``sources`` (the site list); ``models`` stands alone.
SAME_LAYER_EDGES = {"domain": {("text", "cleaning"), ("cleaning", "sources"), ("text", "sources")}}


def own_imports(root: Path) -> list[tuple[str, int, str]]:
    """(importing module, line, imported module) for every import of ``genai_assets`` under ``root``
    (the folder holding the ``genai_assets`` package), wherever it appears in the file."""
    package_dir = root / "genai_assets"
    modules = {_module_name(path, root): path for path in package_dir.rglob("*.py")}
    found = []
    for module, path in sorted(modules.items()):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, path.name == "__init__.py", node.level, node.module)
                # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            found += [(module, node.lineno, t) for t in targets if t.split(".")[0] == "genai_assets"]
    return found


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - level + 1]
    return ".".join(base + ([name] if name else []))


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(package: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if package in members:
            return index
    raise AssertionError(f"genai_assets.{package} belongs to no layer: add it to LAYERS")


def layering_violations(root: Path) -> list[str]:
    """Upward imports, forbidden same-layer imports, and import cycles (between packages or modules)."""
    edges = own_imports(root)
    problems = []
    package_graph: dict[str, set[str]] = {}
    module_graph: dict[str, set[str]] = {}
    for module, line, target in edges:
        source_package, target_package = _package(module), _package(target)
        if target != module:
            module_graph.setdefault(module, set()).add(target)
        if source_package == target_package:
            continue
        package_graph.setdefault(source_package, set()).add(target_package)
        source_layer, target_layer = _layer(source_package), _layer(target_package)
        layer_name = LAYERS[source_layer][0]
        if target_layer > source_layer:
            problems.append(
                f"upward: {module}:{line} imports {target} ({layer_name} -> {LAYERS[target_layer][0]})"
            )
        elif target_layer == source_layer and (source_package, target_package) not in SAME_LAYER_EDGES.get(
            layer_name, {(source_package, target_package)}
        ):
            problems.append(f"sideways: {module}:{line} imports {target} (inside {layer_name})")
    problems += [f"package cycle: {' <-> '.join(sorted(c))}" for c in _cycles(package_graph)]
    problems += [f"module cycle: {' <-> '.join(sorted(c))}" for c in _cycles(module_graph)]
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


REPO_ROOT = Path(__file__).resolve().parents[1]


def test_imports_point_down_the_layers_and_form_no_cycle():
    edges = own_imports(REPO_ROOT)
    assert len(edges) > 300  # the scan really read the package, function-local imports included
    assert layering_violations(REPO_ROOT) == []


def _plant(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / "genai_assets" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_layering_check_fails_on_a_planted_upward_import_and_cycle(tmp_path):
    """The same checker over a small synthetic package: a function-local upward import (models →
    training), a relative one, a cleaning → text import and a module cycle are each reported."""
    _plant(
        tmp_path,
        {
            "__init__.py": "",
            "schema.py": "X = 1\n",
            "models/__init__.py": "",
            "models/transformer.py": "def f():\n    from genai_assets.training import loop\n",
            "models/hf_gpt2.py": "from genai_assets.models import transformer\n",
            "models/a.py": "from . import b\n",
            "models/b.py": "def g():\n    from genai_assets.models import a\n",
            "training/__init__.py": "",
            "training/loop.py": "from ..schema import X\nfrom ..stages import run\n",
            "stages/__init__.py": "",
            "stages/run.py": "import genai_assets.training.loop\n",
            "cleaning/__init__.py": "from genai_assets.text import tokens\n",
            "text/__init__.py": "",
            "text/tokens.py": "from genai_assets.cleaning import split\n",
            "cleaning/split.py": "",
        },
    )
    assert sorted(layering_violations(tmp_path)) == [
        "module cycle: genai_assets.models.a <-> genai_assets.models.b",
        "module cycle: genai_assets.stages.run <-> genai_assets.training.loop",
        "package cycle: cleaning <-> text",
        "package cycle: stages <-> training",
        "sideways: genai_assets.cleaning:1 imports genai_assets.text.tokens (inside domain)",
        "upward: genai_assets.models.transformer:2 imports genai_assets.training.loop (domain -> engine)",
        "upward: genai_assets.training.loop:2 imports genai_assets.stages.run (engine -> stages)",
    ]  # models.hf_gpt2 -> models.transformer (downward, inside a package) is fine


MAX_FUNCTION_LINES = 60  # the anchors' longest (nanoGPT, minGPT) are about 50


def long_functions(package_dir: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path:line name (n lines)`` for every function or method longer than ``limit`` lines."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append(
                        f"{path.relative_to(package_dir.parent)}:{node.lineno} {node.name} ({length} lines)"
                    )
    return found


def test_no_function_is_longer_than_sixty_lines(tmp_path):
    assert long_functions(REPO_ROOT / "genai_assets") == []
    # The check can fail: a 61-line function is listed, a 60-line one is not.
    package = tmp_path / "genai_assets"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(59))
    (package / "m.py").write_text(f"def ok():\n{body}\n\n\ndef too_long():\n{body}\n    return 0\n")
    assert long_functions(package) == ["genai_assets/m.py:63 too_long (61 lines)"]
