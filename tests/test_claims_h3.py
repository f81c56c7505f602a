"""H-C5 verdicts from hand-made H3 tables (orthojac.thesis.linear's tidy format)."""

import math

import pandas as pd
import pytest
from test_claims import _tables

from orthojac.claims import (
    H_C5_FLAT, H_C5_GROWTH, H_C5_MIN_SEEDS, H_C5_RESOLUTION, INCONCLUSIVE, JUDGES, NOT_REPRODUCED, REPRODUCED,
    h3_learning_times, ledger, thresholds,
)

DEPTHS = (2, 8, 32, 128)
NOT, DIVERGED = math.nan, "diverged"


def _h3(steps: dict[str, dict[int, float]], seeds=(0, 1, 2), target=0.75, every=5) -> pd.DataFrame:
    """steps[weights][depth]: steps to the target (NaN: not reached; "diverged": diverged at step 7).
    Each run also carries a decoy val_accuracy curve, evaluated every `every` steps, whose values the
    judge must not read (only its evaluation interval)."""
    rows = []
    for weights, by_depth in steps.items():
        for depth, t in by_depth.items():
            for seed in seeds:
                base = {"weights": weights, "depth": depth, "width": 128, "seed": seed, "lr": 0.3 / depth,
                        "target": target}
                rows += [base | {"step": step, "epoch": step / 100, "metric": "val_accuracy", "value": 0.99}
                         for step in (0, every)]
                if t == DIVERGED:
                    rows.append(base | {"step": 7, "epoch": 0.1, "metric": "diverged", "value": 7.0})
                steps = math.nan if t == DIVERGED else t
                rows.append(base | {"step": steps, "epoch": steps / 100, "metric": "steps_to_target", "value": steps})
    return pd.DataFrame(rows)


def _verdict(table) -> pd.Series:
    empty = pd.DataFrame()
    return pd.Series(JUDGES["H-C5"](empty, empty, empty, hlav_linear=table).as_row())


FLAT = {d: 150.0 for d in DEPTHS}
GROWING = {2: 150.0, 8: 300.0, 32: 900.0, 128: NOT}


def test_learning_times_read_status_from_the_summary_rows():
    times = h3_learning_times(_h3({"orthogonal": {2: 150.0, 8: NOT}, "gaussian": {2: DIVERGED}}, seeds=(0,)))
    status = times.set_index(["weights", "depth"])["status"]
    assert status.to_dict() == {("gaussian", 2): "diverged", ("orthogonal", 2): "reached",
                                ("orthogonal", 8): "not reached"}
    assert times.set_index(["weights", "depth"]).loc[("orthogonal", 2), "steps"] == 150.0


def test_flat_orthogonal_and_growing_gaussian_is_reproduced():
    row = _verdict(_h3({"orthogonal": FLAT, "gaussian": GROWING}))
    assert row["verdict"] == REPRODUCED
    assert "gaussian L=2: 150" in row["numbers"] and "L=128: not reached" in row["numbers"]


def test_diverged_gaussian_at_depth_counts_as_not_reaching():
    row = _verdict(_h3({"orthogonal": FLAT, "gaussian": GROWING | {128: DIVERGED}}))
    assert row["verdict"] == REPRODUCED and "3 of 24 runs diverged" in row["numbers"]


def test_gaussian_growth_just_enough_is_reproduced_just_short_is_not():
    grown = GROWING | {128: 150.0 * H_C5_GROWTH}
    assert _verdict(_h3({"orthogonal": FLAT, "gaussian": grown}))["verdict"] == REPRODUCED
    short = GROWING | {32: 300.0, 128: 150.0 * H_C5_GROWTH * 0.9}
    assert _verdict(_h3({"orthogonal": FLAT, "gaussian": short}))["verdict"] == NOT_REPRODUCED


def test_orthogonal_growing_with_depth_is_not_reproduced():
    ortho = FLAT | {128: 150.0 * H_C5_FLAT * 1.5}
    assert _verdict(_h3({"orthogonal": ortho, "gaussian": GROWING}))["verdict"] == NOT_REPRODUCED
    # an orthogonal network that never reaches the target at depth is not flat either
    assert _verdict(_h3({"orthogonal": FLAT | {128: NOT}, "gaussian": GROWING}))["verdict"] == NOT_REPRODUCED


def test_one_slow_seed_does_not_decide_the_median():
    table = _h3({"orthogonal": FLAT, "gaussian": GROWING})
    slow = (table["weights"] == "orthogonal") & (table["depth"] == 128) & (table["seed"] == 0)
    table.loc[slow & (table["metric"] == "steps_to_target"), "value"] = math.nan
    assert _verdict(table)["verdict"] == REPRODUCED


