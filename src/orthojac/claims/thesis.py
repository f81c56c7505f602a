"""Hlav (2019) §5's claims on recurrent networks: H-C1 (orthogonal beats Glorot on sequential
MNIST), H-C2 (gain-adjusted regularisation always outperforms), H-C3 (Glorot's recurrent kernel is
not well conditioned; orthogonal stays near its gain) from the H1 table, and H-C4 (the sentiment
LSTM's configurations do not differ) from the H2 table. Each claim is one `Claim` beside its judge,
with its thresholds' provenance.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from .rules import (
    Claim, INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, RULE_WHY, STAT_Z, Verdict, _verdict, combine, compare_means,
    spread)

H1_MIN_EPOCHS = 5  # H-C1..H-C3 judged only after ≥ 5 epochs (choice: the thesis trains 20)
H1_MIN_TRAIN = 12000  # … on ≥ 12000 training sequences (choice: a quarter of the stated 48000)
H1_DATASET = "mnist"  # "sequential MNIST (row version)" (Hlav §5)
H1_CHANCE = 0.1  # a diverged H1 run scores chance accuracy (10 classes)
H_C1_MARGIN = 0.0  # orthogonal − Glorot validation curve, averaged over epochs, > 0 (Hlav §5: "in average lower")
H_C1_FIRST_EPOCH = 1  # the curve from epoch 1 (epoch 0 is the untrained network: choice)
H_C2_MARGIN = 0.0  # adjusted − unadjusted > 0 (Hlav §5: "always outperforming")
H_C3_GAIN_TOL = 0.2  # orthogonal |mean σ − g| / g ≤ 0.2 ("stays near g": choice)
H_C3_KAPPA_RATIO = 10.0  # Glorot's κ = σ_max/σ_min ≥ 10 × every orthogonal one's (Hlav Def. 2.3; ×10: choice)
H2_MIN_EPOCHS = 5  # H-C4 judged only after ≥ 5 epochs (choice, as H1)
H2_MIN_TRAIN = 4264  # … on the stated training set size (Hlav §5: (4264, 50, 300))
H2_MIN_SEEDS = 2  # … with ≥ 2 seeds: the seed-to-seed spread is what the test is calibrated to
H2_CHANCE = 0.5  # a diverged H2 run scores chance accuracy (2 classes)
H_C4_ALPHA = 0.05  # false-alarm rate of the no-difference test (choice)
H_C4_CLEAR = 0.05  # conclusive only if the test would see a range of configuration means ≥ 5 points (choice)
H_C4_SIMULATIONS = 20000  # seeded draws behind the test's critical value


H1_KEYS = ["configuration", "label", "variant", "gain", "lam"]


def _h1_scale(hlav: pd.DataFrame) -> str | None:
    """Why the H1 table cannot test H-C1..H-C3 (another data set, toy scale), or None."""
    if "dataset" not in hlav:
        return "the H1 table names no data set"
    datasets = sorted(set(hlav["dataset"].dropna().astype(str)))
    if datasets != [H1_DATASET]:
        return f"ran on {', '.join(datasets) or 'an unnamed data set'}, the claim is about MNIST"
    epochs = int(hlav["epoch"].max())
    if epochs < H1_MIN_EPOCHS:
        return f"{epochs} epochs < {H1_MIN_EPOCHS}: toy scale"
    if "train_size" in hlav and hlav["train_size"].min() < H1_MIN_TRAIN:
        return f"{int(hlav['train_size'].min())} training sequences < {H1_MIN_TRAIN}: toy scale"
    return None


def _h1_seeds(table: pd.DataFrame, metric: str, diverged_value: float = float("nan")) -> pd.DataFrame:
    """One row per H1 run (configuration, label, variant, gain, lam, seed): `metric` at its last
    epoch as `value`, `diverged_value` for a seed that diverged; `diverged` says which."""
    last = table[table["metric"] == metric].sort_values("epoch").groupby(H1_KEYS + ["seed"]).tail(1)
    diverged = table[table["metric"] == "diverged"][H1_KEYS + ["seed"]].drop_duplicates()
    kept = last[H1_KEYS + ["seed", "value"]].merge(diverged, how="left", indicator=True)
    kept = kept[kept["_merge"] == "left_only"].drop(columns="_merge").assign(diverged=False)
    out = pd.concat([kept, diverged.assign(value=diverged_value, diverged=True)], ignore_index=True)
    return out.astype({"diverged": bool})


def _h1_final(table: pd.DataFrame, metric: str, diverged_value: float = float("nan")) -> pd.DataFrame:
    """Seed statistics of `metric` at each H1 run's last epoch: one row per (configuration, label,
    variant, gain, lam) with `mean`, `sd`, `n`, `values` (a diverged seed counts as
    `diverged_value`; NaN values are left out of the mean) and `diverged` (seeds)."""
    seeds = _h1_seeds(table, metric, diverged_value)
    grouped = seeds.groupby(H1_KEYS, dropna=False)
    return pd.DataFrame({"mean": grouped["value"].mean(), "sd": grouped["value"].std(ddof=1),
                         "n": grouped["value"].count(), "values": grouped["value"].apply(list),
                         "diverged": grouped["diverged"].sum()}).reset_index()


def h1_curve_average(table: pd.DataFrame, first_epoch: int | None = None,
                     diverged_value: float = H1_CHANCE) -> pd.DataFrame:
    """One row per H1 run (configuration, label, variant, gain, lam, seed): its validation accuracy
    curve averaged over epochs first_epoch…E (default H_C1_FIRST_EPOCH) as `value`, the
    thesis' "in average" (§5, Fig. 8); a run that diverged scores `diverged_value` (chance) over
    the whole curve; `diverged` says which."""
    first = H_C1_FIRST_EPOCH if first_epoch is None else first_epoch
    curve = table[(table["metric"] == "val_accuracy") & (table["epoch"] >= first)]
    average = curve.groupby(H1_KEYS + ["seed"], dropna=False)["value"].mean().reset_index()
    diverged = table[table["metric"] == "diverged"][H1_KEYS + ["seed"]].drop_duplicates()
    kept = average.merge(diverged, how="left", indicator=True)
    kept = kept[kept["_merge"] == "left_only"].drop(columns="_merge").assign(diverged=False)
    out = pd.concat([kept, diverged.assign(value=diverged_value, diverged=True)], ignore_index=True)
    return out.astype({"diverged": bool})


def judge_h_c1(runs, metrics, spectra, hlav: pd.DataFrame | None = None) -> Verdict:
    """H1, on the thesis' measure ("the training curve on the validation accuracy is in average
    lower for the non-orthogonal initialization than the orthogonal ones", Hlav §5): per seed, the
    validation curve averaged over epochs (h1_curve_average; the orthogonal side: the mean over
    the orthogonal configurations of that seed), orthogonal against Glorot (NoOrthogonal) by
    compare_means with margin H_C1_MARGIN. A diverged run scores chance (0.1)."""
    tol = (f"per seed, the validation accuracy curve averaged over epochs {H_C1_FIRST_EPOCH}…E (orthogonal: "
           f"mean over its configurations; a diverged run scores {H1_CHANCE:g}); orthogonal − Glorot > "
           f"{H_C1_MARGIN:g} by the comparison rule (seed means ± {STAT_Z:g} se); on MNIST, ≥ {H1_MIN_EPOCHS} "
           f"epochs, ≥ {H1_MIN_TRAIN} training sequences")
    if hlav is None or hlav.empty:
        return _verdict("H-C1", "H1 was not run in this configuration", tol, INCONCLUSIVE)
    final = _h1_final(hlav, "val_accuracy", diverged_value=H1_CHANCE)
    glorot = final[final["configuration"] == "NoOrthogonal"]
    ortho = final[final["configuration"] != "NoOrthogonal"]
    if glorot.empty or ortho.empty:
        return _verdict("H-C1", "H1 table lacks NoOrthogonal or orthogonal configurations", tol, INCONCLUSIVE)
    curves = h1_curve_average(hlav)
    glorot_curve = curves[curves["configuration"] == "NoOrthogonal"].groupby("seed")["value"].mean()
    ortho_curve = curves[curves["configuration"] != "NoOrthogonal"].groupby("seed")["value"].mean()
    g_values = [v for vs in glorot["values"] for v in vs]
    numbers = (f"validation curve averaged over epochs {H_C1_FIRST_EPOCH}…{int(hlav['epoch'].max())}: Glorot "
               f"{spread(glorot_curve, 4)}, orthogonal (mean of {len(ortho)} configurations) {spread(ortho_curve, 4)}; "
               f"final val accuracy: Glorot {spread(g_values, 4)}; orthogonal mean {ortho['mean'].mean():.4f} "
               f"(seed means {ortho['mean'].min():.4f}–{ortho['mean'].max():.4f}, {int(ortho['n'].max())} seeds, "
               f"{int(final['diverged'].sum())} diverged)")
    why = _h1_scale(hlav)
    if why:
        return _verdict("H-C1", f"{numbers} ({why})", tol, INCONCLUSIVE)
    comparison = compare_means("orthogonal", ortho_curve, "Glorot", glorot_curve, H_C1_MARGIN)
    return _verdict("H-C1", numbers, tol, comparison.verdict, [comparison])


CLAIM_H_C1 = Claim(
    "H-C1", "Hlav §5", "orthogonal initialisation beats Glorot on sequential MNIST",
    "the training curve on the validation accuracy is in average lower for the non-orthogonal "
    "initialization than the orthogonal ones",
    "per seed: the validation curve averaged over epochs (orthogonal: mean over its configurations); "
    "orthogonal − Glorot",
    ("H_C1_MARGIN", "STAT_Z"), ("hlav_rnn",), comparison=True,
    page="hlav", figure="hlav_accuracy",
    judge=judge_h_c1,
    provenance=[
        ("MNIST", "stated", "Hlav §5: sequential MNIST"),
        (f"margin {H_C1_MARGIN:g}: orthogonal − Glorot > 0", "stated", "Hlav §5: \"the training curve on the "
         "validation accuracy is in average lower for the non-orthogonal initialization than the orthogonal "
         "ones\""),
        (f"the validation curve averaged over epochs {H_C1_FIRST_EPOCH}…E, per seed; orthogonal: the mean over "
         "its configurations", "choice", "Hlav §5 compares the curves \"in average\" (its Fig. 8); epoch 0 is "
         "the untrained network"),
        (f"difference of seed means ± {STAT_Z:g} se", "choice", RULE_WHY),
        (f"≥ {H1_MIN_EPOCHS} epochs, ≥ {H1_MIN_TRAIN} training sequences", "choice", "Hlav §5 trains on 48000 "
         "and states no number of epochs"),
    ])


def judge_h_c2(runs, metrics, spectra, hlav: pd.DataFrame | None = None) -> Verdict:
    """H1: at every (regulariser form, λ), the gain-adjusted configuration's final validation
    accuracy against the unadjusted one's by compare_means with margin H_C2_MARGIN (a diverged run
    counts as chance, 0.1); "always outperforming" (Hlav §5): combined over the pairs by `combine`."""
    tol = (f"at every (regulariser form, λ): adjusted − unadjusted > {H_C2_MARGIN:g} by the comparison rule "
           f"(final val accuracy, seed means ± {STAT_Z:g} se); on MNIST, ≥ {H1_MIN_EPOCHS} epochs")
    if hlav is None or hlav.empty:
        return _verdict("H-C2", "H1 was not run in this configuration", tol, INCONCLUSIVE)
    final = _h1_final(hlav, "val_accuracy", diverged_value=H1_CHANCE)
    adj = final[final["configuration"] == "Orthogonal_GainA_adj_RegB"].set_index(["variant", "lam"])
    unadj = final[final["configuration"] == "Orthogonal_GainA_RegB"].set_index(["variant", "lam"])
    pairs = adj[["values"]].merge(unadj[["values"]], how="inner", left_index=True, right_index=True,
                                  suffixes=("_adj", "_unadj"))
    if pairs.empty:
        return _verdict("H-C2", "no gain-adjusted/unadjusted pair at equal λ in the H1 table", tol, INCONCLUSIVE)
    comparisons = [compare_means("adjusted", r.values_adj, "unadjusted", r.values_unadj, H_C2_MARGIN,
                                 label=f"{v} λ={lam:g}") for (v, lam), r in pairs.iterrows()]
    numbers = "; ".join(f"{c.label}: adj {spread(c.values_a, 4)} vs unadjusted {spread(c.values_b, 4)}"
                        for c in comparisons)
    why = _h1_scale(hlav)
    if why:
        return _verdict("H-C2", f"{numbers} ({why})", tol, INCONCLUSIVE)
    return _verdict("H-C2", numbers, tol, combine(comparisons), comparisons)


CLAIM_H_C2 = Claim(
    "H-C2", "Hlav §5", "gain-adjusted regularisation is always outperforming the unadjusted one at equal λ",
    "The gain-adjusted regularized models are always outperforming the non-adjusted one",
    "per (regulariser form, λ): seed-mean final validation accuracy, adjusted − unadjusted",
    ("H_C2_MARGIN", "STAT_Z"), ("hlav_rnn",), comparison=True,
    page="hlav", figure="hlav_accuracy",
    judge=judge_h_c2,
    provenance=[
        ("MNIST", "stated", "Hlav §5"),
        ("adjusted > unadjusted at every (form, λ)", "stated", "Hlav §5: \"always outperforming\""),
        (f"margin {H_C2_MARGIN:g}; difference of seed means ± {STAT_Z:g} se", "choice", RULE_WHY),
        ("scale", "choice", "as H-C1"),
    ])


def judge_h_c3(runs, metrics, spectra, hlav: pd.DataFrame | None = None) -> Verdict:
    """H1, after the last epoch, on the thesis' measure of conditioning (Def. 2.3, eq. (6): κ =
    σ_max/σ_min): per seed κ of the recurrent kernel, seed means per configuration over the seeds
    that did not diverge. Reproduced when Glorot's κ ≥ H_C3_KAPPA_RATIO × every orthogonal
    configuration's ("not well conditioned", §5) and each orthogonal mean σ is within
    H_C3_GAIN_TOL of its gain g. The spread σ_max − σ_min is reported beside it. An orthogonal
    configuration with every seed diverged did not stay near its gain."""
    tol = (f"Glorot's κ = σ_max/σ_min ≥ {H_C3_KAPPA_RATIO:g} × every orthogonal configuration's κ and |mean σ − g|/g "
           f"≤ {H_C3_GAIN_TOL:g} for every orthogonal configuration (seed means over the seeds that did not "
           f"diverge); on MNIST, ≥ {H1_MIN_EPOCHS} epochs")
    if hlav is None or hlav.empty:
        return _verdict("H-C3", "H1 was not run in this configuration", tol, INCONCLUSIVE)
    seeds = _h1_seeds(hlav, "sv_max").merge(_h1_seeds(hlav, "sv_min"), on=H1_KEYS + ["seed", "diverged"],
                                            suffixes=("_max", "_min"))
    seeds["kappa"] = seeds["value_max"] / seeds["value_min"]
    kappa = seeds.groupby(H1_KEYS, dropna=False)["kappa"].mean()
    hi, lo, mean = (_h1_final(hlav, m).set_index(H1_KEYS) for m in ("sv_max", "sv_min", "sv_mean"))
    table = pd.DataFrame({"width": hi["mean"] - lo["mean"], "kappa": kappa, "mean": mean["mean"], "n": mean["n"],
                          "diverged": mean["diverged"]}).reset_index()
    glorot = table[(table["configuration"] == "NoOrthogonal") & table["kappa"].notna()]
    ortho = table[table["configuration"] != "NoOrthogonal"].copy()
    if glorot.empty or ortho.empty:
        return _verdict("H-C3", "H1 table lacks NoOrthogonal (with a seed that did not diverge) or orthogonal "
                        "configurations", tol, INCONCLUSIVE)
    ortho["off"] = (ortho["mean"] - ortho["gain"]).abs() / ortho["gain"]
    trained = ortho.dropna(subset=["kappa", "off"])
    g_kappa, g_width = glorot["kappa"].iloc[0], glorot["width"].iloc[0]
    numbers = (f"after the last epoch: Glorot κ = σ_max/σ_min {g_kappa:.3g}, σ_max − σ_min {g_width:.3f} "
               f"({int(glorot['n'].iloc[0])} seeds)")
    if not trained.empty:
        numbers += (f"; orthogonal κ {trained['kappa'].min():.3g}–{trained['kappa'].max():.3g} (Glorot's is "
                    f"{g_kappa / trained['kappa'].max():.3g}× the largest), σ_max − σ_min "
                    f"{trained['width'].min():.3f}–{trained['width'].max():.3f}, worst |mean σ − g|/g = "
                    f"{trained['off'].max():.3f} ({trained.loc[trained['off'].idxmax(), 'label']})")
    diverged = table[table["diverged"] > 0]
    if not diverged.empty:
        numbers += "; diverged: " + ", ".join(f"{r.label} ({int(r.diverged)} of {int(r.diverged + r.n)} seeds)"
                                              for r in diverged.itertuples())
    why = _h1_scale(hlav)
    if why:
        return _verdict("H-C3", f"{numbers} ({why})", tol, INCONCLUSIVE)
    ok = (len(trained) == len(ortho) and g_kappa >= H_C3_KAPPA_RATIO * trained["kappa"].max()
          and (trained["off"] <= H_C3_GAIN_TOL).all())
    return _verdict("H-C3", numbers, tol, REPRODUCED if ok else NOT_REPRODUCED)


CLAIM_H_C3 = Claim(
    "H-C3", "Hlav Def. 2.3, §5, Figs. 7, 9",
    "Glorot's recurrent kernel is not well conditioned; orthogonal stays near the gain",
    "the massive pink area represents a kernel matrix not well conditioned (§5); κ(M) = σ_max(M)/σ_min(M) "
    "(Def. 2.3, eq. 6)",
    "after the last epoch: seed-mean condition number κ = σ_max/σ_min of the recurrent kernel; |mean σ − g|/g",
    ("H_C3_KAPPA_RATIO", "H_C3_GAIN_TOL"), ("hlav_rnn",),
    page="hlav", figure="hlav_spectrum",
    judge=judge_h_c3,
    provenance=[
        ("MNIST", "stated", "Hlav §5"),
        ("condition number κ = σ_max/σ_min", "stated", "Hlav Def. 2.3, eq. (6): \"κ(M) = σ_max(M)/σ_min(M)\"; "
         "\"A matrix has a condition number of exactly 1 if it is a linear isometry\""),
        ("Glorot's spectrum not well conditioned", "stated", "Hlav §5: \"the massive pink area represents a "
         "kernel matrix not well conditioned\""),
        (f"Glorot's κ ≥ ×{H_C3_KAPPA_RATIO:g} every orthogonal κ", "choice", "an order of magnitude; written "
         "after the CPU reference's H1 runs had been seen (there: 115 against ≤ 3.3), so provisional until "
         "the reference is regenerated under it"),
        (f"±{H_C3_GAIN_TOL:.0%} of g", "choice", "\"stays near the gain\""),
        ("scale", "choice", "as H-C1"),
    ])


@functools.lru_cache(maxsize=None)
def studentized_range_critical(configurations: int, seeds: int, alpha: float = H_C4_ALPHA,
                               simulations: int = H_C4_SIMULATIONS) -> float:
    """The (1 − α) quantile of (max − min of k configuration means) / (s_pooled/√n), k
    configurations of n seeds with equal means and normal seed noise (s_pooled: the pooled
    within-configuration sd), by `simulations` seeded draws (the studentized range distribution
    with k(n − 1) degrees of freedom)."""
    if configurations < 2 or seeds < 2:
        raise ValueError(f"the no-difference test needs ≥ 2 configurations of ≥ 2 seeds, got "
                         f"{configurations} × {seeds}")
    draws = np.random.default_rng(0).standard_normal((simulations, configurations, seeds))
    means = draws.mean(axis=2)
    pooled = np.sqrt(draws.var(axis=2, ddof=1).mean(axis=1))
    return float(np.quantile((means.max(axis=1) - means.min(axis=1)) / (pooled / math.sqrt(seeds)), 1 - alpha))


def configurations_differ(values: np.ndarray, alpha: float = H_C4_ALPHA) -> np.ndarray:
    """The no-difference test on `values` of shape (..., k configurations, n seeds): True where
    the range of the k configuration means exceeds the studentized range's (1 − α) point times
    s_pooled/√n. With equal true means and normal seed noise it is True with probability α."""
    values = np.asarray(values, dtype=float)
    k, n = values.shape[-2:]
    means = values.mean(axis=-1)
    pooled = np.sqrt(values.var(axis=-1, ddof=1).mean(axis=-1))
    critical = studentized_range_critical(k, n, alpha) * pooled / math.sqrt(n)
    return means.max(axis=-1) - means.min(axis=-1) > critical


def no_difference_test(values: pd.DataFrame, alpha: float = H_C4_ALPHA) -> dict:
    """configurations_differ on a table: one row per (configuration, seed), columns
    `configuration` and `value`; the configurations may have different numbers of seeds (n: their
    harmonic mean, s_pooled over the k(n − 1) degrees of freedom there are). Returns the range,
    the critical range, `differ` (True: rejected), the pooled sd and n."""
    grouped = values.groupby("configuration")["value"]
    means, counts = grouped.mean(), grouped.count()
    dof = int((counts - 1).sum())
    pooled = math.sqrt(float(((counts - 1) * grouped.var(ddof=1)).sum()) / dof) if dof > 0 else float("nan")
    seeds = len(counts) / float((1 / counts).sum())
    critical = studentized_range_critical(len(means), max(2, round(seeds)), alpha) * pooled / math.sqrt(seeds)
    spread_ = float(means.max() - means.min())
    return {"range": spread_, "critical": critical, "differ": spread_ > critical,
            "pooled_sd": pooled, "seeds": seeds}


def judge_h_c4(runs, metrics, spectra, hlav_lstm: pd.DataFrame | None = None) -> Verdict:
    """H2: the range (max − min) over configurations of the seed-mean final validation accuracy
    (the thesis' Fig. 10 measure; a diverged seed counts as chance, 0.5), tested against seed
    noise at a false-alarm rate H_C4_ALPHA (no_difference_test). Reproduced when the test sees no
    difference and would have seen one of H_C4_CLEAR; not reproduced when it sees one."""
    tol = (f"range of the configurations' seed-mean final val accuracy ≤ the studentized range's "
           f"{1 - H_C4_ALPHA:.0%} point × pooled seed sd/√n (false-alarm rate {H_C4_ALPHA:.0%}); conclusive "
           f"only if that critical range ≤ {H_C4_CLEAR:g}; thesis data, ≥ {H2_MIN_SEEDS} seeds, ≥ "
           f"{H2_MIN_EPOCHS} epochs, ≥ {H2_MIN_TRAIN} training sentences")
    if hlav_lstm is None or hlav_lstm.empty:
        return _verdict("H-C4", "H2 was not run in this configuration (or its table was not given)", tol, INCONCLUSIVE)
    status = set(hlav_lstm["status"])
    if "data unavailable" in status:
        return _verdict("H-C4", "H2 data unavailable: nothing was trained (the report lists the sources tried)",
                        tol, INCONCLUSIVE)
    table = hlav_lstm[hlav_lstm["metric"] != "data_unavailable"]
    final = _h1_seeds(table, "val_accuracy", diverged_value=H2_CHANCE)
    if final.empty:
        return _verdict("H-C4", "the H2 table has no validation accuracy", tol, INCONCLUSIVE)
    final = final.assign(configuration=final[H1_KEYS].astype(str).agg("|".join, axis=1))
    names = final.groupby("configuration")["label"].first()
    means = final.groupby("configuration")["value"].mean()
    seeds, epochs = int(final["seed"].nunique()), int(table["epoch"].max())
    numbers = (f"final val accuracy over {len(means)} configurations: {means.min():.4f} "
               f"({names[means.idxmin()]}) to {means.max():.4f} ({names[means.idxmax()]}), range "
               f"{means.max() - means.min():.4f}; {seeds} seeds, {int(final['diverged'].sum())} diverged, "
               f"{epochs} epochs")
    why = ("generated stand-in, not the thesis data" if "generated stand-in" in status
           else f"{seeds} seed(s) < {H2_MIN_SEEDS}" if seeds < H2_MIN_SEEDS
           else f"{epochs} epochs < {H2_MIN_EPOCHS}: toy scale" if epochs < H2_MIN_EPOCHS
           else f"{int(table['train_size'].min())} training sentences < {H2_MIN_TRAIN}: toy scale"
           if table["train_size"].min() < H2_MIN_TRAIN else None)
    if why or len(means) < 2:
        return _verdict("H-C4", f"{numbers} ({why or 'one configuration'})", tol, INCONCLUSIVE)
    test = no_difference_test(final[["configuration", "value"]])
    numbers += (f"; pooled seed sd {test['pooled_sd']:.4f}, critical range {test['critical']:.4f} "
                f"({1 - H_C4_ALPHA:.0%} point, n = {test['seeds']:.3g} seeds a configuration)")
    if test["differ"]:
        return _verdict("H-C4", numbers, tol, NOT_REPRODUCED)
    if not test["critical"] <= H_C4_CLEAR:
        return _verdict("H-C4", f"{numbers} (seed noise too large: a range up to the critical one would "
                        "pass unseen)", tol, INCONCLUSIVE)
    return _verdict("H-C4", numbers, tol, REPRODUCED)


CLAIM_H_C4 = Claim(
    "H-C4", "Hlav §5", "the sentiment LSTM shows no clear difference between configurations",
    "We basically observe on Figure 10 that all models are behaving the same way",
    "range of the configurations' seed-mean final validation accuracy against a studentized-range test",
    ("H_C4_ALPHA", "H_C4_CLEAR"), ("hlav_lstm",),
    page="hlav", figure="hlav_lstm_accuracy",
    judge=judge_h_c4,
    provenance=[
        (f"false-alarm rate {H_C4_ALPHA:.0%}", "choice", "the usual 5 %; checked by simulation in the tests"),
        (f"critical range ≤ {H_C4_CLEAR:g}", "choice", "a \"clear difference\" of 5 points must be visible"),
        (f"{H2_MIN_TRAIN} training sentences", "stated", "Hlav §5: (4264, 50, 300)"),
        (f"≥ {H2_MIN_SEEDS} seeds, ≥ {H2_MIN_EPOCHS} epochs", "choice", "the test needs a seed spread; as H1"),
    ])
