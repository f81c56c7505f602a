"""The training runs a paper claim reads, selected and scored: the runs tagged with a claim, a
setting with orthojac's default where a column is absent, each run's final accuracy (a diverged
seed scores DIVERGED_SCORE), seed statistics per configuration, the best setting of a family, the
identity-start control, and the weight diagnostics after training reported beside a verdict.
"""

from __future__ import annotations



import pandas as pd

from ..config import GAUSSIAN_CONTROL, RunConfig
from .rules import Comparison, DIVERGED_SCORE, INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, compare_means, spread

def _runs_for(runs: pd.DataFrame, claim: str) -> pd.DataFrame:
    if runs.empty or "claims" not in runs:
        return runs.iloc[0:0]
    tagged = runs["claims"].fillna("").str.split(";").apply(lambda cs: claim in cs)
    return runs[tagged]


def _setting(runs: pd.DataFrame, name: str) -> pd.Series:
    """Column `name` of the runs table; orthojac's default (RunConfig) where it is absent."""
    default = getattr(RunConfig, name)
    if name not in runs:
        return pd.Series(default, index=runs.index)
    column = runs[name]
    if isinstance(default, str) and pd.api.types.is_numeric_dtype(column):  # all missing: float NaN
        column = column.astype(object)
    return column.fillna(default)


