"""Collect the per-run outputs into tidy tables under one folder.

    python -m orthojac tables --out-dir results/tables --metrics results/runs/*/*/metrics.csv \
        --body results/spectra/*/*/*.body.csv --layers results/spectra/*/*/*.layers.csv

Paths name their run: results/runs/EXPERIMENT/RUN/metrics.csv (with config.json beside it) and
results/spectra/EXPERIMENT/RUN/CHECKPOINT.{body,layers}.csv. Output: runs.csv (one row per run:
settings, status), metrics.csv, spectra.csv and layers.csv (one row per run × … × metric), and
init_study.csv (the depth-200 initialisation study of docs/replication.md §5: one row per run of the experiments
named init_study*, its initialisation knobs and its test accuracy after the first and last epoch).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..files import write_text_atomic
from . import INIT_STUDY_PREFIX, final_accuracy, weight_diagnostics

INIT_KNOBS = ["bias_init", "width_mid", "ab_init", "breakpoints", "lr"]  # what the study varies


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
                     "device": summary.get("environment", {}).get("device", ""),
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


def init_study(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run of the init_study* experiments: family, depth, INIT_KNOBS, seed, status, and
    the test accuracy after the first epoch and at the end (NaN for a diverged run)."""
    columns = ["experiment", "run", "family", "activation", "depth", *INIT_KNOBS, "seed", "status",
               "first_epoch_accuracy", "final_accuracy"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    sel = runs[runs["experiment"].str.startswith(INIT_STUDY_PREFIX)]
    if sel.empty:
        return pd.DataFrame(columns=columns)
    test = metrics[(metrics["split"] == "test") & (metrics["metric"] == "accuracy") & (metrics["epoch"] == 1)]
    first = test.groupby(["experiment", "run"], as_index=False)["value"].last()
    out = final_accuracy(sel, metrics).rename(columns={"accuracy": "final_accuracy"})
    out = out.merge(first.rename(columns={"value": "first_epoch_accuracy"}), how="left")
    out.loc[out["status"] == "diverged", "first_epoch_accuracy"] = float("nan")
    return out[columns]


SCREEN_SETTINGS = ["family", "activation", "ab_init", "regime", "lr"]  # what a screen's rows show


def screens(selection_files: list[Path]) -> pd.DataFrame:
    """One row per screened setting (orthojac.run.select's selection files): the screen, the run, its
    settings (SCREEN_SETTINGS), status, final validation accuracy and score, and whether the rule
    chose it. Every setting stays, the failed ones too."""
    columns = ["screen", "run", *SCREEN_SETTINGS, "status", "accuracy", "score", "chosen"]
    rows = []
    for path in selection_files:
        record = json.loads(Path(path).read_text())
        for c in record["candidates"]:
            rows.append({"screen": record["screen"], "run": c["run"],
                         **{k: c["settings"].get(k) for k in SCREEN_SETTINGS}, "status": c["status"],
                         "accuracy": c["accuracy"], "score": c["score"], "chosen": c["run"] == record["chosen"]["run"]})
    return pd.DataFrame(rows, columns=columns)


def diagnostics(runs: pd.DataFrame, spectra: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """Per trained run, after training: its largest weight defects ‖BBᵀ − I‖₂, ‖AᵀB − I‖₂ over the
    layers and the extreme singular values of its body's Jacobian (orthojac.claims.weight_diagnostics)."""
    columns = ["experiment", "run", "family", "activation", "regime", "lr", "seed", "status", "bb", "ab",
               "sigma_min", "sigma_max"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    trained = runs[runs["epochs"] > 0] if "epochs" in runs else runs
    out = weight_diagnostics(trained, spectra, layers).merge(trained)
    return out[[c for c in columns if c in out]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac tables", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the tidy tables")
    parser.add_argument("--metrics", type=Path, nargs="+", required=True, help="runs' metrics.csv")
    parser.add_argument("--body", type=Path, nargs="*", default=[], help="spectra: *.body.csv")
    parser.add_argument("--layers", type=Path, nargs="*", default=[], help="spectra: *.layers.csv")
    parser.add_argument("--selections", type=Path, nargs="*", default=[],
                        help="the screens' selection files (orthojac.run.select)")
    parser.add_argument("--claims", default="{}",
                        help="JSON object: experiment → list of claims it tests")
    args = parser.parse_args(argv)
    runs, metrics = collect_runs(args.metrics, json.loads(args.claims))
    tables = {"runs": runs, "metrics": metrics,
              "spectra": collect_spectra(args.body, "body"),
              "layers": collect_spectra(args.layers, "layers")}
    tables["init_study"] = init_study(runs, metrics)
    tables["screens"] = screens(args.selections)
    tables["diagnostics"] = diagnostics(runs, tables["spectra"], tables["layers"])
    for name, frame in tables.items():
        write_text_atomic(args.out_dir / f"{name}.csv", frame.to_csv(index=False))


if __name__ == "__main__":
    main()
