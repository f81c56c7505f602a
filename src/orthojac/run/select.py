"""Pick a family's setting from a screen, by a rule fixed before the screen ran.

    python -m orthojac select --runs results/runs/screen_fold/*/config.json \
        --keep lr regime --out results/selections/screen_fold.json

A screen is an experiment that trains one family over a grid of the choices the sources leave open
(learning rate, orthogonality regime) for a short time, on the validation split. Its best setting
is then trained again, on fresh seeds, by the experiments whose `select:` names the screen
(docs/config.md): best against best, every family with the same budget.

The rule (SELECTION_RULE): each screen run scores its final validation accuracy (a diverged run 0).
The settings within SCREEN_TIE of the best score are tied (one seed cannot tell them apart); of
those, the one with the simplest regime (init, then soft, then hard: the order of what orthogonality
costs) is kept, and among equally simple ones the higher score. The file records every candidate
with its score and status, so the report can show the settings that lost.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from ..config import RunConfig, field_names
from ..files import write_text_atomic

SCREEN_TIE = 0.01  # settings within 1 point of the best screen score are tied (choice, see SELECTION_RULE)
REGIME_ORDER = ("init", "soft", "hard", "soft_gain", "soft_gain_listing")
SELECTION_RULE = (
    "score: the run's final validation accuracy (a diverged run scores 0); settings within "
    f"{SCREEN_TIE:g} of the best score are tied, and the simplest regime among them is kept (init, soft, "
    "hard), then the higher score. choice, fixed before the screen ran: one seed per setting; the "
    "seed-to-seed sd of the final validation accuracy of depth-200 fold and resnet runs was 0.0014 and "
    "0.0049 (3 seeds each) in the earlier CPU reference (2026-12-01), so two single-seed scores of one "
    "setting differ by about 0.007 (sd), and a gap under 1 point does not tell settings apart")


def final_validation_accuracy(metrics: pd.DataFrame) -> float:
    """The last validation accuracy of one run's metrics (NaN if it has none)."""
    acc = metrics[(metrics["split"] == "val") & (metrics["metric"] == "accuracy")]
    return float(acc.sort_values("step")["value"].iloc[-1]) if len(acc) else float("nan")


def candidates(config_files: list[Path]) -> list[dict]:
    """One entry per screen run: its folder name, settings, status and score."""
    out = []
    for path in config_files:
        summary = json.loads(Path(path).read_text())
        score = final_validation_accuracy(pd.read_csv(Path(path).parent / "metrics.csv"))
        diverged = summary["status"] != "completed" or not math.isfinite(score)
        out.append({"run": Path(path).parent.name, "settings": summary["config"], "status": summary["status"],
                    "accuracy": None if not math.isfinite(score) else score,
                    "score": 0.0 if diverged else score})
    return out


def choose(entries: list[dict], tie: float = SCREEN_TIE) -> dict:
    """The entry SELECTION_RULE keeps."""
    if not entries:
        raise ValueError("the screen has no runs to select from")
    best = max(e["score"] for e in entries)
    tied = [e for e in entries if e["score"] >= best - tie]

    def simplicity(e):
        regime = e["settings"].get("regime", RunConfig.regime)
        rank = REGIME_ORDER.index(regime) if regime in REGIME_ORDER else len(REGIME_ORDER)
        return rank, -e["score"], e["run"]

    return min(tied, key=simplicity)


def selection(config_files: list[Path], keep: list[str], screen: str) -> dict:
    """The selection record of a screen: the rule, the kept settings' values, every candidate."""
    unknown = sorted(set(keep) - set(field_names()))
    if unknown:
        raise ValueError(f"--keep {unknown}: not settings of a run (orthojac.config.RunConfig)")
    entries = candidates(config_files)
    chosen = choose(entries)
    return {"screen": screen, "rule": SELECTION_RULE, "keep": keep,
            "chosen": {"run": chosen["run"], "score": chosen["score"],
                       "settings": {k: chosen["settings"][k] for k in keep}},
            "candidates": sorted(entries, key=lambda e: e["run"])}


def apply_selection(cfg: RunConfig, path: Path, keep: list[str]) -> RunConfig:
    """`cfg` with the settings `keep` set to the values the selection file chose."""
    try:
        record = json.loads(Path(path).read_text())
        values = record["chosen"]["settings"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"{path}: not a selection file of orthojac.run.select ({error})") from None
    missing = sorted(set(keep) - set(values))
    if not keep or missing:
        raise SystemExit(f"{path}: --selection-keep {keep}: " + (f"{missing} not chosen by this selection "
                         f"(it keeps {sorted(values)})" if keep else "name the settings to take"))
    return RunConfig(**{**cfg.to_dict(), **{k: values[k] for k in keep}})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac select", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, nargs="+", required=True,
                        help="config.json of every run of the screen (metrics.csv beside each)")
    parser.add_argument("--keep", nargs="+", required=True, help="the settings the selection passes on")
    parser.add_argument("--screen", default="", help="the screen experiment's name (recorded)")
    parser.add_argument("--out", type=Path, required=True, help="the selection file (JSON)")
    args = parser.parse_args(argv)
    record = selection(args.runs, args.keep, args.screen or args.runs[0].parent.parent.name)
    write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
