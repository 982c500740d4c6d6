"""Facts the narration states about the code, read from the source at render time (never typed).

The narration writes ``{name}`` where a fact belongs (``"Deduplication runs in {dedup_pass_count}
passes"``); :func:`narration_facts` reads each value from the source tree the walkthrough is
resolved against, with :mod:`ast` (no import, so a copy of the tree can be checked too). When the
code changes (a fifth pass, a different default recipe), the spoken text follows; when the code a
fact reads has moved, the fact is reported stale like a moved symbol.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from pathlib import Path

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


class FactUnavailableError(LookupError):
    """The code a fact is read from is not where the fact expects it (a stale fact)."""


def number_word(value: int) -> str:
    """Small counts as words, so the voice reads them naturally."""
    return _NUMBER_WORDS[value] if 0 <= value < len(_NUMBER_WORDS) else str(value)


def spoken_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _symbol(root: Path, path: str, qualname: str) -> ast.AST:
    file = root / path
    if not file.is_file():
        raise FactUnavailableError(f"{path} does not exist")
    node: ast.AST = ast.parse(file.read_text(encoding="utf-8"))
    for name in qualname.split("."):
        found = [
            child
            for child in ast.iter_child_nodes(node)
            if isinstance(child, ast.ClassDef | ast.FunctionDef) and child.name == name
        ]
        if not found:
            raise FactUnavailableError(f"no '{qualname}' in {path}")
        node = found[0]
    return node


def _string_args(call: ast.Call) -> list[str]:
    return [arg.value for arg in call.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]


def dedup_rules(root: Path) -> list[str]:
    """The de-duplication passes of ``cleanse_poems``, in order: each ``drop(..., rule, "dedup")`` or
    ``drop_duplicates(..., rule, ...)`` call names one (plain or method calls), also inside the
    module's own helper functions that ``cleanse_poems`` calls (followed where they are called)."""
    path = "genai_assets/cleaning/pipeline.py"
    pipeline = _symbol(root, path, "cleanse_poems")  # raises when the file or the function is gone
    tree = ast.parse((root / path).read_text(encoding="utf-8"))
    helpers = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    rules = _dedup_calls(pipeline, helpers, {"cleanse_poems"})
    if not rules:
        raise FactUnavailableError("no de-duplication pass found in cleanse_poems")
    return rules


def _dedup_calls(function: ast.AST, helpers: dict[str, ast.FunctionDef], visited: set[str]) -> list[str]:
    calls = sorted(
        (node for node in ast.walk(function) if isinstance(node, ast.Call)),
        key=lambda node: (node.lineno, node.col_offset),
    )
    rules = []
    for call in calls:
        func = call.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        strings = _string_args(call)
        if (name == "drop_duplicates" and strings) or (
            name == "drop" and strings[-1:] == ["dedup"] and len(strings) == 2
        ):
            rules.append(strings[0])
        elif name in helpers and name not in visited:  # a pass may live in a helper of the pipeline
            visited.add(name)
            rules += _dedup_calls(helpers[name], helpers, visited)
    return rules


def _default(root: Path, path: str, function_or_class: str, name: str):
    """The literal default of a dataclass field or of a function's keyword parameter."""
    node = _symbol(root, path, function_or_class)
    if isinstance(node, ast.ClassDef):
        for statement in node.body:
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and statement.target.id == name
                and statement.value is not None
            ):
                return ast.literal_eval(statement.value)
    else:
        arguments = node.args
        positional = arguments.posonlyargs + arguments.args
        with_defaults = positional[len(positional) - len(arguments.defaults) :]
        pairs = list(zip(with_defaults, arguments.defaults, strict=True))
        pairs += [
            (arg, value)
            for arg, value in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
            if value is not None
        ]
        for arg, value in pairs:
            if arg.arg == name:
                return ast.literal_eval(value)
    raise FactUnavailableError(f"no default for '{name}' in {path}::{function_or_class}")


def decoder_sublayers(root: Path) -> int:
    """Sub-layers of a default ``DecoderLayer``: self-attention, cross-attention if on, feed-forward."""
    cross = _default(root, "genai_assets/models/layers.py", "DecoderLayer.build", "cross_attention")
    return 3 if cross else 2


