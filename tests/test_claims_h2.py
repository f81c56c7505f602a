"""H-C4 verdicts from hand-made H2 tables (orthojac.thesis.lstm's tidy format)."""

import numpy as np
import pandas as pd
import pytest

from orthojac.claims import (
    H2_MIN_EPOCHS, H2_MIN_TRAIN, H_C4_ALPHA, INCONCLUSIVE, JUDGES, NOT_REPRODUCED, REPRODUCED, configurations_differ,
    no_difference_test,
)
from orthojac.thesis.lstm import COLUMNS, STAND_IN, TRAINED, UNAVAILABLE

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
    assert v.verdict == REPRODUCED and "range 0.0000" in v.numbers and "critical range 0.02" in v.numbers


def test_spread_beyond_seed_noise_is_not_reproduced():
    acc = {c: [0.75, 0.755, 0.76] for c in CONFIGS} | {"NoOrthogonal": [0.85, 0.855, 0.86]}
    v = judge(_h2(acc))
    assert v.verdict == NOT_REPRODUCED
    assert "0.8550 (NoOrthogonal)" in v.numbers


def test_seed_noise_too_large_to_see_a_clear_difference_is_inconclusive():
    acc = {c: [0.70, 0.80, 0.90] for c in CONFIGS} | {"NoOrthogonal": [0.75, 0.85, 0.95]}
    v = judge(_h2(acc))
    assert v.verdict == INCONCLUSIVE and "seed noise too large" in v.numbers


def test_a_diverged_seed_counts_as_chance():
    v = judge(_h2({c: [0.77, 0.78, 0.79] for c in CONFIGS}, diverged=("Orthogonal_GainA_RegB",)))
    assert "0.6900 (Orthogonal_GainA_RegB)" in v.numbers and "1 diverged" in v.numbers
    assert v.verdict == INCONCLUSIVE  # the chance seed is itself seed noise of 0.3


@pytest.mark.parametrize("configurations, seeds", [(5, 3), (10, 2), (7, 4)])
def test_the_no_difference_test_false_alarm_rate_is_alpha(configurations, seeds):
    """Equal means, normal seed noise: the test says "differ" in a fraction α of the draws (drawn
    independently of the draws its critical value comes from)."""
    rng = np.random.default_rng(12345)
    trials = 20000
    draws = 0.8 + 0.02 * rng.standard_normal((trials, configurations, seeds))
    rate = configurations_differ(draws).mean()
    assert abs(rate - H_C4_ALPHA) < 3 * np.sqrt(H_C4_ALPHA * (1 - H_C4_ALPHA) / trials)
    for table in draws[:20]:  # the judge's table form decides the same
        frame = pd.DataFrame({"configuration": np.repeat(np.arange(configurations), seeds), "value": table.ravel()})
        assert no_difference_test(frame)["differ"] == configurations_differ(table)


def test_the_judge_rarely_calls_a_difference_where_there_is_none():
    """Ten configurations, three seeds, binomial noise of 533 sentences (1.7 points): the spread
    of ten means of three is ≈ 3 points, so a fixed 3-point tolerance failed about half the time."""
    rng = np.random.default_rng(7)
    configs = [f"config{i}" for i in range(10)]
    verdicts = [judge(_h2({c: list(0.78 + 0.017 * rng.standard_normal(3)) for c in configs})).verdict
                for _ in range(40)]
    assert verdicts.count(NOT_REPRODUCED) <= 6  # α = 5 %: 2 expected, 6 is 2.9 sd above


def test_a_clear_difference_is_seen_at_that_noise():
    rng = np.random.default_rng(8)
    configs = [f"config{i}" for i in range(10)]
    acc = {c: list(0.78 + 0.017 * rng.standard_normal(3)) for c in configs}
    acc["config0"] = list(0.88 + 0.017 * rng.standard_normal(3))
    assert judge(_h2(acc)).verdict == NOT_REPRODUCED


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
