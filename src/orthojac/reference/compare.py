"""How a run of the pipeline differs from a reference: per run, per thesis table, per claim.

    python -m orthojac compare results results/reference/cpu

Both folders have the layout of `results/` (a snapshot of orthojac.reference has it too):
`tables/*.csv` and `report/ledger.csv`. For every training run in both, the largest absolute
difference over its metrics (accuracy, loss, learning rate; the timing rows `seconds` are left
out) and its final test accuracy in each; for the thesis tables (hlav_rnn, hlav_linear, hlav_deep,
h4, hlav_lstm), the same per table; the Jacobian spectra (spectra.csv, layers.csv) per table; and
each claim's verdict in both. Each difference is classed:

- `identical`: every number equal (same seed, same CPU build, same torch: what orthojac gives);
- `close`: within --atol (default 1e-6: the rounding of one operation on another BLAS or CPU);
- `within seed spread` (a trained run): beyond --atol, but its final test accuracy is no further
  from the reference's than 2 seed-to-seed sd of its configuration in the reference;
- `differs`: beyond both; `missing`: the run or claim is in one folder only.

What `close` means for a trained network: nothing short of `identical`. Training amplifies the last
bit of every sum, so a network trained on a CPU that rounds differently (AVX-512 against AVX2
kernels, another BLAS branch, other threads) ends a few tenths of a point of accuracy away after a
few epochs, far beyond 1e-6; 1e-6 is met only by numbers no training went into (spectra at
initialisation, H4). So for trained runs the comparison is twofold: bit for bit (`identical`, which
`make reference`'s rounding pins give between Intel CPUs with AVX2, where MKL's reproducible branch holds), and statistical: per configuration the
seed means and their spread in both folders (compare_groups: `within spread` when |Δ mean| ≤ 2 se),
and per run `within seed spread`. First of all it says what differs in the two manifests'
rounding settings (torch's CPU capability, BLAS, CPU, pins: rounding_differences), which is why
numbers would differ at all.

Exit status 0 when every claim has the reference's verdict (a verdict that changed is what a
reader must know about), 1 otherwise; with --strict, 1 also when any number differs beyond --atol.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..claims import difference_of_means
from ..workflow import SECTIONS

IDENTICAL, CLOSE, DIFFERS, MISSING = "identical", "close", "differs", "missing"
TIMING = {"seconds", "train_seconds", "spectra_seconds"}
THESIS_TABLES = tuple(SECTIONS)  # orthojac.workflow.SECTIONS: each writes results/tables/<name>.csv
SPECTRA_TABLES = ("spectra", "layers")


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = folder / "tables" / f"{name}.csv"
    if not path.exists() or path.stat().st_size <= 1:
        return pd.DataFrame()
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def _classify(diff: float, atol: float) -> str:
    if np.isnan(diff):
        return DIFFERS
    return IDENTICAL if diff == 0 else CLOSE if diff <= atol else DIFFERS


def _max_abs(a: pd.Series, b: pd.Series) -> float:
    """Largest |a − b|; NaN on both sides is equal, NaN on one side is an infinite difference."""
    a, b = a.astype(float).to_numpy(), b.astype(float).to_numpy()
    both_nan = np.isnan(a) & np.isnan(b)
    one_nan = np.isnan(a) ^ np.isnan(b)
    if one_nan.any():
        return float("inf")
    d = np.abs(a - b)[~both_nan]
    return float(d.max()) if d.size else 0.0


def _key_text(column: pd.Series) -> pd.Series:
    """A key column as text, numbers written one way (1, 1.0 and "1.0" alike; NaN and "nan" alike),
    so that two tables whose readers typed a column differently (float64 in one, text in the other,
    as a column of "nan" placeholders reads) still pair their rows."""
    def text(v):
        try:
            f = float(v)
        except (TypeError, ValueError):
            return str(v)
        return "nan" if f != f else repr(f)
    return column.map(text)


def _value_diff(new: pd.DataFrame, ref: pd.DataFrame, value: str = "value") -> tuple[float, int, int]:
    """Max |Δ value| over the rows both tables share (keyed by every other column both have), and
    the numbers of rows only in new / only in ref."""
    keys = [c for c in new.columns if c != value and c in ref.columns]
    mixed = [k for k in keys if new[k].dtype != ref[k].dtype]
    if mixed:
        new, ref = new.copy(), ref.copy()
        for k in mixed:
            new[k], ref[k] = _key_text(new[k]), _key_text(ref[k])
    merged = new.merge(ref, on=keys, how="outer", suffixes=("_new", "_ref"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    only_new = int((merged["_merge"] == "left_only").sum())
    only_ref = int((merged["_merge"] == "right_only").sum())
    diff = _max_abs(both[f"{value}_new"], both[f"{value}_ref"]) if len(both) else float("nan")
    return diff, only_new, only_ref


def compare_runs(new: Path, ref: Path, atol: float) -> pd.DataFrame:
    """One row per training run in either folder."""
    runs_new, runs_ref = _read(new, "runs"), _read(ref, "runs")
    met_new, met_ref = _read(new, "metrics"), _read(ref, "metrics")
    key = ["experiment", "run"]
    names = pd.concat([runs_new[key] if len(runs_new) else pd.DataFrame(columns=key),
                       runs_ref[key] if len(runs_ref) else pd.DataFrame(columns=key)]).drop_duplicates()
    rows = []
    for exp, run in names.itertuples(index=False):
        def pick(frame):
            return frame[(frame["experiment"] == exp) & (frame["run"] == run)] if len(frame) else frame
        a, b = pick(met_new), pick(met_ref)
        row = {"experiment": exp, "run": run}
        if a.empty or b.empty:
            rows.append(row | {"class": MISSING, "max_abs_diff": float("nan"),
                               "note": "only in " + ("the reference" if a.empty else "the new results")})
            continue
        a, b = a[~a["metric"].isin(TIMING)], b[~b["metric"].isin(TIMING)]
        diff, only_a, only_b = _value_diff(a, b)
        last = {}
        for side, frame in (("new", a), ("reference", b)):
            test = frame[(frame["split"] == "test") & (frame["metric"] == "accuracy")].sort_values("step")
            last[side] = float(test["value"].iloc[-1]) if len(test) else float("nan")
        cls = _classify(diff, atol) if not (only_a or only_b) else DIFFERS
        note = f"{only_a} rows only new, {only_b} only in the reference" if only_a or only_b else ""
        rows.append(row | {"class": cls, "max_abs_diff": diff, "test_accuracy": last["new"],
                           "reference_test_accuracy": last["reference"], "note": note})
    return pd.DataFrame(rows)


def compare_tables(new: Path, ref: Path, atol: float, names=THESIS_TABLES + SPECTRA_TABLES) -> pd.DataFrame:
    rows = []
    for name in names:
        a, b = _read(new, name), _read(ref, name)
        if a.empty and b.empty:
            continue
        if a.empty or b.empty:
            rows.append({"table": name, "class": MISSING, "max_abs_diff": float("nan"),
                         "note": "only in " + ("the reference" if a.empty else "the new results")})
            continue
        value = "sigma" if name == "spectra" and "sigma" in a else "empirical" if name == "h4" else "value"
        if value not in a or value not in b:
            side = "the new results" if value not in a else "the reference"
            rows.append({"table": name, "class": MISSING, "max_abs_diff": float("nan"),
                         "note": f"no column {value!r} in {side}"})
            continue
        drop = [c for c in ("theory",) if name == "h4" and c in a]
        if "metric" in a:
            a, b = a[~a["metric"].isin(TIMING)], b[~b["metric"].isin(TIMING)]
        diff, only_a, only_b = _value_diff(a.drop(columns=drop), b.drop(columns=[c for c in drop if c in b]), value)
        cls = _classify(diff, atol) if not (only_a or only_b) else DIFFERS
        notes = [f"{only_a} rows only new, {only_b} only in the reference"] if only_a or only_b else []
        notes += [f"columns only in {side}: {cols}" for side, cols in (
            ("the new results", sorted(set(a.columns) - set(b.columns))),
            ("the reference", sorted(set(b.columns) - set(a.columns)))) if cols]
        rows.append({"table": name, "class": cls, "max_abs_diff": diff, "note": "; ".join(notes)})
    return pd.DataFrame(rows, columns=["table", "class", "max_abs_diff", "note"])


def compare_claims(new: Path, ref: Path) -> pd.DataFrame:
    def ledger(folder):
        path = folder / "report" / "ledger.csv"
        return pd.read_csv(path, keep_default_na=False) if path.exists() else pd.DataFrame(columns=["claim", "verdict"])
    a, b = ledger(new), ledger(ref)
    merged = a[["claim", "verdict"]].merge(b[["claim", "verdict"]], on="claim", how="outer",
                                           suffixes=("", "_reference"))
    merged["same"] = merged["verdict"] == merged["verdict_reference"]
    return merged


# What decides a run's rounding, as orthojac.reference's manifest records it (`rounding`), and the
# manifest keys beside it that a reader must know differ before reading any number.
ROUNDING_KEYS = ("cpu_capability", "blas", "mkl", "onednn", "vendor", "threads", "pinned")
MANIFEST_KEYS = ("cpu", "torch")
ATOL = 1e-6  # `close`: the rounding of one operation on another BLAS or CPU (the module's text)
SPREAD = "within seed spread"  # a trained run that differs, by no more than its seeds differ from each other
SPREAD_Z = 2.0  # … by at most 2 seed-to-seed sd of the reference (as the claims' rule: 2 standard errors)
FINAL = (("test", "accuracy"), ("val", "accuracy"), ("test", "loss"))  # what the group comparison reads


def read_manifest(folder: Path) -> dict | None:
    """folder/manifest.json (a snapshot of orthojac.reference), or None where there is none."""
    path = folder / "manifest.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SystemExit(f"{path}: not JSON ({err})") from err


def rounding_differences(new: Path, ref: Path) -> list[str]:
    """What differs between the two folders' manifests in what decides rounding (torch's CPU
    capability, BLAS and versions, CPU vendor, threads, the pins; the CPU model and torch), one
    line each; a folder without a manifest, or a manifest without `rounding` (made before it was
    recorded), is named: what decided its rounding is unknown. [] when nothing differs."""
    manifests = {"new": read_manifest(new), "reference": read_manifest(ref)}
    lines = [f"{side} ({folder}): no manifest.json, its rounding settings are unknown"
             for (side, m), folder in zip(manifests.items(), (new, ref)) if m is None]
    if any(m is None for m in manifests.values()):
        return lines
    a, b = manifests["new"], manifests["reference"]
    for key in MANIFEST_KEYS:
        if a.get(key) != b.get(key):
            lines.append(f"{key}: {a.get(key)!r} here, {b.get(key)!r} in the reference")
    ra, rb = a.get("rounding"), b.get("rounding")
    if ra is None or rb is None:
        which = " and ".join(s for s, r in (("new", ra), ("reference", rb)) if r is None)
        return lines + [f"{which}: the manifest records no rounding (torch's CPU capability, BLAS, pins): "
                        "made before orthojac recorded it, so a difference in the numbers may come from the CPU"]
    for key in ROUNDING_KEYS:
        if ra.get(key) != rb.get(key):
            lines.append(f"{key}: {ra.get(key)!r} here, {rb.get(key)!r} in the reference")
    if ra.get("pins") != rb.get("pins"):
        lines.append(f"pins: {ra.get('pins')} here, {rb.get('pins')} in the reference")
    return lines


def _group(run: str) -> str:
    """A run's configuration: its name without the `seed=…` part (orthojac's run names join the
    grid's `key=value` parts with '+'); a name without one is its own group."""
    parts = [p for p in str(run).split("+") if not p.startswith("seed=")]
    return "+".join(parts) or "(seeds only)"


