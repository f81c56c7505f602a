"""Hlav (2019) §3's claims: H-C5 (deep linear networks: orthogonal learning time flat in depth,
Gaussian grows; the H3 table) and H-C6 (Jacobian spectra at initialisation match the wide-limit
formulas; the H4 table). Each claim is one `Claim` beside its judge, with its thresholds' provenance.
"""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd

from .rules import Claim, INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Verdict, _verdict

H_C6_WIDTH = 400  # width of the H4 networks at which H-C6 is judged (choice)
H_C6_ALPHA = 0.05  # |seed mean − theory| ≤ z·se, z for a family-wise false-alarm rate 5 % over every cell (choice) …
H_C6_FW = 1.0  # … + 1·(L/n)·|theory|: the O(L/n) finite-width correction, 2 × its exact deep-linear value …
H_C6_FLOOR = 1e-8  # … + 1e-8·max(1, |theory|): float64 round-off where the seeds agree exactly
H_C6_DEPTH_RATIO = 0.1  # wide-limit theory judged where L/n ≤ 0.1 (choice: the O(L/n) term is a first-order one)
H_C6_MIN_SEEDS = 2  # a seed-to-seed spread needs ≥ 2 networks
H_C5_FLAT = 2.0  # orthogonal: slowest depth's steps to target ≤ 2 × the fastest's ("flat": choice)
H_C5_GROWTH = 4.0  # Gaussian: deepest ≥ 4 × the shallowest, or never reaches the target ("grows": choice)
H_C5_MIN_DEPTHS = 3  # at least 3 depths in common … (choice)
H_C5_MIN_RANGE = 16  # … spanning a factor ≥ 16 (Hlav §3: Gaussian time "scales linearly with depth")
H_C5_MIN_SEEDS = 3  # the median over ≥ 3 seeds a cell (choice: a median of 2 is their mean, of 1 the run itself)
H_C5_RESOLUTION = 0.1  # evaluation interval ≤ 0.1 × the fastest median steps to target (choice: ratios to ≈ 10 %)


def h3_learning_times(table: pd.DataFrame) -> pd.DataFrame:
    """One row per H3 run (weights, depth, seed; orthojac.thesis.linear's table): `status` (reached,
    not reached, diverged), `steps` and `epochs` to the target (NaN unless reached), `target`, and
    `interval`: the steps between the run's validation evaluations (NaN with fewer than two)."""
    keys = ["weights", "depth", "seed"]
    times = table[table["metric"] == "steps_to_target"][keys + ["value", "epoch", "target"]]
    times = times.rename(columns={"value": "steps", "epoch": "epochs"})
    diverged = table[table["metric"] == "diverged"][keys].assign(diverged=True)
    times = times.merge(diverged, on=keys, how="left")
    evaluated = table[table["metric"] == "val_accuracy"].sort_values("step")
    interval = evaluated.groupby(keys)["step"].agg(lambda s: s.diff().dropna().min()).rename("interval")
    times = times.merge(interval.reset_index(), on=keys, how="left")
    times["status"] = "not reached"
    times.loc[times["diverged"].eq(True), "status"] = "diverged"
    times.loc[times["steps"].notna(), "status"] = "reached"
    times.loc[times["status"] != "reached", "epochs"] = float("nan")
    return times.drop(columns="diverged").sort_values(keys).reset_index(drop=True)


def h3_cells(times: pd.DataFrame) -> pd.DataFrame:
    """Per (weights, depth) of h3_learning_times: `median` steps to the target over the seeds (a
    seed that did not reach it, or diverged, counts as ∞: the median is ∞ when half the seeds or
    more missed it), `seeds` and `reached` (how many seeds reached it)."""
    steps = times.assign(steps=times["steps"].fillna(float("inf")), hit=times["status"].eq("reached"))
    grouped = steps.groupby(["weights", "depth"])
    return pd.DataFrame({"median": grouped["steps"].median(), "seeds": grouped["seed"].nunique(),
                         "reached": grouped["hit"].sum()}).reset_index()


