"""Verdicts computed from hand-made tables: each verdict is reachable, and only on its numbers."""

import pandas as pd
import pytest

from orthojac.claims import (
    CLAIMS, INCONCLUSIVE, NOT_REPRODUCED, P1_TOL, P2_DEPTH, P2_TOL, P3_MARGIN, P3_MIN_DEPTH, REPRODUCED, ledger,
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


def test_claims_without_a_judge_stay_inconclusive_and_say_why():
    table = ledger(*_tables({("fold", 200): 0.9}, claims="P4")).set_index("claim")
    assert table.loc["P4", "verdict"] == INCONCLUSIVE and "no judge for P4" in table.loc["P4", "numbers"]
    assert table.loc["P5", "numbers"] == "no runs for this claim in this configuration"
    assert set(table["verdict"]) <= {REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE}