def final_values(folder: Path) -> pd.DataFrame:
    """One row per training run and FINAL (split, metric): the value at its last evaluation,
    with the run's `group` (_group)."""
    metrics = _read(folder, "metrics")
    if metrics.empty:
        return pd.DataFrame(columns=["experiment", "run", "group", "split", "metric", "value"])
    keep = pd.Series(False, index=metrics.index)
    for split, metric in FINAL:
        keep |= (metrics["split"] == split) & (metrics["metric"] == metric)
    last = metrics[keep].sort_values("step").groupby(["experiment", "run", "split", "metric"]).tail(1)
    return last.assign(group=last["run"].map(_group))[["experiment", "run", "group", "split", "metric", "value"]]


def compare_groups(new: Path, ref: Path, z: float = SPREAD_Z) -> pd.DataFrame:
    """The statistical comparison: per experiment group (a configuration over its seeds) and each
    FINAL metric, the seed mean ± sd and n in both folders, Δ = the difference of the means, and
    se = √(s_new²/n_new + s_ref²/n_ref). Class: `identical` (every seed equal), `within spread`
    (|Δ| ≤ z·se: no more than the seeds' spread explains), `differs`, `one seed` (n < 2 on a side:
    no spread to compare with; the per-run comparison decides) or `missing`."""
    a, b = final_values(new), final_values(ref)
    keys = ["experiment", "group", "split", "metric"]
    rows = []
    groups = pd.concat([a[keys], b[keys]]).drop_duplicates()
    for key in groups.itertuples(index=False):
        pick = dict(zip(keys, key))
        def values(frame):
            sel = frame
            for k, v in pick.items():
                sel = sel[sel[k] == v]
            return sel.set_index("run")["value"].astype(float)
        va, vb = values(a), values(b)
        row = pick | {"n": len(va), "n_reference": len(vb)}
        if va.empty or vb.empty:
            rows.append(row | {"class": MISSING, "note": "only in " + ("the reference" if va.empty else "the new results")})
            continue
        diff = float(va.mean() - vb.mean())
        row |= {"mean": va.mean(), "sd": va.std(ddof=1), "mean_reference": vb.mean(), "sd_reference": vb.std(ddof=1),
                "diff": diff}
        if va.sort_index().equals(vb.sort_index()):
            rows.append(row | {"class": IDENTICAL, "note": ""})
        elif len(va) < 2 or len(vb) < 2:
            rows.append(row | {"class": "one seed", "note": "no seed spread to compare with"})
        else:
            se = difference_of_means(va, vb)[1]
            within = abs(diff) <= z * se
            rows.append(row | {"se": se, "class": "within spread" if within else DIFFERS,
                               "note": f"|Δ| {'≤' if within else '>'} {z:g}·se = {z * se:.4g}"})
    columns = keys + ["n", "n_reference", "mean", "sd", "mean_reference", "sd_reference", "diff", "se", "class", "note"]
    return pd.DataFrame(rows).reindex(columns=columns)


