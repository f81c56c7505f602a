"""H3 and H5 (orthojac.thesis.dense, linear, deep): initialisations, linearity, time to
accuracy, divergence, the train/collect entry points, the figures and the planned jobs."""

import math
import re

import pandas as pd
import pytest
import torch

from conftest import REPO
from orthojac.data import load_images
from orthojac.thesis import deep, dense, figures, linear
from orthojac.report.check import PNG_SIGNATURE

torch.set_num_threads(1)


@pytest.mark.parametrize("sigma_w2", [1.0, 1.05, 2.0])
def test_orthogonal_weights_have_w_wt_equal_sigma_w2_identity(sigma_w2):
    model = dense.build(3, 32, "tanh", "orthogonal", sigma_w2, seed=0)
    for layer in model.hidden:  # the first is 32 × 784: orthonormal rows, also W Wᵀ = σ_w² I
        w = layer.weight.detach().double()
        assert torch.allclose(w @ w.T, sigma_w2 * torch.eye(32, dtype=torch.float64), atol=1e-5)
        assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("sigma_w2", [1.0, 2.0])
def test_gaussian_weights_have_variance_sigma_w2_over_fan_in(sigma_w2):
    model = dense.build(2, 256, "relu", "gaussian", sigma_w2, seed=0)
    for layer in model.hidden:
        w = layer.weight.detach().double()
        fan_in = w.shape[1]
        assert w.mean().item() == pytest.approx(0.0, abs=0.01 * math.sqrt(sigma_w2 / fan_in))
        assert w.var().item() == pytest.approx(sigma_w2 / fan_in, rel=0.03)


def test_deep_linear_network_is_linear_and_tanh_is_not():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(4, 28, 28, generator=gen), torch.rand(4, 28, 28, generator=gen)
    a, b = 0.7, -1.3
    for weights in dense.WEIGHTS:
        f = dense.build(16, 32, "linear", weights, 1.0, seed=0).double()
        lhs, rhs = f(a * x.double() + b * y.double()), a * f(x.double()) + b * f(y.double())
        assert torch.allclose(lhs, rhs, atol=1e-10)
    g = dense.build(4, 32, "tanh", "orthogonal", 2.0, seed=0).double()
    assert not torch.allclose(g(a * x.double() + b * y.double()), a * g(x.double()) + b * g(y.double()), atol=1e-3)