def test_too_few_or_too_close_depths_are_inconclusive():
    two = {d: t for d, t in FLAT.items() if d in (2, 8)}
    row = _verdict(_h3({"orthogonal": two, "gaussian": {2: 150.0, 8: NOT}}))
    assert row["verdict"] == INCONCLUSIVE and "too few or too close" in row["numbers"]
    close = {2: 150.0, 4: 150.0, 8: 150.0}
    assert _verdict(_h3({"orthogonal": close, "gaussian": {2: 150.0, 4: 400.0, 8: NOT}}))["verdict"] == INCONCLUSIVE


def test_target_missed_at_the_smallest_depth_is_inconclusive():
    row = _verdict(_h3({"orthogonal": FLAT | {2: NOT}, "gaussian": GROWING}))
    assert row["verdict"] == INCONCLUSIVE and "smallest depth" in row["numbers"]


def test_not_run_or_one_initialisation_is_inconclusive():
    assert _verdict(None)["verdict"] == INCONCLUSIVE
    assert _verdict(pd.DataFrame())["verdict"] == INCONCLUSIVE
    assert _verdict(_h3({"orthogonal": FLAT}))["verdict"] == INCONCLUSIVE


def test_ledger_passes_the_h3_table_to_h_c5():
    runs, metrics, spectra = _tables({("fold", 200): 0.85})
    claims = ledger(runs, metrics, spectra, hlav_linear=_h3({"orthogonal": FLAT, "gaussian": GROWING}))
    assert claims.set_index("claim").loc["H-C5", "verdict"] == REPRODUCED


def test_each_cell_says_how_many_seeds_reached_the_target():
    table = _h3({"orthogonal": FLAT, "gaussian": GROWING | {32: 900.0}})
    gaussian_32 = (table["weights"] == "gaussian") & (table["depth"] == 32) & (table["seed"] == 2)
    table.loc[gaussian_32 & (table["metric"] == "steps_to_target"), "value"] = math.nan
    row = _verdict(table)
    assert "gaussian L=2: 150 (3/3 reached)" in row["numbers"]
    assert "L=32: 900 (2/3 reached)" in row["numbers"] and "L=128: not reached (0/3 reached)" in row["numbers"]
    assert "evaluated every 5 steps" in row["numbers"]


def test_growth_carried_by_one_seed_is_not_reproduced():
    """"Grows" must hold for the median, not for one run: one Gaussian seed that never reaches the
    target at depth 128 while the other two are as fast as at depth 2."""
    table = _h3({"orthogonal": FLAT, "gaussian": {2: 150.0, 8: 150.0, 32: 150.0, 128: 160.0}})
    one = (table["weights"] == "gaussian") & (table["depth"] == 128) & (table["seed"] == 0)
    table.loc[one & (table["metric"] == "steps_to_target"), "value"] = math.nan
    assert _verdict(table)["verdict"] == NOT_REPRODUCED


@pytest.mark.parametrize("seeds", [(0,), (0, 1)])
def test_fewer_than_three_seeds_are_inconclusive(seeds):
    assert H_C5_MIN_SEEDS == 3
    row = _verdict(_h3({"orthogonal": FLAT, "gaussian": GROWING}, seeds=seeds))
    assert row["verdict"] == INCONCLUSIVE and f"{len(seeds)} seed(s) in a cell < 3" in row["numbers"]


def test_a_cell_short_of_seeds_makes_it_inconclusive():
    table = _h3({"orthogonal": FLAT, "gaussian": GROWING})
    table = table[~((table["weights"] == "gaussian") & (table["depth"] == 128) & (table["seed"] == 2))]
    assert _verdict(table)["verdict"] == INCONCLUSIVE


def test_evaluations_too_coarse_to_resolve_the_steps_are_inconclusive():
    fine = H_C5_RESOLUTION * 150.0  # the fastest median is 150 steps
    assert _verdict(_h3({"orthogonal": FLAT, "gaussian": GROWING}, every=fine))["verdict"] == REPRODUCED
    row = _verdict(_h3({"orthogonal": FLAT, "gaussian": GROWING}, every=fine * 1.2))
    assert row["verdict"] == INCONCLUSIVE and "not resolved" in row["numbers"]


def test_resolution_is_a_threshold_the_fragility_moves():
    table = _h3({"orthogonal": FLAT, "gaussian": GROWING}, every=0.08 * 150.0)
    assert _verdict(table)["verdict"] == REPRODUCED
    with thresholds(H_C5_RESOLUTION=H_C5_RESOLUTION * 0.5):
        assert _verdict(table)["verdict"] == INCONCLUSIVE