def with_seed_spread(runs: pd.DataFrame, new: Path, ref: Path, z: float = SPREAD_Z) -> pd.DataFrame:
    """compare_runs' table with each `differs` run reclassed SPREAD where its final test accuracy
    differs from the reference's by at most z × the seed-to-seed sd of its group in the reference
    (≥ 2 seeds): the run is not the same bits, but no further from the reference than another
    seed would be. This is what `close` cannot say for a trained network (see the module's text)."""
    if runs.empty or "test_accuracy" not in runs:
        return runs
    ref_final = final_values(ref)
    acc = ref_final[(ref_final["split"] == "test") & (ref_final["metric"] == "accuracy")]
    sd = acc.groupby(["experiment", "group"])["value"].std(ddof=1)
    out = runs.copy()
    for i, r in out[out["class"] == DIFFERS].iterrows():
        s = sd.get((r["experiment"], _group(r["run"])), float("nan"))
        delta = abs(r["test_accuracy"] - r["reference_test_accuracy"])
        if pd.notna(s) and delta <= z * s:
            out.loc[i, "class"] = SPREAD
            out.loc[i, "note"] = (f"{out.loc[i, 'note']}; " if out.loc[i, "note"] else "") + \
                f"|Δ test accuracy| {delta:.4g} ≤ {z:g} × seed sd {s:.4g} of the reference"
    return out


