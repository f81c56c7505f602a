"""The pieces of the depth-200 comparisons that a hostile reviewer would check: the screen's
selection rule (fixed before the screen), the confirmation taking only what it keeps, the
identity-start control, the weight defects after training, and the rule that a verdict must be
the same at the runs' previous epoch."""

from __future__ import annotations

import copy
import json
import shlex

import pandas as pd
import pytest
import torch

from conftest import REPO
from orthojac.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, ledger, previous_epoch
from orthojac.config import RunConfig
from orthojac.nets.models import build_model
from orthojac.run.select import SCREEN_TIE, apply_selection, choose, selection
from orthojac.spectra import weight_defects
from orthojac.workflow import Pipeline, config_errors, load_config

SCHEMA_FILE = REPO / "workflow/schemas/config.schema.yaml"


# the selection rule ------------------------------------------------------------------------------

def _entry(run, score, regime="init", status="completed"):
    return {"run": run, "score": score, "status": status, "settings": {"regime": regime, "lr": 1e-3}}


def test_the_best_score_wins_when_nothing_is_within_the_tie():
    entries = [_entry("a", 0.80), _entry("b", 0.80 + 2 * SCREEN_TIE, "hard"), _entry("c", 0.5, "soft")]
    assert choose(entries)["run"] == "b"


def test_within_the_tie_the_simplest_regime_is_kept_then_the_higher_score():
    entries = [_entry("hard", 0.85), _entry("soft", 0.85 - SCREEN_TIE / 2, "soft"),
               _entry("init", 0.85 - SCREEN_TIE / 2 - 0.001), _entry("init2", 0.85 - SCREEN_TIE / 4)]
    entries[0]["settings"]["regime"] = "hard"
    assert choose(entries)["run"] == "init2"


def test_a_diverged_screen_run_scores_zero_and_an_empty_screen_is_refused(tmp_path):
    runs = []
    for name, status, acc in (("ok", "completed", 0.6), ("bad", "diverged", 0.9)):
        folder = tmp_path / "screen" / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"status": status, "config": RunConfig(lr=0.1).to_dict()}))
        pd.DataFrame([{"epoch": 1, "step": 5, "split": "val", "metric": "accuracy", "value": acc}]).to_csv(
            folder / "metrics.csv", index=False)
        runs.append(folder / "config.json")
    record = selection(runs, ["lr", "regime"], "screen")
    assert record["chosen"]["run"] == "ok" and record["chosen"]["settings"] == {"lr": 0.1, "regime": "init"}
    assert {c["run"]: c["score"] for c in record["candidates"]} == {"bad": 0.0, "ok": 0.6}
    with pytest.raises(ValueError, match="no runs"):
        choose([])
    with pytest.raises(ValueError, match="not settings of a run"):
        selection(runs, ["learning_rate"], "screen")


