"""Verdicts computed from hand-made tables: each verdict is reachable, and only on its numbers."""

import pandas as pd
import pytest

from orthojac.claims import (
    CLAIMS, INCONCLUSIVE, NOT_REPRODUCED, P1_TOL, P2_DEPTH, P2_TOL, P3_MARGIN, P3_MIN_DEPTH, P4_MIN_ACCURACY, P4_TOL,
    P5_ACC_TOL, P5_ACCURACY, P5_EPS, P6_DEPTH, P6_MARGIN, P7_FACTOR, P7_MIN_DEPTH, REPRODUCED, ledger,
)


def _tables(acc: dict[tuple[str, int], float], sigma_dev: float = 1e-9, claims="P1;P2;P3"):
    runs, metrics, spectra = [], [], []
    for (family, depth), a in acc.items():
        run = f"family={family},depth={depth}"
        diverged = a is None
        runs.append({"experiment": "e", "run": run, "family": family, "activation": "relu",
                     "depth": depth, "status": "diverged" if diverged else "completed", "claims": claims})
        metrics.append({"experiment": "e", "run": run, "epoch": 1, "step": 10, "split": "test",
                        "metric": "accuracy", "value": float("nan") if diverged else a})
        spectra += [{"experiment": "e", "run": run, "checkpoint": "init", "point": 0, "index": i,
                     "sigma": 1 + (sigma_dev if i == 0 else 0)} for i in range(3)]
    return pd.DataFrame(runs), pd.DataFrame(metrics), pd.DataFrame(spectra)


def _verdicts(*tables):
    return ledger(*tables).set_index("claim")["verdict"].to_dict()


def test_one_row_per_claim_in_order():
    table = ledger(*_tables({("fold", 200): 0.85}))
    assert list(table["claim"]) == list(CLAIMS)


def test_reproduced_at_paper_scale():
    v = _verdicts(*_tables({("fold", 200): 0.86, ("resnet", 200): 0.87, ("plain", 200): 0.10}))
    assert (v["P1"], v["P2"], v["P3"]) == (REPRODUCED, REPRODUCED, REPRODUCED)


def test_not_reproduced_when_numbers_miss():
    v = _verdicts(*_tables({("fold", 200): 0.50, ("resnet", 200): 0.87, ("plain", 200): 0.45}, sigma_dev=1e-3))
    assert (v["P1"], v["P2"], v["P3"]) == (NOT_REPRODUCED, NOT_REPRODUCED, NOT_REPRODUCED)


def test_diverged_fold_does_not_reproduce_p2_and_diverged_plain_counts_as_failing():
    v = _verdicts(*_tables({("fold", 200): None, ("resnet", 200): 0.87, ("plain", 200): None}))
    assert v["P2"] == NOT_REPRODUCED
    assert v["P3"] == INCONCLUSIVE  # no trained fold network to compare with
    v = _verdicts(*_tables({("fold", 200): 0.8, ("resnet", 200): 0.87, ("plain", 200): None}))
    assert v["P3"] == REPRODUCED


@pytest.mark.parametrize("depth", [8, 50])
def test_toy_depth_is_inconclusive(depth):
    v = _verdicts(*_tables({("fold", depth): 0.9, ("resnet", depth): 0.9, ("plain", depth): 0.1}))
    assert v["P2"] == INCONCLUSIVE and v["P3"] == INCONCLUSIVE


def test_untagged_experiments_are_not_judged():
    v = _verdicts(*_tables({("fold", 200): 0.9, ("resnet", 200): 0.9}, claims="P4"))
    assert v["P1"] == INCONCLUSIVE and v["P2"] == INCONCLUSIVE


def _h4(width: int, errors: dict[tuple[str, int], float]) -> pd.DataFrame:
    """An H4 table whose empirical variance is theory·(1 + error) (mean exactly 1)."""
    rows = []
    for (weights, depth), err in errors.items():
        th = depth * (2.0 if weights == "gaussian" else 1.0)
        for seed in (0, 1):
            rows += [{"activation": "relu", "weights": weights, "width": width, "depth": depth, "seed": seed,
                      "metric": "variance", "empirical": th + err * (th + 1), "theory": th},
                     {"activation": "relu", "weights": weights, "width": width, "depth": depth, "seed": seed,
                      "metric": "mean", "empirical": 1.0, "theory": 1.0}]
    return pd.DataFrame(rows)


