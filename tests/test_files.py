"""The data rules' modules need no torch: orthojac.files holds DataError and the atomic writers,
and orthojac.data, orthojac.data.downloads and the MNIST pickle reader import nothing that imports torch
(envs/data.yaml installs none). Nor do the figure modules, which draw from tables only, nor the
workflow's logic (orthojac.workflow and the sections' settings): Snakemake plans without torch."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO

TORCH_FREE = ["orthojac.files", "orthojac.data", "orthojac.data.downloads", "orthojac.data.mnist",
              "orthojac.report.figures", "orthojac.thesis.figures", "orthojac.workflow", "orthojac.thesis.settings",
              "orthojac.cli", "orthojac.workflow.progress", "orthojac.run.progress_line"]


def test_the_data_modules_import_without_torch():
    code = ("import sys\nsys.modules['torch'] = None  # `import torch` raises ImportError\n"
            + "".join(f"import {m}\n" for m in TORCH_FREE)
            + "from orthojac.data import main\nfrom orthojac.files import DataError\n"
            # the workflow plans every job's flags without torch (Snakemake's interpreter needs none)
            + "from orthojac.workflow import Pipeline, load_config\n"
            + f"p = Pipeline(load_config(base={str(REPO / 'config/config.yaml')!r}))\n"
            + "assert all(p.section_args(s.name) for s in p.sections)\n"
            + "assert 'torch' not in [m for m, v in sys.modules.items() if v is not None]\n"
            + "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_the_check_notices_a_torch_import():
    """The same subprocess fails for a module that does import torch (the check is not vacuous)."""
    code = "import sys\nsys.modules['torch'] = None\nimport orthojac.run.checkpoint\n"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and "torch" in proc.stderr