def test_a_confirmation_takes_only_the_settings_it_keeps(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"chosen": {"settings": {"lr": 3e-4, "regime": "hard"}}}))
    cfg = apply_selection(RunConfig(lr=1.0, regime="init", seed=7), path, ["lr"])
    assert (cfg.lr, cfg.regime, cfg.seed) == (3e-4, "init", 7)
    with pytest.raises(SystemExit, match="not chosen by this selection"):
        apply_selection(RunConfig(), path, ["ab_init"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit, match="bad.json: not a selection file"):
        apply_selection(RunConfig(), tmp_path / "bad.json", ["lr"])


# the workflow ------------------------------------------------------------------------------------

def _cpu() -> dict:
    return load_config([REPO / "config/cpu.yaml"], base=REPO / "config/config.yaml")


def test_the_cpu_reference_confirms_each_screen_on_fresh_seeds_with_the_selection_file():
    cfg = _cpu()
    pipeline = Pipeline(cfg)
    args = pipeline.train_args("depth200_orthoff_abs", "seed=1")
    words = shlex.split(args)
    assert "--selection" in words and words[words.index("--selection") + 1] == \
        "results/selections/screen_orthoff_abs.json"
    keep = words[words.index("--selection-keep") + 1:]
    assert keep == ["lr", "regime", "ab_init"] and "--lr" not in " ".join(words)
    screens = {e["select"]["from"] for e in cfg["experiments"] if "select" in e}
    for experiment in cfg["experiments"]:
        if "select" not in experiment:
            continue
        screen = pipeline.experiments[experiment["select"]["from"]]
        screen_seeds = set(map(str, screen["settings"]["seed"].get("grid", [screen["settings"]["seed"].get("value")])))
        assert not screen_seeds & set(map(str, experiment["settings"]["seed"]["grid"])), experiment["name"]
    # every family of the comparison gets the same learning-rate grid
    grids = {s: tuple(pipeline.experiments[s]["settings"]["lr"]["grid"]) for s in screens}
    assert len(set(grids.values())) == 1 and {1e-4, 3e-4, 1e-3} <= set(next(iter(grids.values())))


@pytest.mark.parametrize("change, message", [
    (lambda e: e[1]["select"].update({"from": "nowhere"}), "'nowhere' is not another experiment"),
    (lambda e: e[1]["select"].update({"keep": ["width"]}), "'width' is not a grid axis of 'screen'"),
    (lambda e: e[1]["settings"].update({"lr": {"value": 0.1, "choice": "x"}}), "'lr' is also in settings"),
    (lambda e: e[0].update({"select": {"from": "confirm", "keep": ["lr"], "choice": "x"}}), "selects from"),
])
def test_a_selection_that_cannot_work_is_refused_naming_the_key(change, message):
    cfg = _cpu()
    base = copy.deepcopy(next(e for e in cfg["experiments"] if e["name"] == "screen_fold"))
    screen = {**base, "name": "screen"}
    confirm = copy.deepcopy(next(e for e in cfg["experiments"] if e["name"] == "depth200_fold"))
    confirm.update({"name": "confirm", "select": {"from": "screen", "keep": ["lr"], "choice": "x"}})
    cfg["experiments"] = [screen, confirm]
    cfg.pop("reference_parts")  # the reference's parts name the experiments this test replaces
    assert not config_errors(cfg, SCHEMA_FILE)
    change(cfg["experiments"])
    found = "\n".join(config_errors(cfg, SCHEMA_FILE))
    assert message in found and "select" in found


# the control and the weight defects -------------------------------------------------------------

def _dense(**kw) -> RunConfig:
    return RunConfig(**{"arch": "dense", "width": 16, "depth": 3, "init": "cayley", "bias_init": -2.0, **kw})


def test_the_control_is_fold_with_a_gaussian_b_and_only_in_regime_init():
    model = build_model(_dense(family="fold", init="gaussian"))
    defects = {r["layer"]: r["value"] for r in weight_defects(model) if r["metric"] == "bb_defect"}
    assert len(defects) == 3 and min(defects.values()) > 0.3  # BBᵀ is far from I
    orthogonal = [r["value"] for r in weight_defects(build_model(_dense(family="fold"))) if r["metric"] == "bb_defect"]
    assert max(orthogonal) < 1e-5
    for bad in (dict(regime="soft"), dict(arch="conv", channels=2)):
        with pytest.raises(ValueError, match="non-orthogonal control"):
            build_model(_dense(family="fold", init="gaussian", **bad))


def test_orthoff_weight_defects_tell_a_equal_to_b_from_independent():
    equal = weight_defects(build_model(_dense(family="orthoff", activation="abs", ab_init="equal", bias_init=0.0)))
    apart = weight_defects(build_model(_dense(family="orthoff", activation="abs", bias_init=0.0)))
    ab = lambda rows: [r["value"] for r in rows if r["metric"] == "ab_defect"]  # noqa: E731
    assert len(ab(equal)) == 3 and max(ab(equal)) < 1e-5 and min(ab(apart)) > 0.5
    assert {r["metric"] for r in equal} == {"bb_defect", "aa_defect", "ab_defect"}
    assert weight_defects(build_model(RunConfig(arch="conv", channels=2, depth=2))) == []


def test_regime_hard_keeps_the_orthogonal_start_and_stays_orthogonal_after_a_step():
    model = build_model(_dense(family="fold", regime="hard", bias_init=0.0))  # units active: B gets gradients
    start = build_model(_dense(family="fold", bias_init=0.0)).body[0].B.weight
    assert torch.equal(model.body[0].B.weight, start)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    loss = model(torch.randn(8, 1, 28, 28)).square().mean()
    loss.backward()
    optimiser.step()
    assert max(r["value"] for r in weight_defects(model)) < 1e-5
    assert (model.body[0].B.weight - start).abs().max() > 1e-3


# the verdicts ------------------------------------------------------------------------------------

def _runs(groups: dict[tuple, list], claims: str = "P2;P3", epochs=(1, 2)):
    """groups: (family, init) → per seed, the accuracy at each epoch (a number: the same at both)."""
    runs, metrics = [], []
    for (family, init), seeds in groups.items():
        for seed, acc in enumerate(seeds):
            run = f"{family}-{init}-{seed}"
            runs.append({"experiment": "e", "run": run, "family": family, "init": init, "activation": "relu",
                         "depth": 200, "seed": seed, "status": "completed", "claims": claims})
            values = acc if isinstance(acc, (list, tuple)) else [acc] * len(epochs)
            for epoch, value in zip(epochs, values):
                for split in ("val", "test"):
                    metrics.append({"experiment": "e", "run": run, "epoch": epoch, "step": 10 * epoch,
                                    "split": split, "metric": "accuracy", "value": value})
    return pd.DataFrame(runs), pd.DataFrame(metrics), pd.DataFrame()


def test_the_control_is_not_counted_as_fold_and_its_mechanism_line_reads_the_comparison():
    tables = _runs({("fold", "cayley"): [0.86, 0.862, 0.864], ("resnet", "cayley"): [0.86, 0.861, 0.862],
                    ("fold", "gaussian"): [0.10, 0.11, 0.12], ("plain", "cayley"): [0.1, 0.1, 0.1]})
    table = ledger(*tables).set_index("claim")
    p2 = table.loc["P2"]
    assert p2["verdict"] == REPRODUCED and "fold 0.862" in p2["numbers"]
    assert "identity-start control" in p2["numbers"] and "orthogonal B trains better" in p2["numbers"]
    same = _runs({("fold", "cayley"): [0.86, 0.862, 0.864], ("resnet", "cayley"): [0.86, 0.861, 0.862],
                  ("fold", "gaussian"): [0.861, 0.862, 0.863], ("plain", "cayley"): [0.1, 0.1, 0.1]})
    p3 = ledger(*same).set_index("claim").loc["P3"]
    assert p3["verdict"] == REPRODUCED and "the identity start alone may explain it" in p3["numbers"]


def test_a_verdict_that_changes_at_the_previous_epoch_is_not_settled():
    """fold catches up with resnet only in its last epoch: the ranking is not the same at the last
    two epochs, so the runs are too short to judge."""
    tables = _runs({("fold", "cayley"): [(0.70, 0.86), (0.71, 0.862), (0.72, 0.864)],
                    ("resnet", "cayley"): [0.86, 0.861, 0.862]})
    p2 = ledger(*tables).set_index("claim").loc["P2"]
    assert p2["verdict"] == INCONCLUSIVE and "not settled, at the previous epoch: not reproduced" in p2["numbers"]
    settled = ledger(*_runs({("fold", "cayley"): [0.86, 0.862, 0.864],
                             ("resnet", "cayley"): [0.86, 0.861, 0.862]})).set_index("claim").loc["P2"]
    assert settled["verdict"] == REPRODUCED and "settled: the same verdict one epoch earlier" in settled["numbers"]


def test_a_collapse_in_the_last_epoch_stays_a_finding():
    tables = _runs({("fold", "cayley"): [(0.86, 0.50), (0.86, 0.50)], ("resnet", "cayley"): [0.86, 0.86]})
    p2 = ledger(*tables).set_index("claim").loc["P2"]
    assert p2["verdict"] == NOT_REPRODUCED and "not stable" in p2["numbers"]


def test_previous_epoch_drops_each_runs_last_epoch():
    metrics = pd.DataFrame([{"experiment": "e", "run": r, "epoch": ep, "value": ep}
                            for r, last in (("a", 2), ("b", 3), ("c", 0)) for ep in range(last + 1)])
    kept = previous_epoch(metrics).groupby("run")["epoch"].max().to_dict()
    assert kept == {"a": 1, "b": 2, "c": 0}


def test_a_page_shows_the_screens_whose_choice_its_experiments_train():
    from orthojac.report import page_experiments

    experiments = page_experiments(_cpu(), "paper")
    assert {"screen_fold", "screen_orthoff_abs", "depth200_fold", "control200"} <= set(experiments)
    assert experiments.index("screen_fold") < experiments.index("depth200_fold")  # config order