def _h_c6(h4):
    return ledger(*_tables({("fold", 8): 0.9}), h4=h4).set_index("claim").loc["H-C6"]


def test_h_c6_reproduced_when_moments_match_theory():
    row = _h_c6(_h4(400, {("gaussian", 4): 0.05, ("orthogonal", 40): -0.1, ("gaussian", 200): 5.0}))
    assert row["verdict"] == REPRODUCED  # L = 200 > 0.1·400 is outside the wide-limit regime
    assert "relu/gaussian" in row["numbers"] and "relu/orthogonal" in row["numbers"]


def test_h_c6_not_reproduced_when_variance_misses():
    assert _h_c6(_h4(400, {("gaussian", 4): 0.05, ("orthogonal", 8): 0.4}))["verdict"] == NOT_REPRODUCED


def test_h_c6_inconclusive_without_table_at_toy_width_or_without_shallow_depths():
    assert _h_c6(None)["verdict"] == INCONCLUSIVE
    assert _h_c6(_h4(64, {("gaussian", 4): 0.0}))["verdict"] == INCONCLUSIVE
    assert _h_c6(_h4(400, {("gaussian", 200): 0.0}))["verdict"] == INCONCLUSIVE


def test_p1_needs_spectra_at_initialisation():
    runs, metrics, spectra = _tables({("fold", 200): 0.9})
    v = _verdicts(runs, metrics, spectra.assign(checkpoint="final"))
    assert v["P1"] == INCONCLUSIVE
    assert ledger(runs, metrics, spectra.iloc[0:0]).set_index("claim").loc["P1", "verdict"] == INCONCLUSIVE


def test_p1_judges_only_orthogonal_families():
    runs, metrics, spectra = _tables({("orthoff", 8): 0.9, ("plain", 8): 0.5})
    plain = spectra["run"].str.contains("plain")
    spectra.loc[plain, "sigma"] = 7.0  # a plain ReLU Jacobian is not orthogonal, and P1 does not say so
    assert _verdicts(runs, metrics, spectra)["P1"] == REPRODUCED
    spectra.loc[~plain & (spectra["index"] == 1), "sigma"] = 1 + 2 * P1_TOL
    table = ledger(runs, metrics, spectra).set_index("claim")
    assert table.loc["P1", "verdict"] == NOT_REPRODUCED and "orthoff" in table.loc["P1", "numbers"]


@pytest.mark.parametrize("fold, verdict", [(0.87 - P2_TOL + 0.001, REPRODUCED), (0.87 - P2_TOL - 0.001, NOT_REPRODUCED)])
def test_p2_tolerance_edge(fold, verdict):
    assert _verdicts(*_tables({("fold", P2_DEPTH): fold, ("resnet", P2_DEPTH): 0.87}))["P2"] == verdict


def test_p2_without_a_baseline_is_inconclusive():
    table = ledger(*_tables({("fold", 200): 0.9, ("plain", 200): 0.1})).set_index("claim")
    assert table.loc["P2", "verdict"] == INCONCLUSIVE and "no baseline" in table.loc["P2", "numbers"]


@pytest.mark.parametrize("plain, verdict", [(0.80 - P3_MARGIN - 0.001, REPRODUCED), (0.80 - P3_MARGIN + 0.001, NOT_REPRODUCED)])
def test_p3_margin_edge_at_the_smallest_judged_depth(plain, verdict):
    assert _verdicts(*_tables({("fold", P3_MIN_DEPTH): 0.80, ("plain", P3_MIN_DEPTH): plain}))["P3"] == verdict


def test_p3_untagged_is_inconclusive():
    assert _verdicts(*_tables({("fold", 200): 0.9, ("plain", 200): 0.1}, claims="P1;P2"))["P3"] == INCONCLUSIVE


