"""Collect the per-run outputs into tidy tables under one folder.

    python -m orthojac.tables --out-dir results/tables --metrics results/runs/*/*/metrics.csv \
        --body results/spectra/*/*/*.body.csv --layers results/spectra/*/*/*.layers.csv

Paths name their run: results/runs/EXPERIMENT/RUN/metrics.csv (with config.json beside it) and
results/spectra/EXPERIMENT/RUN/CHECKPOINT.{body,layers}.csv. Output: runs.csv (one row per run:
settings, status), metrics.csv, spectra.csv and layers.csv (one row per run × … × metric).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from .checkpoint import write_text_atomic


def _run_of(path: Path) -> tuple[str, str]:
    return path.parent.parent.name, path.parent.name


def collect_runs(metrics_files: list[Path], claims: dict[str, list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs, metrics = [], []
    for path in metrics_files:
        experiment, run = _run_of(path)
        summary = json.loads((path.parent / "config.json").read_text())
        runs.append({"experiment": experiment, "run": run, "status": summary["status"],
                     "diverged_step": summary["diverged_step"], "steps": summary["steps"],
                     "train_seconds": summary["train_seconds"],
                     "claims": ";".join(claims.get(experiment, [])), **summary["config"]})
        frame = pd.read_csv(path)
        frame.insert(0, "run", run)
        frame.insert(0, "experiment", experiment)
        metrics.append(frame)
    return pd.DataFrame(runs), pd.concat(metrics, ignore_index=True)


def collect_spectra(files: list[Path], kind: str) -> pd.DataFrame:
    frames = []
    for path in files:
        experiment, run = _run_of(path)
        checkpoint = path.name[: -len(f".{kind}.csv")]
        frame = pd.read_csv(path)
        frame.insert(0, "checkpoint", checkpoint)
        frame.insert(0, "run", run)
        frame.insert(0, "experiment", experiment)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac-tables", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the tidy tables")
    parser.add_argument("--metrics", type=Path, nargs="+", required=True, help="runs' metrics.csv")
    parser.add_argument("--body", type=Path, nargs="*", default=[], help="spectra: *.body.csv")
    parser.add_argument("--layers", type=Path, nargs="*", default=[], help="spectra: *.layers.csv")
    parser.add_argument("--claims", default="{}",
                        help="JSON object: experiment → list of claims it tests")
    args = parser.parse_args(argv)
    runs, metrics = collect_runs(args.metrics, json.loads(args.claims))
    tables = {"runs": runs, "metrics": metrics,
              "spectra": collect_spectra(args.body, "body"),
              "layers": collect_spectra(args.layers, "layers")}
    for name, frame in tables.items():
        write_text_atomic(args.out_dir / f"{name}.csv", frame.to_csv(index=False))


if __name__ == "__main__":
    main()
