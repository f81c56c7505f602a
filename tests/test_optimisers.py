"""orthojac.run.optimisers: torch's optimisers to the bit, without the import of torch._dynamo."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import REPO
from orthojac.run import optimisers

# name: torch's class, orthojac's constructor, the settings both take
KINDS = {
    "adam, fused": (torch.optim.Adam, optimisers.adam, {"lr": 1e-2, "fused": True}),
    "adam, foreach": (torch.optim.Adam, optimisers.adam, {"lr": 1e-2, "fused": None}),
    "sgd, fused": (torch.optim.SGD, optimisers.sgd, {"lr": 0.1, "fused": True}),
    "sgd, momentum, fused": (torch.optim.SGD, optimisers.sgd, {"lr": 0.05, "momentum": 0.9, "fused": True}),
    "rmsprop": (torch.optim.RMSprop, optimisers.rmsprop, {"lr": 1e-3}),
}


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 4))


def _steps(net, opt, first: int, last: int) -> None:
    for step in range(first, last):
        gen = torch.Generator().manual_seed(step)
        x, y = torch.randn(32, 12, generator=gen), torch.randint(0, 4, (32,), generator=gen)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()


def _same_state(a: dict, b: dict) -> bool:
    if a["param_groups"] != b["param_groups"] or a["state"].keys() != b["state"].keys():
        return False
    return all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
               for x, y in zip(a["state"].values(), b["state"].values()))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_same_bits_and_state_as_torchs_optimiser(kind):
    torch_class, make, settings = KINDS[kind]
    theirs, ours = _net(), _net()
    torch_opt, our_opt = torch_class(theirs.parameters(), **settings), make(ours.parameters(), **settings)
    assert isinstance(our_opt, torch_class) and type(our_opt) is not torch_class
    _steps(theirs, torch_opt, 0, 4)
    _steps(ours, our_opt, 0, 4)
    assert all(torch.equal(a, b) for a, b in zip(theirs.parameters(), ours.parameters()))
    assert _same_state(torch_opt.state_dict(), our_opt.state_dict())
    # A step that moved nothing would pass the above too: the weights did move.
    assert not torch.equal(_net()[0].weight, ours[0].weight)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("resumed_by", ["torch", "orthojac"])
def test_a_checkpoint_of_either_resumes_in_the_other_to_the_same_bits(kind, resumed_by):
    torch_class, make, settings = KINDS[kind]
    straight = _net()
    _steps(straight, make(straight.parameters(), **settings), 0, 5)
    first = _net()
    writer = (make if resumed_by == "torch" else torch_class)(first.parameters(), **settings)
    _steps(first, writer, 0, 2)
    second = _net()
    second.load_state_dict(first.state_dict())
    reader = (torch_class if resumed_by == "torch" else make)(second.parameters(), **settings)
    reader.load_state_dict(writer.state_dict())
    _steps(second, reader, 2, 5)
    assert all(torch.equal(a, b) for a, b in zip(straight.parameters(), second.parameters()))


def test_found_inf_skips_the_step_as_torchs_fused_adam_does():
    """DivergenceGuard hands the fused Adam a `found_inf` flag; a flagged step moves nothing."""
    nets, opts = [], []
    for make in (lambda p: torch.optim.Adam(p, lr=1e-2, fused=True), lambda p: optimisers.adam(p, lr=1e-2)):
        net = _net()
        opt = make(net.parameters())
        _steps(net, opt, 0, 2)
        opt.found_inf = torch.ones(())
        before = [p.detach().clone() for p in net.parameters()]
        _steps(net, opt, 2, 3)
        assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
        nets.append(net)
        opts.append(opt)
    assert _same_state(opts[0].state_dict(), opts[1].state_dict())


def test_no_job_imports_torch_dynamo(idx_folder, tmp_path):
    """A fresh interpreter trains the paper's network (a run, then its optimiser's state saved and
    loaded), the thesis' RNN (H1's `fit`) and every thesis optimiser by name, and never imports
    torch._dynamo; torch's own Adam, built afterwards in the same interpreter, does (the check can
    fail)."""
    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        import torch
        from orthojac.data import load_images
        from orthojac.run import fastpath, train
        from orthojac.config import RunConfig
        from orthojac.thesis import dense, rnn
        seen = {{}}
        cfg = RunConfig(dataset="fixture", family="fold", depth=2, width=16, arch="dense", bias_init=-0.5,
                        lr=0.01, epochs=1, val_size=100, train_size=100, test_size=50, batch_size=20)
        train.train(cfg, Path({str(idx_folder)!r}), Path({str(tmp_path / "run")!r}), torch.device("cpu"), 0)
        opt = fastpath.make_optimiser([torch.zeros(3, requires_grad=True)], 0.1, fastpath.FastPath())
        opt.load_state_dict(opt.state_dict())
        seen["paper"] = "torch._dynamo" in sys.modules
        data = load_images(Path({str(idx_folder)!r}), 100, 100, 100)
        run = {{"configuration": "Orthogonal_GainA_RegB", "label": "x", "variant": "eq11", "gain": 1.1,
               "lam": 0.01}}
        rnn.train_one(run, data, 0, 1, 8, 50, 1e-3)
        for name, make in dense.OPTIMIZERS.items():
            w = torch.ones(3, requires_grad=True)
            o = make([w], 0.1)
            (w ** 2).sum().backward()
            o.step()
            o.zero_grad()
        seen["thesis"] = "torch._dynamo" in sys.modules
        torch.optim.Adam([torch.zeros(3, requires_grad=True)], lr=0.1)
        seen["torch's Adam"] = "torch._dynamo" in sys.modules
        print(json.dumps(seen))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"paper": False, "thesis": False, "torch's Adam": True}


def test_an_optimiser_pickles_and_one_whose_step_torch_runs_without_gradients_works():
    """Found by a review: the classes are found by name (pickle), and an optimiser without a
    `differentiable` default (LBFGS: torch's step under no_grad) steps as torch's."""
    import pickle
    net = _net()
    opt = optimisers.adam(net.parameters(), lr=1e-2)
    _steps(net, opt, 0, 1)
    assert _same_state(pickle.loads(pickle.dumps(opt)).state_dict(), opt.state_dict())
    weights = {}
    for name, cls in (("torch", torch.optim.LBFGS), ("orthojac", optimisers.eager(torch.optim.LBFGS))):
        w = torch.tensor([1.5, -0.5], requires_grad=True)
        opt = cls([w], lr=0.5)

        def closure():
            opt.zero_grad()
            loss = ((w - 3) ** 4).sum()
            loss.backward()
            return loss
        for _ in range(3):
            opt.step(closure)
        weights[name] = w.detach()
    assert torch.equal(weights["torch"], weights["orthojac"]) and not torch.equal(weights["torch"], torch.tensor([1.5, -0.5]))