def judge_h_c5(runs, metrics, spectra, hlav_linear: pd.DataFrame | None = None) -> Verdict:
    """H3 on the thesis' measure (Hlav §3, Fig. 2: "time of training to reach a certain accuracy
    threshold"): per (weights, depth) the median over ≥ H_C5_MIN_SEEDS seeds (each seed its own
    initialisation and its own batch order) of the SGD steps to the target validation accuracy,
    a run that did not reach it (or diverged) counting as ∞; the numbers say per cell how many
    seeds reached it. Reproduced when the orthogonal medians stay within a factor H_C5_FLAT of
    each other over all depths ("independent of depth") and the Gaussian median at the largest
    depth is ≥ H_C5_GROWTH × its median at the smallest, ∞ included ("scales linearly with
    depth": ×H_C5_MIN_RANGE in depth or more).

    Inconclusive: fewer than H_C5_MIN_SEEDS seeds in a cell (a median of one or two runs is one
    run or a mean: the thesis' "grows" would rest on single oscillating curves); fewer than
    H_C5_MIN_DEPTHS depths spanning ×H_C5_MIN_RANGE; the target missed at the smallest depth (or
    met at initialisation); or an evaluation interval coarser than H_C5_RESOLUTION × the fastest
    median time, where the steps to the target are quantised too coarsely to resolve a ratio of
    H_C5_FLAT (a time t measured every Δ steps is known to within Δ, so a ratio to within Δ/t)."""
    tol = (f"median over ≥ {H_C5_MIN_SEEDS} seeds a cell; orthogonal: max/min steps to target over depths ≤ "
           f"{H_C5_FLAT:g}; Gaussian: deepest/shallowest ≥ {H_C5_GROWTH:g} or not reached; ≥ {H_C5_MIN_DEPTHS} "
           f"depths spanning ×{H_C5_MIN_RANGE}; evaluation interval ≤ {H_C5_RESOLUTION:g} × the fastest median")
    if hlav_linear is None or hlav_linear.empty:
        return _verdict("H-C5", "H3 was not run in this configuration", tol, INCONCLUSIVE)
    times = h3_learning_times(hlav_linear)
    cells = h3_cells(times)
    if not {"orthogonal", "gaussian"} <= set(cells["weights"]):
        return _verdict("H-C5", "the H3 table lacks orthogonal or Gaussian runs", tol, INCONCLUSIVE)
    cells = cells[cells["weights"].isin(["orthogonal", "gaussian"])]
    common = sorted(set.intersection(*(set(g["depth"]) for _, g in cells.groupby("weights"))))
    cells = cells[cells["depth"].isin(common)]
    median = cells.pivot(index="depth", columns="weights", values="median")[["orthogonal", "gaussian"]]
    target = times["target"].iloc[0]
    interval = times["interval"].max()

    def cell(r) -> str:
        t = f"{r.median:g}" if r.median < float("inf") else "not reached"
        return f"L={r.depth}: {t} ({int(r.reached)}/{int(r.seeds)} reached)"
    numbers = (f"median steps to val accuracy {target:g} (seeds reaching it): " + "; ".join(
        f"{w} " + ", ".join(cell(r) for r in cells[cells["weights"] == w].sort_values("depth").itertuples())
        for w in ("orthogonal", "gaussian")))
    numbers += f"; evaluated every {interval:g} steps" if pd.notna(interval) else ""
    diverged = (times["status"] == "diverged").sum()
    numbers += f" ({diverged} of {len(times)} runs diverged)" if diverged else ""
    depths = median.index
    if len(depths) < H_C5_MIN_DEPTHS or depths.max() < H_C5_MIN_RANGE * depths.min():
        why = f"{len(depths)} depths from {depths.min()} to {depths.max()}: too few or too close"
        return _verdict("H-C5", f"{numbers} ({why})", tol, INCONCLUSIVE)
    first = median.loc[depths.min()]
    if not (first < float("inf")).all() or (median <= 0).any().any():
        why = "the target is not reached at the smallest depth, or already at initialisation"
        return _verdict("H-C5", f"{numbers} ({why})", tol, INCONCLUSIVE)
    flat = median["orthogonal"].max() / median["orthogonal"].min()
    growth = median.loc[depths.max(), "gaussian"] / first["gaussian"]
    numbers += f"; orthogonal max/min {flat:.3g}, Gaussian L={depths.max()}/L={depths.min()} {growth:.3g}"
    fastest = median.min().min()
    if pd.isna(interval):
        return _verdict("H-C5", f"{numbers} (no run has two validation evaluations: the steps to the target "
                        "are not resolved)", tol, INCONCLUSIVE)
    if not interval <= H_C5_RESOLUTION * fastest:
        why = (f"evaluated every {interval:g} steps > {H_C5_RESOLUTION:g} × the fastest median ({fastest:g}): "
               "the steps to the target are not resolved")
        return _verdict("H-C5", f"{numbers} ({why})", tol, INCONCLUSIVE)
    seeds = int(cells["seeds"].min())
    if seeds < H_C5_MIN_SEEDS:
        why = f"{seeds} seed(s) in a cell < {H_C5_MIN_SEEDS}: a median of so few runs is not judged"
        return _verdict("H-C5", f"{numbers} ({why})", tol, INCONCLUSIVE)
    ok = flat <= H_C5_FLAT and growth >= H_C5_GROWTH
    return _verdict("H-C5", numbers, tol, REPRODUCED if ok else NOT_REPRODUCED)


