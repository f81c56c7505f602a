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
# module may also import its own stage's). A stage is a package of src/orthojac (data, nets, run,
# spectra, claims, workflow, report, reference), in the order the pipeline runs them, above the base
# (the top-level modules both wings share); two packages hold two stages each, in order: nets (the
# operators and their penalties, then the networks built from them) and run (what every training job
# writes, then the paper's training). The paper's runs and the thesis' programs are two wings side by
# side: neither imports the other; the thesis package's modules sit in the stages they serve.
# `orthojac`, `orthojac.nets`, `orthojac.run` and `orthojac.thesis` are __init__ files (a docstring,
# constants); data, spectra, workflow, report and reference are each their stage's main module.
STAGES = [
    ("base", ["orthojac", "orthojac.__main__", "orthojac.cli", "orthojac.files", "orthojac.config",
              "orthojac.device", "orthojac.thesis", "orthojac.thesis.settings",
              "orthojac.spectra_settings"], []),  # cli imports its command on demand
    ("data", ["orthojac.data", "orthojac.data.downloads", "orthojac.data.mnist", "orthojac.thesis.sentiment"],
     ["base"]),
    ("layers", ["orthojac.nets", "orthojac.nets.activations", "orthojac.nets.orthogonal", "orthojac.nets.fused",
                "orthojac.nets.native", "orthojac.nets.native_build", "orthojac.nets.native_families",
                "orthojac.nets.one_channel", "orthojac.nets.layers", "orthojac.nets.regularisers"], ["base"]),  # the operators and their penalties
    ("networks", ["orthojac.nets.models"], ["base", "layers"]),
    ("run", ["orthojac.run", "orthojac.run.progress_line", "orthojac.run.checkpoint", "orthojac.run.optimisers"],
     ["base"]),  # every job's
    ("paper run", ["orthojac.run.select", "orthojac.run.train", "orthojac.run.fastpath"],
     ["base", "data", "layers", "networks", "run"]),
    ("thesis run", ["orthojac.thesis.common", "orthojac.thesis.dense", "orthojac.thesis.rnn",
                    "orthojac.thesis.lstm", "orthojac.thesis.linear", "orthojac.thesis.deep",
                    "orthojac.thesis.theory"], ["base", "data", "layers", "networks", "run"]),
    ("spectra", ["orthojac.spectra", "orthojac.spectra.free"], ["base", "data", "layers", "networks", "run"]),
    ("claims", ["orthojac.claims", "orthojac.claims.rules", "orthojac.claims.runs", "orthojac.claims.paper",
                "orthojac.claims.paper_training", "orthojac.claims.thesis", "orthojac.claims.thesis_theory",
                "orthojac.claims.tables", "orthojac.claims.ledgerview"], ["base"]),
    ("plan", ["orthojac.workflow", "orthojac.workflow.config", "orthojac.workflow.schema",
              "orthojac.workflow.sections",
              "orthojac.workflow.progress"], ["base", "data", "run", "claims"]),
    ("report", ["orthojac.report", "orthojac.report.figures", "orthojac.report.scale", "orthojac.report.render",
                "orthojac.report.check", "orthojac.thesis.figures"], ["base", "claims", "plan"]),
    ("reference", ["orthojac.reference", "orthojac.reference.env", "orthojac.reference.snapshot",
                   "orthojac.reference.parts", "orthojac.reference.compare"], ["base", "claims", "plan"]),
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
        # importing orthojac.run.checkpoint runs orthojac/run/__init__.py first: a package's
        # __init__ counts as imported by every module that imports one of its modules from outside
        targets |= {".".join(t.split(".")[:i]) for t in targets for i in range(2, t.count(".") + 1)
                    if not (name + ".").startswith(".".join(t.split(".")[:i]) + ".")}
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
    assert "orthojac.run" in graph["orthojac.spectra"]  # and the __init__ of a package it imports from
    assert cycles(graph) == []


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_stages_are_in_order_and_hold_every_module():
    order = [stage for stage, _, _ in STAGES]
    for i, (stage, _, uses) in enumerate(STAGES):
        assert set(uses) <= set(order[:i]), f"stage {stage} uses a later stage: {uses}"
    assert set(stage_of()) == set(import_graph()), "a module of src/orthojac is in no stage, or a stage names none"


def test_each_stage_is_one_package():
    """Apart from the thesis wing's modules, a stage's modules are one package of src/orthojac (or
    the top level: the base), so the tree reads as the pipeline."""
    for stage, modules, _ in STAGES:
        packages = {".".join(m.split(".")[:2]) if m.count(".") else m for m in modules
                    if not m.startswith("orthojac.thesis")}
        if stage == "base":
            assert all(m.count(".") <= 1 for m in modules if not m.startswith("orthojac.thesis")), modules
        elif packages:
            assert len(packages) == 1, f"stage {stage} spans packages {sorted(packages)}"


def test_no_stage_imports_a_later_or_sibling_stage():
    assert upward_imports(import_graph()) == []


def test_a_planted_upward_import_is_found(tmp_path):
    """Imports the stages forbid, planted (as late imports) in a copy of the package: the training
    job importing the planner, a thesis program the paper's training, the penalties the networks
    (within one package: nets) and the data a thesis program: each is found, and nothing else."""
    shutil.copytree(SRC / "orthojac", tmp_path / "orthojac")
    plants = {"run/train.py": "from ..workflow import SECTIONS\n",
              "thesis/deep.py": "from ..run.train import train\n",
              "nets/regularisers.py": "from .models import build_model\n",
              "data/__init__.py": "from ..thesis import common\n"}
    for file, line in plants.items():
        path = tmp_path / "orthojac" / file
        path.write_text(path.read_text() + "\n\ndef _planted():\n    " + line)
    assert upward_imports(import_graph(tmp_path)) == [
        ("orthojac.data", "orthojac.thesis.common"), ("orthojac.nets.regularisers", "orthojac.nets.models"),
        ("orthojac.run.train", "orthojac.workflow"), ("orthojac.thesis.deep", "orthojac.run.train")]


MAX_MODULE_LINES = 400  # issue 28: a module a reader can hold; split by what the code does beyond it


def test_no_module_is_over_the_line_limit():
    """Every module of the package has at most MAX_MODULE_LINES lines."""
    long = {str(p.relative_to(SRC)): n for p in sorted(SRC.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by what they do): {long}"
