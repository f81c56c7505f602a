"""orthojac's modules import one another without a cycle (module- and function-level imports
alike: a cycle broken by a late import is still one), and only downward along the pipeline's
stages (STAGES), read from the source with `ast`."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from conftest import REPO

SRC = REPO / "src"

# The pipeline's stages in order, each with its modules and the earlier stages it may import (a
# module may also import its own stage's). The paper's runs and the thesis' programs are two
# wings side by side: neither imports the other. `orthojac` and `orthojac.thesis` are the packages'
# __init__ files (constants only).
STAGES = [
    ("base", ["orthojac", "orthojac.files", "orthojac.config", "orthojac.nets.activations", "orthojac.nets.orthogonal",
              "orthojac.run.fastpath", "orthojac.device", "orthojac.run.progress_line", "orthojac.thesis",
              "orthojac.thesis.settings", "orthojac.spectra_settings"], []),
    ("data", ["orthojac.data", "orthojac.data.downloads", "orthojac.data.mnist", "orthojac.thesis.sentiment"], ["base"]),
    ("layers", ["orthojac.nets.layers", "orthojac.nets.regularisers"], ["base"]),  # the operators and their penalties
    ("networks", ["orthojac.nets.models", "orthojac.run.checkpoint"], ["base", "layers"]),
    ("paper run", ["orthojac.run.select", "orthojac.run.train"], ["base", "data", "layers", "networks"]),
    ("thesis run", ["orthojac.thesis.common", "orthojac.thesis.dense", "orthojac.thesis.rnn",
                    "orthojac.thesis.lstm", "orthojac.thesis.linear", "orthojac.thesis.deep",
                    "orthojac.thesis.theory"], ["base", "data", "layers", "networks"]),
    ("spectra", ["orthojac.spectra", "orthojac.spectra.free"], ["base", "data", "layers", "networks"]),
    ("claims", ["orthojac.claims", "orthojac.claims.rules", "orthojac.claims.runs", "orthojac.claims.paper",
                "orthojac.claims.paper_training", "orthojac.claims.thesis", "orthojac.claims.thesis_theory",
                "orthojac.claims.tables", "orthojac.claims.ledgerview"], ["base"]),
    ("plan", ["orthojac.workflow", "orthojac.workflow.config", "orthojac.workflow.schema", "orthojac.workflow.sections",
              "orthojac.workflow.progress"],
     ["base", "data"]),
    ("report", ["orthojac.report.figures", "orthojac.thesis.figures", "orthojac.report.scale", "orthojac.report",
                "orthojac.report.render", "orthojac.report.check", "orthojac.reference", "orthojac.reference.env",
                "orthojac.reference.snapshot", "orthojac.reference.parts", "orthojac.reference.compare"],
     ["base", "claims", "plan"]),
    ("command", ["orthojac.cli", "orthojac.__main__"], ["base"]),  # cli imports its command on demand
]


def module_name(path: Path, src: Path = SRC) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """{module: the orthojac modules it imports} of the package under `src`."""
    paths = sorted(src.rglob("*.py"))
    modules = {module_name(p, src) for p in paths}
    graph = {}
    for path in paths:
        name = module_name(path, src)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                targets |= {target} | {f"{target}.{a.name}" for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def stage_of() -> dict[str, str]:
    stages = {}
    for stage, modules, _ in STAGES:
        for module in modules:
            assert module not in stages, f"{module} is in stages {stages[module]} and {stage}"
            stages[module] = stage
    return stages


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) of every import into a stage the importer's stage may not use."""
    stages, allowed = stage_of(), {stage: {stage, *uses} for stage, _, uses in STAGES}
    return sorted((module, target) for module, targets in graph.items() for target in targets
                  if stages[target] not in allowed[stages[module]])


def test_no_import_cycle():
    graph = import_graph()
    assert "orthojac.data.mnist" in graph["orthojac.data"]  # the graph sees late imports too
    assert cycles(graph) == []


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_stages_are_in_order_and_hold_every_module():
    order = [stage for stage, _, _ in STAGES]
    for i, (stage, _, uses) in enumerate(STAGES):
        assert set(uses) <= set(order[:i]), f"stage {stage} uses a later stage: {uses}"
    assert set(stage_of()) == set(import_graph()), "a module of src/orthojac is in no stage, or a stage names none"


def test_no_stage_imports_a_later_or_sibling_stage():
    assert upward_imports(import_graph()) == []


def test_a_planted_upward_import_is_found(tmp_path):
    """Imports the stages forbid, planted (as late imports) in a copy of the package: the training
    job importing the planner, a thesis program the paper's training, the penalties the networks
    and the data a thesis program: each is found, and nothing else."""
    shutil.copytree(SRC / "orthojac", tmp_path / "orthojac")
    plants = {"train.py": "from .workflow import SECTIONS\n",
              "thesis/deep.py": "from ..train import select_device\n",
              "regularisers.py": "from .models import build_model\n",
              "data.py": "from .thesis import common\n"}
    for file, line in plants.items():
        path = tmp_path / "orthojac" / file
        path.write_text(path.read_text() + "\n\ndef _planted():\n    " + line)
    assert upward_imports(import_graph(tmp_path)) == [
        ("orthojac.data", "orthojac.thesis.common"), ("orthojac.nets.regularisers", "orthojac.nets.models"),
        ("orthojac.thesis.deep", "orthojac.run.train"), ("orthojac.run.train", "orthojac.workflow")]


MAX_MODULE_LINES = 400  # issue 28: a module a reader can hold; split by what the code does beyond it


def test_no_module_is_over_the_line_limit():
    """Every module of the package has at most MAX_MODULE_LINES lines."""
    long = {str(p.relative_to(SRC)): n for p in sorted(SRC.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by what they do): {long}"