def finetune_recipe(root: Path) -> str:
    path, config = "genai_assets/finetune/train.py", "FinetuneConfig"
    if not _default(root, path, config, "lora"):
        return "updates every weight of the model"
    rank = _default(root, path, config, "lora_r")
    return f"trains low rank LoRA adapters of rank {rank} beside the frozen weights"


def finetune_saving(root: Path) -> str:
    if _default(root, "genai_assets/finetune/train.py", "FinetuneConfig", "lora"):
        return (
            "After training, the adapters are merged into the weights, so the saved model is an ordinary one."
        )
    return "After training, the whole updated model is saved."


def finetune_evaluation(root: Path) -> str:
    every = _default(root, "genai_assets/finetune/train.py", "FinetuneConfig", "eval_every")
    return "once per epoch and at the end" if every == 0 else f"every {every} steps and at the end"


def evaluation_quality_metrics(root: Path) -> list[str]:
    """The panel titles of the quality chart: ``plot_report``'s first (column, title) list in the file."""
    function = _symbol(root, "genai_assets/evaluation/report.py", "plot_report")
    lists = [
        node
        for node in ast.walk(function)
        if isinstance(node, ast.List) and node.elts and all(isinstance(e, ast.Tuple) for e in node.elts)
    ]
    if not lists:
        raise FactUnavailableError("no (column, title) list in plot_report")
    first = min(lists, key=lambda node: node.lineno)  # the quality chart is drawn first
    return [ast.literal_eval(element.elts[1]).split(" (")[0] for element in first.elts]


def kv_cache_tolerance(root: Path) -> float:
    """The ``atol`` of the test comparing cached and uncached logits."""
    test = _symbol(
        root,
        "genai_assets_tests/test_models_transformer.py",
        "test_kv_cache_gives_the_same_logits_and_greedy_tokens",
    )
    for node in ast.walk(test):
        if isinstance(node, ast.keyword) and node.arg == "atol":
            return float(ast.literal_eval(node.value))
    raise FactUnavailableError("no atol in the KV-cache test")


def rnn_plot_models(root: Path) -> str:
    """What the ``rnn_baselines`` loss plot compares, from the title it is given."""
    function = _symbol(root, "genai_assets/stages/scratch.py", "run_rnn_baselines")
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "loss_curve_figure":
            strings = _string_args(node)
            if strings:
                with_transformer = "transformer" in strings[0].lower()
                return "the three recurrent baselines" + (" and the transformer" if with_transformer else "")
    raise FactUnavailableError("no loss_curve_figure title in run_rnn_baselines")


def _spoken_power_of_ten(value: float) -> str:
    exponent = round(math.log10(value))
    return f"ten to the minus {number_word(-exponent)}" if 10.0**exponent == value else f"{value:g}"


# The files the facts are read from (a change there can change the spoken text).
FACT_SOURCES = (
    "genai_assets/cleaning/pipeline.py",
    "genai_assets/models/layers.py",
    "genai_assets/finetune/train.py",
    "genai_assets/evaluation/report.py",
    "genai_assets_tests/test_models_transformer.py",
    "genai_assets/stages/scratch.py",
)

FACTS: dict[str, Callable[[Path], str]] = {
    "dedup_pass_count": lambda root: number_word(len(dedup_rules(root))),
    "dedup_passes": lambda root: spoken_list([rule.replace("_", " ") for rule in dedup_rules(root)]),
    "decoder_sublayer_count": lambda root: number_word(decoder_sublayers(root)),
    "finetune_recipe": finetune_recipe,
    "finetune_evaluation": finetune_evaluation,
    "finetune_saving": finetune_saving,
    "finetune_lora_rank": lambda root: str(
        _default(root, "genai_assets/finetune/train.py", "FinetuneConfig", "lora_r")
    ),
    "evaluation_quality_metrics": lambda root: spoken_list(evaluation_quality_metrics(root)),
    "kv_cache_tolerance": lambda root: _spoken_power_of_ten(kv_cache_tolerance(root)),
    "rnn_plot_models": rnn_plot_models,
}


def narration_facts(root: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """``({name: spoken value}, {name: problem})`` for every fact in :data:`FACTS`, read under ``root``."""
    values, problems = {}, {}
    for name, read in FACTS.items():
        try:
            values[name] = read(Path(root))
        except (FactUnavailableError, SyntaxError, ValueError) as error:
            problems[name] = f"Narration fact {{{name}}} cannot be read from the source: {error}."
    return values, problems
