"""H4: criticality, the theory's special cases stated by Hlav §3, and a small empirical check."""

import math

import pandas as pd
import pytest

from orthojac.thesis import theory


def test_relu_formulas_are_hlavs():
    p = 0.5
    assert theory.theory("relu", "gaussian", 10, 1 / 64)["variance"] == pytest.approx(10 / p)
    assert theory.theory("relu", "orthogonal", 10, 1 / 64)["variance"] == pytest.approx((1 - p) * 10 / p)
    assert theory.theory("relu", "gaussian", 10, 1 / 64)["max"] == pytest.approx(math.e * 10 / p)


@pytest.mark.parametrize("activation", ["tanh", "hardtanh"])
def test_critical_point_has_chi_one(activation):
    c = theory.critical_point(activation, 0.25)
    assert c["sigma_b2"] > 0 and c["m1"] == 1.0 and c["m2"] > 1.0
    if activation == "hardtanh":
        assert c["sigma_w2"] * math.erf(2 / math.sqrt(2)) == pytest.approx(1.0)


def test_empirical_moments_follow_theory_at_small_depth(tmp_path):
    out = tmp_path / "h4.csv"
    theory.main(["--depths", "2", "4", "--width", "96", "--seeds", "0", "1", "2", "3", "--activations", "relu", "tanh",
             "--out", str(out)])
    table = pd.read_csv(out)
    assert len(table) == 2 * 2 * 2 * 4 * 4  # mean, variance, max, fourth_central
    assert table.loc[table['metric'] == 'fourth_central', 'theory'].isna().all()
    wide = table.pivot_table(index=["activation", "weights", "depth", "seed"], columns="metric", values="empirical")
    assert (wide["fourth_central"] >= wide["variance"] ** 2 * (1 - 1e-9)).all()  # μ₄ ≥ σ⁴
    avg = table.groupby(["activation", "weights", "depth", "metric"])[["empirical", "theory"]].mean()
    judged = avg.loc[pd.IndexSlice[:, :, :, ["mean", "variance"]], :]
    # ReLU's random half of dead units makes one network's spectral variance noisy: 4 seeds, 0.5.
    assert ((judged["empirical"] - judged["theory"]).abs() / (judged["theory"] + 1) < 0.5).all()
    orth_tanh = avg.loc[("tanh", "orthogonal", 4, "variance"), "empirical"]
    gauss_tanh = avg.loc[("tanh", "gaussian", 4, "variance"), "empirical"]
    assert orth_tanh < 0.05 < 2 < gauss_tanh  # orthogonal tanh near isometry, Gaussian not


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="--depths"):
        theory.main(["--depths", "0", "--out", str(tmp_path / "x.csv")])
    with pytest.raises(ValueError, match="weights"):
        theory.empirical("relu", "uniform", 8, [2], 0, 1 / 64)