CLAIM_H_C5 = Claim(
    "H-C5", "Hlav §3 (Saxe et al. 2013), Fig. 2",
    "deep linear nets: orthogonal learning time is flat in depth, Gaussian grows",
    "they obtain a training time (number of epochs required to achieve a certain degree of accuracy) that "
    "is independent of depth, unlike Gaussian initialization that scales linearly with depth",
    "per (weights, depth): median over ≥ 3 seeds of the SGD steps to a target validation accuracy "
    "(Fig. 2's measure) and how many seeds reached it",
    ("H_C5_FLAT", "H_C5_GROWTH", "H_C5_RESOLUTION"), ("hlav_linear",),
    page="hlav", figure="hlav_linear",
    judge=judge_h_c5,
    provenance=[
        ("steps to a fixed validation accuracy", "stated", "Hlav Fig. 2 caption: \"Time of training to reach a "
         "certain accuracy threshold\"; Hlav §3: \"training time (number of epochs required to achieve a certain "
         "degree of accuracy)\""),
        (f"×{H_C5_FLAT:g} (flat), ×{H_C5_GROWTH:g} (grows)", "choice", "Hlav §3: \"independent of depth\" (a factor "
         f"{H_C5_FLAT:g} over ×{H_C5_MIN_RANGE} or more in depth), \"scales linearly with depth\" (×{H_C5_MIN_RANGE} in "
         f"depth would give ×{H_C5_MIN_RANGE}; ×{H_C5_GROWTH:g} asks a quarter of it)"),
        (f"≥ {H_C5_MIN_DEPTHS} depths spanning ×{H_C5_MIN_RANGE}", "choice", "Hlav §3: Gaussian time \"scales "
         "linearly with depth\", so ×16 in depth should show"),
        (f"median over ≥ {H_C5_MIN_SEEDS} seeds a cell, each seed its own initialisation and batch order", "choice",
         "one run's first crossing of the target depends on its oscillating curve; a median of 3 or more is "
         "not decided by one run"),
        (f"evaluation interval ≤ {H_C5_RESOLUTION:g} × the fastest median", "choice", "a time t read every Δ "
         "steps is known to within Δ, a ratio of times to within about Δ/t: ≤ 10 %, a fifth of the room "
         f"between ×1 and the flatness factor ×{H_C5_FLAT:g}"),
    ])


def h_c6_cells(h4: pd.DataFrame) -> pd.DataFrame:
    """Per (activation, weights, depth, metric ∈ {mean, variance}) with L ≤ H_C6_DEPTH_RATIO·n:
    the seed mean `empirical`, `theory`, seed-to-seed `sd`, `n` seeds, `width`, and `se`, the
    standard error of the seed mean (judge_h_c6), from each network's eigenvalue variance (metric
    variance; for the mean) or its fourth central moment (metric fourth_central; for the
    variance: s² = μ₄ − σ⁴)."""
    keys = ["activation", "weights", "depth", "seed"]
    wide = h4[h4["depth"] <= H_C6_DEPTH_RATIO * h4["width"]].pivot_table(
        index=keys + ["width"], columns="metric", values="empirical").reset_index()
    theory = h4.pivot_table(index=keys, columns="metric", values="theory").reset_index()
    if wide.empty or not {"mean", "variance"} <= set(wide.columns):
        return pd.DataFrame()
    fourth = wide["fourth_central"] if "fourth_central" in wide else pd.Series(float("nan"), index=wide.index)
    per_seed = {"mean": wide["variance"], "variance": (fourth - wide["variance"] ** 2).clip(lower=0.0)}
    rows = []
    for metric in ("mean", "variance"):
        frame = wide[keys + ["width"]].assign(empirical=wide[metric], s2=per_seed[metric])
        frame = frame.merge(theory[keys + [metric]].rename(columns={metric: "theory"}), on=keys)
        grouped = frame.groupby(["activation", "weights", "depth"])
        cell = pd.DataFrame({"empirical": grouped["empirical"].mean(), "sd": grouped["empirical"].std(ddof=1),
                             "n": grouped["empirical"].size(), "theory": grouped["theory"].mean(),
                             "width": grouped["width"].min(), "s2": grouped["s2"].mean()}).reset_index()
        iid = np.sqrt(cell["s2"] / (cell["width"] * cell["n"]))
        between = cell["sd"] / np.sqrt(cell["n"])
        rows.append(cell.assign(metric=metric, se=np.fmax(iid, between.fillna(0.0)).where(iid.notna())))
    return pd.concat(rows, ignore_index=True)