def _curve(accuracies, diverged_at=None, every=10):
    rows = [{"step": i * every, "metric": "val_accuracy", "value": v} for i, v in enumerate(accuracies)]
    if diverged_at is not None:
        rows.append({"step": diverged_at, "metric": "diverged", "value": float(diverged_at)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("accuracies, diverged_at, expected", [
    ([0.1, 0.5, 0.79, 0.81, 0.9], None, ("reached", 30.0)),
    ([0.1, 0.5, 0.8], None, ("reached", 20.0)),  # ≥ target counts
    ([0.1, 0.5, 0.79], None, ("not reached", math.nan)),
    ([0.1, 0.5], 13, ("diverged", 13.0)),
    ([0.1, 0.85], 13, ("reached", 10.0)),  # reached before diverging
])
def test_time_to_accuracy(accuracies, diverged_at, expected):
    status, step = linear.time_to_accuracy(_curve(accuracies, diverged_at), 0.8)
    assert status == expected[0]
    assert (math.isnan(step) and math.isnan(expected[1])) or step == expected[1]


def test_learning_rate_scales_with_inverse_depth():
    assert linear.learning_rate(0.3, 30, "inverse_depth") == pytest.approx(0.01)
    assert linear.learning_rate(0.3, 30, "constant") == 0.3
    with pytest.raises(ValueError, match="sqrt"):
        linear.learning_rate(0.3, 30, "sqrt")


def test_divergence_is_recorded_not_raised(idx_folder):
    data = load_images(idx_folder, 200, 100, 1)
    model = dense.build(8, 16, "linear", "gaussian", 1.0, seed=0)
    rows = pd.DataFrame(dense.train_curve(model, data, "sgd", 1e6, 2, 50, 2, seed=0))
    diverged = rows[rows["metric"] == "diverged"]
    assert len(diverged) == 1 and rows["step"].max() == diverged["step"].iloc[0] <= 8


def test_parse_network_names_the_bad_value():
    assert deep.parse_network("tanh:1.05") == ("tanh", 1.05)
    for bad in ("tanh", "sigmoid:2", "relu:-1", "relu:x"):
        with pytest.raises(ValueError, match=bad):
            deep.parse_network(bad)


def test_linear_train_collect_and_figure_end_to_end(idx_folder, tmp_path):
    out = tmp_path / "seed=0.csv"
    linear.main(["train", "--data", str(idx_folder), "--depths", "1", "4", "--width", "16", "--epochs", "3",
                      "--batch-size", "50", "--train-size", "300", "--val-size", "100", "--lr", "0.5",
                      "--target", "0.5", "--eval-every", "2", "--threads", "1", "--device", "cpu", "--out", str(out)])
    table = pd.read_csv(out)
    assert list(table.columns) == linear.COLUMNS
    times = table[table["metric"] == "steps_to_target"].set_index(["weights", "depth"])
    assert len(times) == 4
    # the fixture's classes are one bright row each: an orthogonal linear network learns it quickly
    assert times.loc[("orthogonal", 1), "value"] <= 18
    lrs = table.groupby("depth")["lr"].first()
    assert lrs[4] == pytest.approx(lrs[1] / 4)
    combined = tmp_path / "hlav_linear.csv"
    linear.main(["collect", str(out), str(out), "--out", str(combined)])
    assert len(pd.read_csv(combined)) == 2 * len(table)
    png = tmp_path / "hlav_linear.png"
    figures.main(["hlav_linear", "--table", str(combined), "--out-dir", str(tmp_path)])
    assert png.read_bytes().startswith(PNG_SIGNATURE)


def test_deep_train_and_figure_end_to_end(idx_folder, tmp_path):
    out = tmp_path / "seed=0.csv"
    deep.main(["train", "--data", str(idx_folder), "--networks", "tanh:1.05", "relu:2", "--depth", "4",
                    "--width", "16", "--epochs", "2", "--batch-size", "50", "--train-size", "200", "--val-size",
                    "100", "--test-size", "100", "--optimizer", "momentum", "--lr", "0.05", "--threads", "1",
                    "--device", "cpu", "--out", str(out)])
    table = pd.read_csv(out)
    assert list(table.columns) == deep.COLUMNS
    test = table[table["metric"] == "test_accuracy"]
    assert sorted(test["epoch"].unique()) == [0.0, 1.0, 2.0]
    assert set(zip(test["network"], test["weights"])) == {(n, w) for n in ("tanh:1.05", "relu:2")
                                                         for w in ("orthogonal", "gaussian")}
    assert {"train_loss", "val_accuracy", "val_loss", "test_loss"} <= set(table["metric"])
    png = tmp_path / "hlav_deep.png"
    figures.main(["hlav_deep", "--table", str(out), "--out-dir", str(tmp_path)])
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(SystemExit, match="--networks"):
        deep.main(["train", "--data", str(idx_folder), "--networks", "tanh", "--out", str(tmp_path / "x.csv")])


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/quick.yaml", "config/verify.yaml"])
def test_every_config_plans_one_h3_and_one_h5_job_per_seed(configfile, plan):
    import yaml

    config = yaml.safe_load((REPO / configfile).read_text())
    out = plan(configfile)
    for section, folder in (("hlav_linear", "linear"), ("hlav_deep", "deep")):
        seeds = set(re.findall(rf"output: results/hlav/{folder}/seed=(\d+)\.csv", out))
        assert seeds == {str(s) for s in config[section]["seeds"]["grid"]}, section
        assert f"output: results/tables/{section}.csv" in out and f"output: results/figures/{section}.png" in out


def test_hlav_page_shows_h3_and_h5_with_verdict_and_summary(tiny_pipeline):
    html = (tiny_pipeline / "results/report/hlav.html").read_text()
    assert "H3: deep linear networks" in html and "H5: deep tanh and ReLU networks" in html
    assert "CIFAR-10" in html and "trains H3 on <code>fixture</code>" in html
    assert "<strong>Summary:</strong> orthogonal ends with a higher test accuracy than Gaussian for" in html
    ledger = pd.read_csv(tiny_pipeline / "results/report/ledger.csv").set_index("claim")
    assert ledger.loc["H-C5", "numbers"].startswith("median steps to val accuracy 0.5 (seeds reaching it): ")
    assert "orthogonal L=1: 2 (1/1 reached)" in ledger.loc["H-C5", "numbers"]
    assert ledger.loc["H-C5", "verdict"] == "inconclusive"  # two depths: too few
    provenance = pd.read_csv(tiny_pipeline / "results/report/hlav.provenance.csv")
    assert {"hlav_linear", "hlav_deep"} <= set(provenance["experiment"])
    assert len(pd.read_csv(tiny_pipeline / "results/tables/hlav_deep.csv")) > 0


def test_each_seed_trains_on_its_own_batch_order(monkeypatch):
    """H3/H5: the mini-batch order comes from the run's seed (H-C5's median is over seeds that
    differ in data order as well as initialisation); the same seed gives the same order."""
    seen = []
    real = dense.batches

    def spy(n, batch_size, order):
        for idx in real(n, batch_size, order):
            seen[-1].append(idx.clone())
            yield idx
    monkeypatch.setattr(dense, "batches", spy)
    gen = torch.Generator().manual_seed(0)
    data = {"train": (torch.rand(64, 28, 28, generator=gen), torch.randint(0, 10, (64,), generator=gen)),
            "val": (torch.rand(8, 28, 28, generator=gen), torch.randint(0, 10, (8,), generator=gen))}
    for seed in (0, 0, 1):
        seen.append([])
        dense.train_curve(dense.build(2, 8, "linear", "orthogonal", 1.0, seed=0), data, "sgd", 0.01, epochs=2,
                          batch_size=16, eval_every=0, seed=seed)
    same, other = (torch.cat(s) for s in seen[:2]), torch.cat(seen[2])
    first, again = same
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert sorted(first[:64].tolist()) == sorted(other[:64].tolist()) == list(range(64))  # permutations
    assert not torch.equal(first[:64], first[64:])  # and a new one each epoch


def _train_dense_net(activation: str, optimizer: str, hand_written: bool, monkeypatch) -> tuple:
    """Three steps of a depth-5, width-24 DenseNet, then an evaluation: (losses, parameters,
    (accuracy, loss)), its hidden layers 2 … 5 through fused.run_body or the modules."""
    from orthojac.nets import fused

    taken = []
    monkeypatch.setattr(fused, "run_body", lambda *a, _body=fused.run_body: taken.append(1) or _body(*a))
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(192, 1, 28, 28, generator=gen), torch.randint(0, 10, (192,), generator=gen)
    model = dense.build(5, 24, activation, "orthogonal", 2.0 if activation == "relu" else 1.05, seed=0)
    model.fused = hand_written
    opt = dense.OPTIMIZERS[optimizer](model.parameters(), 1e-2)
    losses = []
    for step in range(3):
        loss = torch.nn.functional.cross_entropy(model(x[step * 64:(step + 1) * 64]), y[step * 64:(step + 1) * 64])
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    evaluation = dense.accuracy_and_loss(model.eval(), x, y, batch=50)
    assert len(taken) == (3 + 4 if hand_written else 0)  # 3 steps, 4 chunks evaluated
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}, evaluation


@pytest.mark.parametrize("activation, optimizer", [("tanh", "momentum"), ("relu", "adam"), ("linear", "sgd")])
def test_hidden_layers_in_one_node_train_to_the_bits_of_the_modules(activation, optimizer, monkeypatch):
    """H3/H5's DenseNet on a CPU runs hidden layers 2 … L as one hand-written node
    (fused.Affine, AffineTanh, AffineReLU): the same losses, weights and evaluation, to the bit,
    as the modules one by one under autograd."""
    node = _train_dense_net(activation, optimizer, True, monkeypatch)
    modules = _train_dense_net(activation, optimizer, False, monkeypatch)
    assert node[0] == modules[0] and len(set(node[0])) == 3, (node[0], modules[0])
    changed = [k for k in node[1] if not torch.equal(node[1][k], modules[1][k])]
    assert not changed, changed
    assert node[2] == modules[2]


def test_hidden_layer_node_passes_gradcheck_and_is_left_for_hooks_and_spectra():
    from orthojac.nets import fused

    for kernel in (fused.Affine, fused.AffineTanh, fused.AffineReLU):
        gen = torch.Generator().manual_seed(0)
        params = [torch.randn(shape, dtype=torch.float64, generator=gen).requires_grad_(True)
                  for shape in [(5, 4), (5,), (3, 5), (3,)]]
        x = torch.randn(6, 4, dtype=torch.float64, generator=gen).requires_grad_(True)
        assert torch.autograd.gradcheck(lambda x, *p: fused.DenseBody.apply(kernel, 2, x, *p), (x, *params))
    model = dense.build(3, 8, "tanh", "gaussian", 1.0, seed=0)
    x = torch.rand(4, 784)
    assert "DenseBodyBackward" in _graph(model(x))
    hook = model.hidden[2].register_forward_hook(lambda *a: None)  # a hooked layer: the modules, one by one
    assert "DenseBodyBackward" not in _graph(model(x)) and _graph(model(x)).count("TanhBackward0") == 3
    hook.remove()
    model.eval()  # eval mode with gradients (a Jacobian, as for spectra): the modules
    assert "DenseBodyBackward" not in _graph(model(x))
    model.train()
    model.fused = False
    assert "DenseBodyBackward" not in _graph(model(x))


def _graph(out: torch.Tensor) -> list[str]:
    """The names of the autograd nodes behind `out`."""
    names, todo = [], [out.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None:
            names.append(type(node).__name__)
            todo += [n for n, _ in node.next_functions]
    return names
