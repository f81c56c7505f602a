"""H1 (orthojac.thesis.rnn): configurations, regulariser forms, the per-epoch record, the report page."""

import base64

import pandas as pd
import pytest
import torch

from orthojac.data import load_images
from orthojac.thesis import rnn
from orthojac.nets.regularisers import dense_defect, listing_defect
from orthojac.report.check import PNG_SIGNATURE, parse_page

torch.set_num_threads(1)


@pytest.mark.parametrize("configuration, gain", [("Orthogonal_NoReg", 1.0), ("Orthogonal_GainA_NoReg", 1.1),
                                                 ("Orthogonal_GainA_adj_RegB", 1.1)])
def test_orthogonal_configurations_start_at_their_gain(configuration, gain):
    sv = torch.linalg.svdvals(rnn.build(configuration, 1.1, 16, seed=0).recurrent.detach().double())
    assert torch.allclose(sv, torch.full_like(sv, gain), atol=1e-5)


def test_glorot_spectrum_is_wide():
    sv = torch.linalg.svdvals(rnn.build("NoOrthogonal", 1.1, 64, seed=0).recurrent.detach())
    assert sv.max() - sv.min() > 1.0


def test_penalty_forms_and_adjustment():
    model = rnn.build("Orthogonal_GainA_adj_RegB", 1.1, 8, seed=0)
    w = model.recurrent
    base = {"gain": 1.1, "lam": 0.5}
    adj_eq11 = rnn.penalty(model, base | {"configuration": "Orthogonal_GainA_adj_RegB", "variant": "eq11"})
    unadj_eq11 = rnn.penalty(model, base | {"configuration": "Orthogonal_GainA_RegB", "variant": "eq11"})
    adj_listing = rnn.penalty(model, base | {"configuration": "Orthogonal_GainA_adj_RegB", "variant": "listing"})
    assert adj_eq11.item() == pytest.approx(0.0, abs=1e-8)  # W = g·Q: WWᵀ/g² = I
    assert unadj_eq11.item() == pytest.approx(0.5 * dense_defect(w, 1.0).item())
    assert unadj_eq11.item() == pytest.approx(0.5 * 8 * (1.1 ** 2 - 1) ** 2, rel=1e-4)
    # The listing subtracts the all-ones matrix: on g·Q it is (n − 1)/n, not 0.
    assert adj_listing.item() == pytest.approx(0.5 * listing_defect(w, 1.1).item())
    assert adj_listing.item() == pytest.approx(0.5 * 7 / 8, rel=1e-4)
    assert rnn.penalty(model, base | {"configuration": "Orthogonal_GainA_NoReg", "variant": "none"}) is None


def test_runs_label_a_and_b_and_train_unregularised_once():
    runs = rnn.runs(1.1, [0.001, 0.01], ["eq11", "listing"])
    assert len(runs) == 3 + 2 * 2 * 2
    labels = {(r["label"], r["variant"]) for r in runs}
    assert ("Orthogonal_Gain1.1_adj_Reg0.001", "listing") in labels
    assert ("NoOrthogonal", "none") in labels
    assert {r["configuration"] for r in runs} == set(rnn.CONFIGURATIONS)


def test_train_writes_the_per_epoch_record(idx_folder, tmp_path):
    folder = idx_folder
    out = tmp_path / "seed=0.csv"
    rnn.main(["train", "--data", str(folder), "--epochs", "2", "--hidden", "16", "--batch-size", "50",
               "--train-size", "300", "--val-size", "100", "--lambdas", "0.01", "--variants", "eq11",
               "--lr", "0.01", "--threads", "1", "--out", str(out)])
    table = pd.read_csv(out)
    assert list(table.columns) == rnn.COLUMNS
    assert table["label"].nunique() == 5 and set(table["train_size"]) == {300}
    sv = table[table["metric"].isin(["sv_mean", "sv_std", "sv_min", "sv_max"])]
    assert sorted(sv["epoch"].unique()) == [0, 1, 2]
    val = table[table["metric"] == "val_accuracy"].pivot_table(index="label", columns="epoch", values="value")
    assert (val[2] > 0.3).all()  # the fixture's classes are one bright row each: easy for an RNN
    init = table[(table["epoch"] == 0) & (table["label"] == "Orthogonal_Gain1.1_NoReg")]
    assert init.set_index("metric").loc["sv_max", "value"] == pytest.approx(1.1, abs=1e-5)
    combined = tmp_path / "h1.csv"
    rnn.main(["collect", str(out), str(out), "--out", str(combined)])
    assert len(pd.read_csv(combined)) == 2 * len(table)


def test_divergence_is_recorded_not_raised(idx_folder):
    folder = idx_folder
    data = load_images(folder, 100, 100, 100)
    run = {"configuration": "Orthogonal_GainA_adj_RegB", "label": "x", "variant": "eq11", "gain": 1.1,
           "lam": float("inf")}
    rows = pd.DataFrame(rnn.train_one(run, data, 0, 2, 8, 50, 1e-3))
    assert rows[rows["metric"] == "diverged"]["value"].tolist() == [1.0]