def final_accuracy(runs: pd.DataFrame, metrics: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """One row per run: its settings and the accuracy at its last evaluation (NaN if diverged)."""
    acc = metrics[(metrics["split"] == split) & (metrics["metric"] == "accuracy")]
    last = acc.sort_values("step").groupby(["experiment", "run"]).tail(1)
    merged = runs.merge(last[["experiment", "run", "value"]], on=["experiment", "run"], how="left")
    merged = merged.rename(columns={"value": "accuracy"})
    merged.loc[merged["status"] == "diverged", "accuracy"] = float("nan")
    return merged


def _scored(acc: pd.DataFrame) -> pd.DataFrame:
    """`acc` with `diverged` (bool) and `score`: the accuracy, DIVERGED_SCORE for a diverged run."""
    diverged = acc["status"].eq("diverged") | acc["accuracy"].isna()
    return acc.assign(diverged=diverged, score=acc["accuracy"].where(~diverged, DIVERGED_SCORE))


def _seed_stats(acc: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per configuration `keys`: mean, sd and number n of the seeds' scores (a diverged seed scores
    DIVERGED_SCORE: a configuration with a diverged seed is penalised, not dropped), and how many
    seeds diverged."""
    scored = _scored(acc)
    grouped = scored.groupby(keys, dropna=False)
    return pd.DataFrame({"mean": grouped["score"].mean(), "sd": grouped["score"].std(ddof=1),
                         "n": grouped["score"].size(), "diverged": grouped["diverged"].sum(),
                         "scores": grouped["score"].apply(list)}).reset_index()


def _stat(row) -> str:
    text = spread(row["scores"])
    return text + (f", {int(row['diverged'])} diverged" if row["diverged"] else "")


NOT_SETTINGS = {"experiment", "run", "status", "diverged_step", "steps", "train_seconds", "claims", "seed",
                "accuracy", "best", "score", "diverged"}


def _setting_label(frame: pd.DataFrame) -> pd.Series:
    """Per run: the settings that vary within `frame` (seed aside), as 'key=value, …' ('' if none)."""
    keys = [c for c in frame.columns if c not in NOT_SETTINGS and frame[c].astype(str).nunique() > 1]
    if not keys:
        return pd.Series("", index=frame.index)
    return frame[keys].astype(str).apply(lambda r: ", ".join(f"{k}={v}" for k, v in r.items()), axis=1)


def _final_and_best(sel: pd.DataFrame, metrics: pd.DataFrame, split: str) -> pd.DataFrame:
    """final_accuracy on `split` and, per run, its best accuracy over the evaluations (`best`)."""
    acc = final_accuracy(sel, metrics, split)
    curve = metrics[(metrics["split"] == split) & (metrics["metric"] == "accuracy")]
    best = curve.groupby(["experiment", "run"], as_index=False)["value"].max().rename(columns={"value": "best"})
    return acc.merge(best, how="left")


def _best_setting(acc: pd.DataFrame) -> tuple[pd.DataFrame, str, int]:
    """The runs (all seeds) of the setting with the highest seed-mean score in `acc`, its label,
    and how many settings there were."""
    acc = _scored(acc).assign(setting=_setting_label(acc))
    means = acc.groupby("setting")["score"].mean()
    best = means.idxmax()
    return acc[acc["setting"] == best], best, len(means)


def _split_control(sel: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs with orthogonal B as built, the identity-start control: fold with a Gaussian B)."""
    if sel.empty:
        return sel, sel
    control = _setting(sel, "init").eq(GAUSSIAN_CONTROL).to_numpy()
    return sel[~control], sel[control]


def weight_diagnostics(sel: pd.DataFrame, spectra: pd.DataFrame | None, layers: pd.DataFrame | None,
                       checkpoint: str = "final") -> pd.DataFrame:
    """Per run of `sel` at `checkpoint`: the largest weight defects over its layers (bb: ‖BBᵀ − I‖₂,
    ab: ‖AᵀB − I‖₂; orthojac.spectra.weight_defects) and the extreme singular values of its body's
    Jacobian (over the measured points): what explains a network's outcome."""
    keys = ["experiment", "run"]
    out = sel[keys].copy()
    if layers is not None and not layers.empty:
        lay = layers[layers["checkpoint"] == checkpoint]
        for metric, name in (("bb_defect", "bb"), ("ab_defect", "ab")):
            worst = lay[lay["metric"] == metric].groupby(keys, as_index=False)["value"].max()
            out = out.merge(worst.rename(columns={"value": name}), on=keys, how="left")
    if spectra is not None and not spectra.empty and "sigma" in spectra:
        body = spectra[spectra["checkpoint"] == checkpoint].groupby(keys)["sigma"]
        extremes = pd.DataFrame({"sigma_min": body.min(), "sigma_max": body.max()}).reset_index()
        out = out.merge(extremes, on=keys, how="left")
    for name in ("bb", "ab", "sigma_min", "sigma_max"):
        if name not in out:
            out[name] = float("nan")
    return out


def _diagnostics_text(sel: pd.DataFrame, spectra, layers) -> str:
    """' (after training: max ‖BBᵀ − I‖₂ …, body σ in […, …], medians over seeds)' or ''."""
    d = weight_diagnostics(sel, spectra, layers).median(numeric_only=True)
    parts = []
    if pd.notna(d.get("bb")):
        parts.append(f"max ‖BBᵀ − I‖₂ {d['bb']:.2g}")
    if pd.notna(d.get("ab")):
        parts.append(f"max ‖AᵀB − I‖₂ {d['ab']:.2g}")
    if pd.notna(d.get("sigma_min")):
        parts.append(f"body σ in [{d['sigma_min']:.2g}, {d['sigma_max']:.2g}]")
    return f" (after training, medians over seeds: {', '.join(parts)})" if parts else ""


def _control_text(best: pd.DataFrame, control: pd.DataFrame, name: str) -> tuple[str, Comparison | None]:
    """The identity-start control against the fold networks: the mechanism line of P2 and P3."""
    if control.empty or best.empty:
        return "", None
    scored = _scored(control)
    comparison = compare_means("fold", best["score"], "control", scored["score"], 0.0, label="mechanism")
    reading = {REPRODUCED: "orthogonal B trains better than the identity start alone",
               NOT_REPRODUCED: "the control trains better: the identity start, not orthogonality, explains fold's training",
               INCONCLUSIVE: "the control trains as well within the noise: the identity start alone may explain it"}
    return (f"; identity-start control (fold, Gaussian B, bias −2; not judged) {name} {spread(scored['score'])}: "
            f"{comparison.text} → {reading[comparison.verdict]}"), comparison
