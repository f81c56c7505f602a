"""The depth-200 initialisation study of docs/replication.md §5: the A = B option, its table and its figure."""

import pandas as pd
import torch

from orthojac.config import RunConfig
from orthojac.figures import init_study as init_study_figure
from orthojac.models import build_model
from orthojac.tables import init_study


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