def judge_h_c6(runs, metrics, spectra, h4: pd.DataFrame | None = None) -> Verdict:
    """H4: at every (activation, weights, depth) with L/n ≤ H_C6_DEPTH_RATIO, the seed mean of the
    mean and of the variance of λ = σ²(J) against the wide-limit theory (orthojac.thesis.theory;
    Hlav §3 after Pennington, Schoenholz & Ganguli 2017), within a tolerance fixed by theory before
    the runs it judges:

        |seed mean − theory| ≤ z·se + H_C6_FW·(L/n)·|theory| + H_C6_FLOOR·max(1, |theory|).

    Sampling (se). One network's empirical moment is an average over its n = width eigenvalues;
    the seed mean averages S networks. Read as n·S independent draws from the spectrum, the seed
    mean of the mean has se = √(σ²/(nS)) (σ²: the eigenvalues' variance) and that of the variance
    se = √((μ₄ − σ⁴)/(nS)) (μ₄: their fourth central moment), σ² and μ₄ from each network's own
    eigenvalues, averaged over the seeds. Eigenvalues of a random matrix repel, so their averages
    fluctuate less than independent draws': this over-estimates the sampling error. Where the
    networks differ by more than that (the seed-to-seed sd s: a fluctuation common to a network's
    eigenvalues, such as its share of active units), se = s/√S instead. z = Φ⁻¹(1 − H_C6_ALPHA/(2K))
    over the K moments × cells judged (Bonferroni): with the theory exact, a false alarm anywhere
    in the table has probability ≤ H_C6_ALPHA.

    Finite width. The wide-limit moments carry corrections of relative order L/n. For a deep
    linear network with Gaussian weights W_ℓ (entries N(0, 1/n)), Wick's theorem gives for A =
    J_{L−1}J_{L−1}ᵀ: E tr(WAWᵀ)²/n = E(tr A/n)² + (1 + 1/n)·E tr(A²)/n, so the second moment of λ
    grows as Σ_{k≤L}(1 + 1/n)^k ≈ (L + 1) + L(L + 1)/(2n) and the variance of λ is L·(1 + (L + 1)/(2n)):
    a relative correction (L + 1)/(2n) ≤ L/n. H_C6_FW = 1 allows twice the linear network's for
    the nonlinearity's own O(1/n) terms per layer (the fluctuation of its share of linear units),
    on the mean and the variance alike; it is judged where L/n ≤ H_C6_DEPTH_RATIO, where this
    first-order term is the leading one. H_C6_FLOOR is float64 round-off."""
    tol = (f"|seed mean − theory| ≤ z·se + {H_C6_FW:g}·(L/n)·|theory| + {H_C6_FLOOR:g}·max(1, |theory|) for the "
           f"mean and variance of σ² (se: the seed mean over n·seeds eigenvalues, or the seed-to-seed sd/√seeds if "
           f"larger; z = Φ⁻¹(1 − {H_C6_ALPHA:g}/(2K)) over the K moments × cells), at depths L ≤ "
           f"{H_C6_DEPTH_RATIO:g}·width; width ≥ {H_C6_WIDTH}, ≥ {H_C6_MIN_SEEDS} seeds")
    if h4 is None or h4.empty:
        return _verdict("H-C6", "H4 was not run in this configuration", tol, INCONCLUSIVE)
    avg = h_c6_cells(h4)
    if avg.empty:
        return _verdict("H-C6", f"no depth L ≤ {H_C6_DEPTH_RATIO:g}·width in the H4 table", tol, INCONCLUSIVE)
    if avg["se"].isna().any():
        return _verdict("H-C6", "the H4 table lacks each network's fourth central moment of σ² (metric "
                        "fourth_central): no standard error for the variance", tol, INCONCLUSIVE)
    z = statistics.NormalDist().inv_cdf(1 - H_C6_ALPHA / (2 * len(avg)))
    finite = H_C6_FW * avg["depth"] / avg["width"] * avg["theory"].abs()
    avg["allowed"] = z * avg["se"] + finite + H_C6_FLOOR * avg["theory"].abs().clip(lower=1.0)
    avg["excess"] = (avg["empirical"] - avg["theory"]).abs() / avg["allowed"]
    worst = avg.loc[avg.groupby(["activation", "weights"])["excess"].idxmax()]
    numbers = "; ".join(f"{r.activation}/{r.weights}: worst at L={r.depth} {r.metric} {r.empirical:.3g} ± "
                        f"{r.se:.2g} (se, n = {r.n}) vs theory {r.theory:.3g} ({r.excess:.2f} of the allowed)"
                        for r in worst.itertuples())
    failed = avg[avg["excess"] > 1]
    numbers += (f"; z = {z:.2f} over {len(avg)} moments × cells; {len(failed)} beyond the allowed"
                + (": " + ", ".join(f"{r.activation}/{r.weights} L={r.depth} {r.metric}" for r in failed.itertuples())
                   if len(failed) else ""))
    width, seeds = int(h4["width"].min()), int(avg["n"].min())
    if width < H_C6_WIDTH:
        return _verdict("H-C6", f"{numbers} (width {width} < {H_C6_WIDTH}: toy scale)", tol, INCONCLUSIVE)
    if seeds < H_C6_MIN_SEEDS:
        return _verdict("H-C6", f"{numbers} ({seeds} seed: no seed-to-seed spread)", tol, INCONCLUSIVE)
    return _verdict("H-C6", numbers, tol, NOT_REPRODUCED if len(failed) else REPRODUCED)