def test_claims_without_runs_stay_inconclusive_and_say_why():
    table = ledger(*_tables({("fold", 200): 0.9}, claims="P1")).set_index("claim")
    for claim in ("P4", "P5", "P6", "P7"):
        assert table.loc[claim, "verdict"] == INCONCLUSIVE and table.loc[claim, "numbers"].startswith("no ")
    assert set(table["verdict"]) <= {REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE}


def _runs(rows: list[dict], claim: str, split: str = "test"):
    """Hand-made runs/metrics: each row = settings + `accuracy` (None: diverged)."""
    runs, metrics = [], []
    for i, row in enumerate(rows):
        settings = {k: v for k, v in row.items() if k != "accuracy"}
        run = f"r{i}"
        runs.append({"experiment": "e", "run": run, "status": "completed" if row["accuracy"] is not None
                     else "diverged", "claims": claim, "seed": i, **settings})
        metrics.append({"experiment": "e", "run": run, "epoch": 1, "step": 10, "split": split,
                        "metric": "accuracy", "value": float("nan") if row["accuracy"] is None else row["accuracy"]})
    return pd.DataFrame(runs), pd.DataFrame(metrics)


def _row(claim, runs, metrics, layers=None):
    return ledger(runs, metrics, pd.DataFrame(), layers=layers).set_index("claim").loc[claim]


def _p4(init, soft, depth=50, soft_alpha=0.001):
    rows = [{"family": "fold", "depth": depth, "regime": "init", "alpha": 0.001, "accuracy": a} for a in init]
    rows += [{"family": "fold", "depth": depth, "regime": "soft", "alpha": soft_alpha, "accuracy": a} for a in soft]
    rows += [{"family": "fold", "depth": depth, "regime": "hard", "alpha": 0.001, "accuracy": 0.5}]
    return _row("P4", *_runs(rows, "P4"))


@pytest.mark.parametrize("init, verdict", [(0.85 - P4_TOL + 0.002, REPRODUCED), (0.85 - P4_TOL - 0.002, NOT_REPRODUCED),
                                           (0.95, REPRODUCED)])
def test_p4_init_against_soft_tolerance_edge(init, verdict):
    row = _p4([init, init], [0.84, 0.86])
    assert row["verdict"] == verdict
    assert "init" in row["numbers"] and "soft (α > 0) 0.850" in row["numbers"] and "hard 0.500" in row["numbers"]


def test_p4_diverged_init_fails_and_untrained_or_missing_regimes_are_inconclusive():
    assert _p4([None, 0.85], [0.85, 0.85])["verdict"] == NOT_REPRODUCED  # mean 0.425
    assert _p4([P4_MIN_ACCURACY / 2], [P4_MIN_ACCURACY / 2])["verdict"] == INCONCLUSIVE
    assert _p4([0.85], [0.85], soft_alpha=0.0)["verdict"] == INCONCLUSIVE  # soft with α = 0 is init


def _p5(accs: dict[float, float], eps: dict[float, float] | None):
    rows = [{"family": "limit", "depth": 50, "delta": d, "accuracy": a} for d, a in accs.items()]
    rows.append({"family": "limit", "depth": 50, "delta": 0.0, "accuracy": 0.99})  # δ = 0 is fold: not judged
    runs, metrics = _runs(rows, "P5", split="val")
    layers = None
    if eps is not None:
        layers = pd.DataFrame([{"experiment": "e", "run": r.run, "checkpoint": "init", "point": 0, "layer": ell,
                                "metric": "max_abs_dev", "value": eps.get(r.delta, 0.0) * (ell + 1) / 3}
                               for r in runs.itertuples() for ell in range(3)])
    return _row("P5", runs, metrics, layers)


def test_p5_reproduced_with_small_epsilon_and_accuracy_near_89():
    row = _p5({0.01: P5_ACCURACY - P5_ACC_TOL + 0.001, 0.5: 0.5}, {0.01: P5_EPS / 2, 0.5: 3 * P5_EPS})
    assert row["verdict"] == REPRODUCED  # δ = 0.5 is not small: its ε is reported, not judged
    assert "δ=0.5: ε 0.3" in row["numbers"] and "best val 0.871 at δ=0.01" in row["numbers"]


