"""The depth-200 initialisation study of docs/replication.md §5: the A = B option, its table and its figure."""

import pandas as pd
import torch

from orthojac.report import figures
from orthojac.claims import P1_TOL, P5_EPS
from orthojac.config import RunConfig
from orthojac.report.figures import init_study as init_study_figure
from orthojac.report.figures import residual_baseline
from orthojac.nets.models import build_model
from orthojac.claims.tables import init_study


def test_orthoff_with_a_equal_b_and_breakpoint_t_is_fold_with_bias_minus_t():
    """Aᵀσ_1(Bx) with A = B, σ_1(z) = z − 2ReLU(z − 2): x − 2BᵀReLU(Bx − 2), fold with b₀ = −2
    (docs/replication.md §5); with A independent of B it is not."""
    torch.set_num_threads(1)
    common = dict(arch="dense", width=6, depth=1, seed=3, init="cayley")
    fold = build_model(RunConfig(family="fold", activation="relu", bias_init=-2.0, **common)).body
    x = 3 * torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    for ab_init, same in (("equal", True), ("independent", False)):
        orthoff = build_model(RunConfig(family="orthoff", activation="sigma_k", k=1, breakpoints="2",
                                        bias_init=0.0, ab_init=ab_init, **common)).body
        assert torch.allclose(orthoff(x), fold(x), atol=1e-5) == same, ab_init


def _tables():
    runs, metrics = [], []
    for i, (bias, lr, acc) in enumerate([(0.0, 3e-4, 0.10), (-2.0, 3e-4, 0.84), (-2.0, 1e-3, None)]):
        run = f"bias_init={bias}+lr={lr}"
        runs.append({"experiment": "init_study_fold", "run": run, "family": "fold", "activation": "relu",
                     "depth": 200, "bias_init": bias, "width_mid": 0, "ab_init": "independent",
                     "breakpoints": float("nan"), "lr": lr, "seed": 0,
                     "status": "diverged" if acc is None else "completed", "diverged_step": None})
        for epoch, value in ((1, 0.5 if acc else float("nan")), (3, acc if acc else float("nan"))):
            metrics.append({"experiment": "init_study_fold", "run": run, "epoch": epoch, "step": epoch * 10,
                            "split": "test", "metric": "accuracy", "value": value})
    runs.append({**runs[0], "experiment": "depth_sweep", "run": "other"})  # not part of the study
    metrics.append({**metrics[0], "experiment": "depth_sweep", "run": "other"})
    return pd.DataFrame(runs), pd.DataFrame(metrics)


def test_init_study_table_has_one_row_per_study_run_with_first_and_final_accuracy():
    table = init_study(*_tables())
    assert list(table["experiment"].unique()) == ["init_study_fold"] and len(table) == 3
    row = table.set_index("bias_init").loc[-2.0].set_index("lr")
    assert row.loc[3e-4, "first_epoch_accuracy"] == 0.5 and row.loc[3e-4, "final_accuracy"] == 0.84
    assert pd.isna(row.loc[1e-3, "final_accuracy"])  # diverged: a result, kept as a row
    assert init_study(pd.DataFrame(), pd.DataFrame()).empty


def test_init_study_figure_is_drawn_and_says_when_not_run(tmp_path):
    init_study_figure(init_study(*_tables()), tmp_path / "study.png")
    init_study_figure(pd.DataFrame(), tmp_path / "empty.png")
    single_lr = init_study(*_tables())
    init_study_figure(single_lr[single_lr["lr"] == 3e-4], tmp_path / "one_lr.png")  # one hue: no dodge
    assert (tmp_path / "one_lr.png").stat().st_size > 10_000
    assert (tmp_path / "study.png").stat().st_size > 10_000
    assert 0 < (tmp_path / "empty.png").stat().st_size < (tmp_path / "study.png").stat().st_size


def _dotted(grid):
    """The y of every dotted horizontal line, per axis."""
    return [[line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
            for ax in grid.axes.flat]


def test_init_study_figure_draws_the_residual_baseline_at_its_depth_not_a_typed_target(tmp_path, monkeypatch):
    runs, metrics = _tables()
    baselines = []
    for seed, (depth, acc) in enumerate([(200, 0.80), (200, 0.90), (50, 0.99)]):
        run = f"family=resnet+depth={depth}+seed={seed}"
        baselines.append({**runs.iloc[0].to_dict(), "experiment": "depth_sweep", "run": run, "family": "resnet",
                          "depth": depth, "seed": seed})
        metrics = pd.concat([metrics, pd.DataFrame([{"experiment": "depth_sweep", "run": run, "epoch": 3, "step": 30,
                                                     "split": "test", "metric": "accuracy", "value": acc}])])
    runs = pd.concat([runs, pd.DataFrame(baselines)], ignore_index=True)
    mean, n = residual_baseline(runs, metrics, 200)
    assert abs(mean - 0.85) < 1e-12 and n == 2
    assert residual_baseline(runs, metrics, 100) is None and residual_baseline(runs.iloc[:3], metrics, 200) is None

    grids = []
    monkeypatch.setattr(figures, "save_figure", lambda grid, path: grids.append(grid))
    init_study_figure(init_study(*_tables()), tmp_path / "study.png", (mean, n))
    init_study_figure(init_study(*_tables()), tmp_path / "none.png")
    assert _dotted(grids[0]) == [[mean]]
    assert _dotted(grids[1]) == [[]]  # no baseline trained: no line


def test_layer_defect_panels_draw_the_tolerance_of_their_own_claims(tmp_path, monkeypatch):
    runs = pd.DataFrame([{"experiment": e, "run": "r", "family": f, "activation": "relu", "bias_init": 0.0,
                          "depth": 4, "status": "completed", "diverged_step": None, "claims": c}
                         for e, f, c in [("orth", "fold", "P1;P2"), ("lim", "limit", "P5"), ("pso", "pso", "P7")]])
    layers = pd.DataFrame([{"experiment": e, "run": "r", "checkpoint": "init", "point": 0, "layer": layer,
                            "metric": "max_abs_dev", "value": 1e-9 * (layer + 1)}
                           for e in runs["experiment"] for layer in range(3)])
    assert figures.defect_tolerances(runs) == {"orth": {"P1": P1_TOL}, "lim": {"P5": P5_EPS}, "pso": {}}
    grids = []
    monkeypatch.setattr(figures, "save_figure", lambda grid, path: grids.append(grid))
    figures.layer_defect(runs, layers, tmp_path / "d.png")
    (grid,) = grids
    dotted = {row: lines for (row, _), lines in zip(grid.axes_dict, _dotted(grid))}
    assert dotted == {"orth, L = 4": [P1_TOL], "lim, L = 4": [P5_EPS], "pso, L = 4": []}
