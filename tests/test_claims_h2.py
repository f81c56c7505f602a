"""H-C4 verdicts from hand-made H2 tables (orthojac.hlav_lstm's tidy format)."""

import pandas as pd
import pytest

from orthojac.claims import H2_MIN_EPOCHS, H2_MIN_TRAIN, H_C4_TOL, INCONCLUSIVE, JUDGES, NOT_REPRODUCED, REPRODUCED
from orthojac.hlav_lstm import COLUMNS, STAND_IN, TRAINED, UNAVAILABLE

CONFIGS = ["NoOrthogonal", "Orthogonal_NoReg", "Orthogonal_GainA_NoReg", "Orthogonal_GainA_adj_RegB",
           "Orthogonal_GainA_RegB"]


def _h2(acc: dict[str, list[float]], epochs: int = H2_MIN_EPOCHS, train_size: int = H2_MIN_TRAIN,
        status: str = TRAINED, diverged=()) -> pd.DataFrame:
    """Final val accuracy per configuration and seed (one list entry a seed). The epoch before the
    last carries a decoy (0.99 for Glorot, 0.5 for the rest) so a judge reading it fails."""
    rows = []
    for conf, per_seed in acc.items():
        for seed, value in enumerate(per_seed):
            base = {"configuration": conf, "label": conf, "variant": "none", "gain": 1.1, "lam": 0.0,
                    "seed": seed, "train_size": train_size, "status": status, "note": ""}
            decoy = 0.99 if conf == "NoOrthogonal" else 0.5
            rows.append(base | {"epoch": epochs - 1, "metric": "val_accuracy", "value": decoy})
            if conf in diverged and seed == 0:
                rows.append(base | {"epoch": epochs, "metric": "diverged", "value": float(epochs)})
            else:
                rows.append(base | {"epoch": epochs, "metric": "val_accuracy", "value": value})
    return pd.DataFrame(rows, columns=COLUMNS)


def judge(table):
    return JUDGES["H-C4"](pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), hlav_lstm=table)


def test_equal_configurations_reproduce():
    v = judge(_h2({c: [0.76, 0.77, 0.78] for c in CONFIGS}))
    assert v.verdict == REPRODUCED and "spread 0.0000" in v.numbers


def test_spread_within_the_points_tolerance_reproduces_even_with_identical_seeds():
    acc = {c: [0.76 + i * H_C4_TOL / 5] * 3 for i, c in enumerate(CONFIGS)}  # spread 0.8 × tolerance
    assert judge(_h2(acc)).verdict == REPRODUCED


def test_spread_beyond_tolerance_and_seed_noise_is_not_reproduced():
    acc = {c: [0.75, 0.755, 0.76] for c in CONFIGS} | {"NoOrthogonal": [0.85, 0.855, 0.86]}
    v = judge(_h2(acc))
    assert v.verdict == NOT_REPRODUCED
    assert "0.8550 (NoOrthogonal)" in v.numbers


def test_large_seed_noise_widens_the_tolerance():
    acc = {c: [0.70, 0.80, 0.90] for c in CONFIGS} | {"NoOrthogonal": [0.75, 0.85, 0.95]}  # spread 0.05 < 0.2
    assert judge(_h2(acc)).verdict == REPRODUCED


def test_a_diverged_seed_counts_as_chance():
    v = judge(_h2({c: [0.78, 0.78] for c in CONFIGS}, diverged=("Orthogonal_GainA_RegB",)))
    assert v.verdict == NOT_REPRODUCED and "0.6400 (Orthogonal_GainA_RegB)" in v.numbers


@pytest.mark.parametrize("table, why", [
    (None, "not run"),
    (_h2({c: [0.77, 0.78] for c in CONFIGS}, epochs=1), "toy scale"),
    (_h2({c: [0.77, 0.78] for c in CONFIGS}, train_size=600), "600 training sentences"),
    (_h2({c: [0.77] for c in CONFIGS}), "1 seed(s) < 2"),
    (_h2({c: [0.77, 0.78] for c in CONFIGS}, status=STAND_IN), "generated stand-in, not the thesis data"),
])
def test_inconclusive_below_scale_or_off_data(table, why):
    v = judge(table)
    assert v.verdict == INCONCLUSIVE and why in v.numbers


def test_data_unavailable_is_inconclusive_and_says_so():
    row = {c: "" for c in COLUMNS} | {"seed": 0, "epoch": 0, "train_size": 0, "metric": "data_unavailable",
                                      "value": float("nan"), "status": UNAVAILABLE, "note": "x: not found"}
    v = judge(pd.DataFrame([row], columns=COLUMNS))
    assert v.verdict == INCONCLUSIVE and "data unavailable" in v.numbers