@pytest.mark.parametrize("acc, eps", [(P5_ACCURACY - P5_ACC_TOL - 0.001, P5_EPS / 2), (0.9, P5_EPS * 1.01)])
def test_p5_not_reproduced_when_accuracy_or_epsilon_misses(acc, eps):
    assert _p5({0.01: acc}, {0.01: eps})["verdict"] == NOT_REPRODUCED


def test_p5_inconclusive_without_per_layer_spectra_or_small_delta():
    assert _p5({0.01: 0.9}, None)["verdict"] == INCONCLUSIVE
    assert _p5({0.5: 0.9}, {0.5: 0.01})["verdict"] == INCONCLUSIVE


def _p6(orthoff: dict[str, list], plain: list, depth=P6_DEPTH):
    rows = [{"family": "orthoff", "activation": act, "ab_init": "equal", "breakpoints": 2.0, "depth": depth,
             "accuracy": a} for act, accs in orthoff.items() for a in accs]
    rows += [{"family": "plain", "activation": "relu", "ab_init": "independent", "breakpoints": float("nan"),
              "depth": depth, "accuracy": a} for a in plain]
    rows += [{"family": "fold", "activation": "relu", "ab_init": "independent", "breakpoints": float("nan"),
              "depth": depth, "accuracy": 0.99}]  # not orthoff: ignored
    return _row("P6", *_runs(rows, "P6"))


@pytest.mark.parametrize("best, verdict", [(0.3 + P6_MARGIN + 0.002, REPRODUCED), (0.3 + P6_MARGIN - 0.002, NOT_REPRODUCED)])
def test_p6_margin_edge(best, verdict):
    row = _p6({"abs": [0.2, 0.2], "sigma_k": [best, best]}, [0.3, 0.3])
    assert row["verdict"] == verdict and "activation=sigma_k" in row["numbers"]


def test_p6_diverged_plain_scores_zero_and_shallow_or_missing_runs_are_inconclusive():
    assert _p6({"sigma_k": [0.8]}, [None])["verdict"] == REPRODUCED
    assert _p6({"sigma_k": [None]}, [0.1])["verdict"] == NOT_REPRODUCED
    assert _p6({"sigma_k": [0.8]}, [0.1], depth=P6_DEPTH // 2)["verdict"] == INCONCLUSIVE
    assert _p6({}, [0.1])["verdict"] == INCONCLUSIVE


def _p7(ratios: dict[int, float], depth=200, checkpoint="init"):
    rows = [{"family": "pso", "depth": depth, "pso_d": d, "accuracy": 0.5} for d in ratios]
    runs, metrics = _runs(rows, "P7")
    layers = pd.DataFrame([{"experiment": "e", "run": r.run, "checkpoint": checkpoint, "point": None, "layer": ell,
                            "metric": "grad_norm", "value": ratios[r.pso_d] ** ((depth - ell) / depth)}
                           for r in runs.itertuples() for ell in range(0, depth + 1, depth // 4)])
    return _row("P7", runs, metrics, layers)


def test_p7_reproduced_when_only_d_zero_loses_the_gradient():
    row = _p7({0: 1e-6, 4: 0.5, 64: 1.0})
    assert row["verdict"] == REPRODUCED and "d=0: ratio 1e-06" in row["numbers"]


@pytest.mark.parametrize("ratios", [{0: 1e-6, 4: 0.9 / P7_FACTOR}, {0: 1.0, 4: 1.0}, {0: 1e-6, 4: 1.1 * P7_FACTOR}])
def test_p7_not_reproduced_when_a_subspace_loses_it_or_d_zero_keeps_it(ratios):
    assert _p7(ratios)["verdict"] == NOT_REPRODUCED


def test_p7_inconclusive_when_shallow_unmeasured_or_without_both_sides():
    assert _p7({0: 1e-6, 4: 1.0}, depth=P7_MIN_DEPTH // 2)["verdict"] == INCONCLUSIVE
    assert _p7({0: 1e-6, 4: 1.0}, checkpoint="final")["verdict"] == INCONCLUSIVE
    assert _p7({4: 1.0, 16: 1.0})["verdict"] == INCONCLUSIVE