def test_bad_arguments_name_the_flag(idx_folder, tmp_path):
    folder = idx_folder
    with pytest.raises(SystemExit, match="--lambdas"):
        rnn.main(["train", "--data", str(folder), "--lambdas", "0", "--out", str(tmp_path / "x.csv")])
    with pytest.raises(ValueError, match="--val-size"):
        load_images(folder, 0, 10_000, 0)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit, match="bad.csv"):
        rnn.main(["collect", str(bad), "--out", str(tmp_path / "y.csv")])


def test_hlav_section_page_shows_h1_figures_and_verdicts(tiny_pipeline):
    page = parse_page(tiny_pipeline / "results/report/hlav.html")
    # each claim's part opens with the figure that decides it (H-C1…H-C5: one each), then the
    # sections' six: H1's two, H3's, H5's, and H2's two saying its data was unavailable
    assert page.claim_images == {claim: 1 for claim in ("H-C1", "H-C2", "H-C3", "H-C4", "H-C5")}
    assert len(page.images) == 5 + 6
    for src in page.images:
        assert base64.b64decode(src.partition(",")[2]).startswith(PNG_SIGNATURE)
    text = (tiny_pipeline / "results/report/hlav.html").read_text()
    assert "Orthogonal_Gain1.1_adj_Reg0.01" in text and "the claim is about MNIST" in text  # H1 ran on generated data
    ledger = pd.read_csv(tiny_pipeline / "results/report/ledger.csv").set_index("claim")
    assert ledger.loc["H-C1", "numbers"].startswith("validation curve averaged over epochs")


def test_the_thesis_accuracy_builds_no_autograd_graph():
    """thesis.common.accuracy evaluates under torch.no_grad (every epoch of H1 and H2 calls it on
    whole splits: a graph there costs memory and time, and changes no number)."""
    import torch
    from torch import nn

    from orthojac.thesis.common import accuracy

    seen = []

    class Probe(nn.Linear):
        def forward(self, x):
            seen.append(torch.is_grad_enabled())
            return super().forward(x)

    assert accuracy(Probe(3, 2), torch.randn(5, 3), torch.zeros(5, dtype=torch.long), batch=2) >= 0
    assert seen == [False, False, False]


def _train_rnn(run: dict, hand_written: bool) -> tuple:
    """Three Adam steps of a hidden-12 H1 RNN on the run's objective (its penalty included), then
    the accuracy: (losses, parameters, accuracy, the nodes behind the last output)."""
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(96, 28, 28, generator=gen), torch.randint(0, 10, (96,), generator=gen)
    model = rnn.build(run["configuration"], run["gain"], 12, seed=0)
    model.fused = hand_written
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)
    losses = []
    for step in range(3):
        out = model(x[step * 32:(step + 1) * 32])
        loss = torch.nn.functional.cross_entropy(out, y[step * 32:(step + 1) * 32])
        reg = rnn.penalty(model, run)
        losses.append(loss.item())
        opt.zero_grad()
        (loss if reg is None else loss + reg).backward()
        opt.step()
    nodes = {type(n).__name__ for n, _ in out.grad_fn.next_functions if n is not None}
    return (losses, {k: v.detach().clone() for k, v in model.state_dict().items()},
            rnn.accuracy(model.eval(), x, y, batch=40), nodes)


@pytest.mark.parametrize("run", rnn.runs(1.1, [0.5], ["eq11", "listing"]), ids=lambda r: f"{r['label']}-{r['variant']}")
def test_the_rnn_in_one_node_trains_to_the_bits_of_nn_rnn(run):
    """H1's RNN as one hand-written node (fused.TanhRNN) gives the losses, weights and accuracy of
    `nn.RNN` under autograd to the bit, the recurrent kernel's penalty included (its gradient and the
    steps' reach W in autograd's order: λ = 0.5 makes the penalty's part large)."""
    node = _train_rnn(run, True)
    module = _train_rnn(run, False)
    assert "TanhRNNBackward" in node[3] and "TanhRNNBackward" not in module[3]
    assert node[0] == module[0] and len(set(node[0])) == 3, (node[0], module[0])
    changed = [k for k in node[1] if not torch.equal(node[1][k], module[1][k])]
    assert not changed, changed
    assert node[2] == module[2]


def test_the_rnn_node_passes_gradcheck_and_is_left_for_hooks():
    from orthojac.nets import fused

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, dtype=torch.float64, generator=gen).requires_grad_(False)
    params = [torch.randn(shape, dtype=torch.float64, generator=gen).mul_(0.5).requires_grad_(True)
              for shape in [(6, 5), (6, 6), (6,), (6,)]]
    assert torch.autograd.gradcheck(lambda *p: fused.TanhRNN.apply(x, *p, *[p[1]] * 3), tuple(params))
    (dw_ih,) = torch.autograd.grad(fused.TanhRNN.apply(x, *params, *[params[1]] * 3).pow(2).sum(), params[0],
                                   create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):  # differentiable once, not wrongly twice
        dw_ih.sum().backward()
    model = rnn.build("NoOrthogonal", 1.0, 6, seed=0)
    model.rnn.register_forward_hook(lambda *a: None)
    out = model(torch.rand(2, 28, 28))
    assert "TanhRNNBackward" not in {type(n).__name__ for n, _ in out.grad_fn.next_functions if n is not None}