CLAIM_H_C6 = Claim(
    "H-C6", "Hlav §3 (Pennington et al. 2017)", "empirical Jacobian spectra at initialisation match the formulas",
    "it can be shown that σ²_{JJ^T} = L/p(q*) [Gaussian]; at critical point σ²_{JJ^T} = (1−p(q*))/p(q*)·L "
    "for large L [orthogonal]",
    "seed means of the mean and variance of σ²(J) at L ≤ 0.1·n against the wide-limit theory, within "
    "z·se (sampling over n·seeds eigenvalues, Bonferroni z) + (L/n)·|theory| (finite width)",
    ("H_C6_ALPHA", "H_C6_FW"), ("h4",),
    page="theory", figure="h4_spectra",
    judge=judge_h_c6,
    provenance=[
        ("mean and variance of σ²(J) against the wide-limit formulas", "stated", "Hlav §3: \"it can be shown that "
         "σ²_{JJ^T} = L/p(q*)\" (Gaussian) and \"at critical point, i.e. if χ = σ_w² p(q*) = 1, then σ²_{JJ^T} = "
         "(1−p(q*))/p(q*)·L for large L\" (orthogonal); the mean χ^L = 1 at criticality"),
        ("se: the seed mean as a mean over n·seeds eigenvalues, √(s²/(n·seeds)) (s²: the eigenvalues' variance for "
         "the mean; μ₄ − σ⁴ for the variance, each network's own), or the seed-to-seed sd/√seeds if larger", "choice",
         "the sampling fluctuation of an empirical moment over n = width eigenvalues and the seeds, as if the "
         "eigenvalues were independent draws from the spectrum (an over-estimate: eigenvalues repel, so their "
         "averages fluctuate less) unless the networks differ by more than that"),
        (f"z = Φ⁻¹(1 − {H_C6_ALPHA:g}/(2K)), K the cells × moments judged", "choice", "Bonferroni: a false alarm "
         f"somewhere in the table at most {H_C6_ALPHA:.0%} when the theory holds"),
        (f"+ {H_C6_FW:g}·(L/n)·|theory|", "choice", "finite width adds corrections of relative order L/n to the "
         "wide-limit moments; for a deep linear Gaussian network the exact one (Wick's theorem) raises the "
         "variance of σ² from L to L + L(L + 1)/(2n), a relative (L + 1)/(2n) ≤ L/n: the factor 1 allows twice "
         "that for the nonlinearity's own O(1/n) terms per layer; fixed before the H4 runs judged under it"),
        (f"+ {H_C6_FLOOR:g}·max(1, |theory|)", "choice", "float64 round-off"),
        (f"L ≤ {H_C6_DEPTH_RATIO:g}·n, n ≥ {H_C6_WIDTH}, ≥ {H_C6_MIN_SEEDS} seeds", "choice", "the theory is the "
         "wide limit and its correction a first-order one in L/n"),
    ])