def compare_claim_numbers(new: Path, ref: Path) -> pd.DataFrame:
    """Per claim, the numbers its verdict rests on in both ledgers (the `means` column of a
    comparison claim: seed means ± se and n per side; else `numbers`) and the fragility, side by
    side, so that a changed or unchanged verdict can be read against the spread behind it. A
    ledger written before those columns existed shows '—'."""
    def read(folder):
        path = folder / "report" / "ledger.csv"
        frame = pd.read_csv(path, keep_default_na=False) if path.exists() else pd.DataFrame(columns=["claim"])
        shown = frame.get("means", pd.Series("—", index=frame.index)).where(
            frame.get("means", pd.Series("—", index=frame.index)) != "—", frame.get("numbers", "—"))
        return pd.DataFrame({"claim": frame["claim"], "numbers": shown,
                             "fragility": frame.get("fragility", pd.Series("—", index=frame.index))})
    return read(new).merge(read(ref), on="claim", how="outer", suffixes=("", "_reference"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orthojac compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="the new results (or a snapshot of them)")
    parser.add_argument("reference", type=Path, help="the reference, e.g. results/reference/cpu")
    parser.add_argument("--atol", type=float, default=ATOL, help="largest |difference| counted as close")
    parser.add_argument("--strict", action="store_true", help="fail on any number beyond --atol too")
    parser.add_argument("--out", type=Path, help="write the per-run comparison as CSV here")
    args = parser.parse_args(argv)
    for folder in (args.results, args.reference):
        if not (folder / "tables").is_dir():
            parser.error(f"{folder}: no tables/ folder (a results folder or a snapshot of one)")
    rounding = rounding_differences(args.results, args.reference)
    runs = with_seed_spread(compare_runs(args.results, args.reference, args.atol), args.results, args.reference)
    groups = compare_groups(args.results, args.reference)
    tables = compare_tables(args.results, args.reference, args.atol)
    claims = compare_claims(args.results, args.reference)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 60)
    print(f"# {args.results} against {args.reference} (close: |Δ| ≤ {args.atol:g})")
    print("\n## Rounding settings (manifest.json)")
    print("\n".join(f"- {line}" for line in rounding) if rounding else "the same in both")
    counts = runs["class"].value_counts().to_dict() if len(runs) else {}
    print(f"\n## Training runs: {len(runs)} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    if len(runs):
        print(runs.to_string(index=False))
    print(f"\n## Configurations over their seeds (final metrics; within spread: |Δ mean| ≤ {SPREAD_Z:g} se)")
    print(groups.to_string(index=False, float_format=lambda v: f"{v:.4g}") if len(groups) else "(none in either)")
    print("\n## Thesis and spectra tables")
    print(tables.to_string(index=False) if len(tables) else "(none in either)")
    print("\n## Claims")
    print(claims.to_string(index=False))
    numbers = compare_claim_numbers(args.results, args.reference)
    changed_numbers = numbers[(numbers["numbers"] != numbers["numbers_reference"])
                              | (numbers["fragility"] != numbers["fragility_reference"])]
    if len(changed_numbers):
        print("\n## Claims whose numbers or fragility differ (seed means ± se, n; fragility)")
        for r in changed_numbers.itertuples():
            print(f"- {r.claim}: {r.numbers} [{r.fragility}]\n  reference: {r.numbers_reference} "
                  f"[{r.fragility_reference}]")
    if args.out:
        runs.to_csv(args.out, index=False)
    changed = claims[~claims["same"]]
    if len(changed):
        print(f"\n{len(changed)} verdict(s) differ from the reference: {', '.join(changed['claim'])}")
    numbers_off = (runs["class"].isin([DIFFERS, SPREAD, MISSING]).any() if len(runs) else False) or \
        (tables["class"].isin([DIFFERS, MISSING]).any() if len(tables) else False)
    return 1 if len(changed) or (args.strict and numbers_off) else 0


if __name__ == "__main__":
    sys.exit(main())
