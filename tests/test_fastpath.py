"""The training fast path (issue 7) on CPU: each lever's defaults and flags, the numerics of bf16
autocast against fp32, compile and channels-last against eager, a short fast-path training run
against the fp32 one, and K packed networks against K separate ones.

No GPU here: CUDA-only behaviour (TF32, CUDA graphs, the speed) is measured by
benchmarks/train_throughput.py on a GPU, not in tests.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from orthojac.run import fastpath, train
from orthojac.config import RunConfig
from orthojac.data import Expected, fetch
from orthojac.run.fastpath import FastPath, PackedModels
from orthojac.nets.models import build_model

from conftest import REPO, make_idx_dataset


def _benchmark(name: str):
    """benchmarks/NAME.py as a module (the folder is not a package)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


SMALL = RunConfig(family="fold", depth=3, channels=4, bias_init=-0.5)


def resolve(flags: list[str], device: str) -> FastPath:
    parser = argparse.ArgumentParser()
    fastpath.add_arguments(parser)
    return fastpath.resolve(parser.parse_args(flags), torch.device(device))


def test_levers_default_on_for_cuda_off_for_cpu_but_the_fused_adam_and_each_flag_turns_one_off():
    assert resolve([], "cpu") == FastPath() == FastPath("fp32", False, False, False, True)
    assert resolve(["--no-fused-adam"], "cpu") == FastPath(fused_adam=False)
    assert resolve([], "cuda") == FastPath("bf16", True, True, True, True, fused_layers=False)
    assert resolve(["--precision", "tf32", "--no-compile", "--no-cuda-graphs"], "cuda") == \
        FastPath("tf32", True, False, False, True, fused_layers=True)
    assert resolve(["--no-channels-last", "--no-fused-adam"], "cuda") == \
        FastPath("bf16", False, True, True, False, fused_layers=False)
    assert resolve(["--no-fused-layers"], "cpu") == FastPath(fused_layers=False)
    assert resolve(["--compile"], "cpu") == FastPath(compile=True, fused_layers=False)
    with pytest.raises(ValueError, match="--cuda-graphs needs --compile"):
        resolve(["--cuda-graphs"], "cpu")
    with pytest.raises(ValueError, match="--cuda-graphs needs --compile"):
        resolve(["--no-compile"], "cuda")


def test_regime_hard_runs_without_cuda_graphs_and_says_so():
    """torch's orthogonal parametrisation (matrix_exp) syncs with the host on CUDA: no CUDA graphs
    for regime hard, by default, and a clear error when they are asked for."""
    hard = resolve_for([], "cuda", "hard")
    assert hard.compile and not hard.cuda_graphs and "matrix_exp" in hard.note
    assert hard.to_dict()["note"] == hard.note
    assert resolve_for([], "cuda", "soft").cuda_graphs and not resolve_for([], "cuda", "soft").note
    assert resolve_for([], "cpu", "hard") == FastPath()
    with pytest.raises(ValueError, match="regime hard: CUDA graphs off"):
        resolve_for(["--cuda-graphs"], "cuda", "hard")


def test_train_resolves_the_levers_for_the_runs_regime(monkeypatch, idx_dir, tmp_path):
    seen = []
    original = fastpath.resolve

    def spy(args, device, regime=None):
        seen.append(regime)
        return original(args, device, regime)

    monkeypatch.setattr(fastpath, "resolve", spy)
    train.main(["--dataset=fixture", "--arch=dense", "--family=fold", "--depth=1", "--width=8",
                "--regime=hard", "--epochs=0", "--val-size=100", "--device=cpu",
                f"--data-dir={idx_dir}", f"--out-dir={tmp_path / 'run'}"])
    assert seen == ["hard"]


def resolve_for(flags: list[str], device: str, regime: str) -> FastPath:
    parser = argparse.ArgumentParser()
    fastpath.add_arguments(parser)
    return fastpath.resolve(parser.parse_args(flags), torch.device(device), regime)


def test_environment_variable_sets_the_levers_defaults_and_flags_win(monkeypatch):
    monkeypatch.setenv("ORTHOJAC_FAST_PATH", "--no-compile --no-cuda-graphs --precision fp32")
    assert resolve([], "cuda") == FastPath("fp32", True, False, False, True)
    assert resolve(["--precision", "tf32"], "cuda").precision == "tf32"
    monkeypatch.setenv("ORTHOJAC_FAST_PATH", "--no-compile --epochs 3")
    with pytest.raises(ValueError, match="ORTHOJAC_FAST_PATH.*not a fast-path flag: --epochs 3"):
        resolve([], "cuda")
    monkeypatch.setenv("ORTHOJAC_FAST_PATH", "--precision fp64")
    with pytest.raises(ValueError, match="ORTHOJAC_FAST_PATH.*fp64"):
        resolve([], "cuda")


@pytest.mark.skipif(fastpath.tf32_api() != "fp32_precision", reason="torch < 2.9: legacy flags only")
def test_tf32_is_set_through_fp32_precision_only_and_only_when_asked_for():
    """torch ≥ 2.9: the fp32_precision settings (which inductor reads), never the legacy flags
    (torch raises when it finds the two mixed; reading a legacy flag would count as mixing)."""
    b = torch.backends
    for fast, mode in ((FastPath("tf32"), "tf32"), (FastPath("bf16"), "ieee"), (FastPath(), "ieee")):
        fastpath.set_backends(fast)
        assert (b.cuda.matmul.fp32_precision, b.cudnn.fp32_precision, b.cudnn.conv.fp32_precision,
                b.cudnn.rnn.fp32_precision) == (mode,) * 4
        assert fast.to_dict()["tf32_api"] == "fp32_precision"


def test_tf32_legacy_flags_where_torch_has_no_fp32_precision(venv_env):
    """torch < 2.9 (simulated in a fresh interpreter, where no new-API setting was made): the
    legacy allow_tf32 flags alone."""
    code = ("import torch; from orthojac.run import fastpath; from orthojac.run.fastpath import FastPath\n"
            "fastpath.tf32_api = lambda: 'allow_tf32'\n"
            "fastpath.set_backends(FastPath('tf32'))\n"
            "assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32\n"
            "fastpath.set_backends(FastPath('bf16'))\n"
            "assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32\n"
            "assert FastPath().to_dict()['tf32_api'] == 'allow_tf32'\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=venv_env)


def forward_backward(cfg: RunConfig, fast: FastPath, compiled: bool = False):
    """Logits and parameter gradients of cfg's network on a fixed batch under `fast`."""
    torch.manual_seed(1)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    model = build_model(cfg)
    forward = fastpath.prepare_model(model, fast)
    with fastpath.autocast(fast, x.device):
        logits = forward(fastpath.to_layout(x, fast, model)).float()
    F.cross_entropy(logits, y).backward()
    return logits.detach(), {n: p.grad for n, p in model.named_parameters()}


def relative_errors(a, b) -> tuple[float, float]:
    """(max |Δlogits| / max |logits|, max over parameters of ‖Δgrad‖ / ‖grad‖)."""
    (logits_a, grads_a), (logits_b, grads_b) = a, b
    out = ((logits_a - logits_b).abs().max() / logits_b.abs().max()).item()
    grad = max(((grads_a[n] - grads_b[n]).norm() / grads_b[n].norm()).item() for n in grads_b)
    return out, grad


@pytest.mark.parametrize("family", ["fold", "orthoff", "plain"])
def test_bf16_autocast_stays_within_tolerance_of_fp32(family):
    """bf16 keeps 8 significant bits (relative rounding 2^-9 ≈ 0.2 %); through 3 layers the
    logits stay within 2 % of their scale and every gradient within 10 % in norm (measured on
    fold: 0.5 % and 4 %). A channels-last fp32 pass differs from NCHW by rounding only."""
    activation = "abs" if family == "orthoff" else "relu"
    cfg = RunConfig(family=family, activation=activation, depth=3, channels=4, bias_init=-0.5)
    reference = forward_backward(cfg, FastPath())
    logits_err, grad_err = relative_errors(forward_backward(cfg, FastPath("bf16", True)), reference)
    assert 0 < logits_err < 0.02 and 0 < grad_err < 0.1
    logits_err, grad_err = relative_errors(forward_backward(cfg, FastPath(channels_last=True)),
                                           reference)
    assert logits_err < 1e-5 and grad_err < 1e-5


def test_compiled_network_matches_eager():
    """torch.compile (inductor, built with the CPU's C++ compiler) changes only rounding; the
    compiled module shares the eager one's parameters, so checkpoints keep their keys."""
    cfg = RunConfig(family="fold", depth=1, channels=2, bias_init=-0.5)
    fast = FastPath(compile=True)
    logits_err, grad_err = relative_errors(forward_backward(cfg, fast), forward_backward(cfg, FastPath()))
    assert logits_err < 1e-5 and grad_err < 1e-5
    model = build_model(cfg)
    assert fastpath.prepare_model(model, fast) is not model
    assert set(model.state_dict()) == set(build_model(cfg).state_dict())


def test_fused_adam_takes_the_same_steps_as_the_default():
    cfg = SMALL
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    weights = []
    for fast in (FastPath(fused_adam=False), FastPath()):
        model = build_model(cfg)
        optimiser = fastpath.make_optimiser(model.parameters(), 1e-2, fast)
        assert optimiser.defaults["fused"] is (True if fast.fused_adam else None)
        for _ in range(3):
            assert train.training_step(model, model, optimiser, x, y, cfg, fast) is not None
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1], rtol=1e-5, atol=1e-6)


def test_soft_penalty_is_computed_in_fp32_under_autocast():
    cfg = RunConfig(family="fold", depth=2, channels=4, regime="soft", alpha=1.0, bias_init=-0.5)
    model = build_model(cfg)
    with torch.no_grad():  # move the kernels off orthogonality, so the penalty is not zero
        for p in model.body.parameters():
            p.add_(0.01)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    optimiser = fastpath.make_optimiser(model.parameters(), 0.0, FastPath())
    loss = train.training_step(model, model, optimiser, x, y, cfg, FastPath("bf16"))
    assert loss.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ce = F.cross_entropy(model(x).float(), y)
    penalty = train.regularisation(model, cfg.regime, cfg.alpha, cfg.gain)
    assert penalty.dtype == torch.float32 and penalty > 0
    assert torch.allclose(loss.detach(), ce + penalty.detach(), rtol=1e-6)


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fastpath_data")
    files = make_idx_dataset(root / "mirror", n_train=700, n_test=300)
    fetch([Expected(n, f["size"], f["sha256"]) for n, f in files.items()], root / "idx", urls=[],
          mirrors=[root / "mirror"])
    return root / "idx"


def test_fast_path_training_reaches_the_fp32_accuracy(idx_dir, tmp_path):
    """Issue 7's accuracy criterion at toy scale (CPU, the generated IDX fixture: 600 training
    and 300 test images, 2 epochs): bf16 + channels-last + fused Adam ends within 1 point of test
    accuracy of the fp32 path on the same seed, well above chance. A dense fold network (width 32,
    depth 4): the fixture's classes are bar positions, which a convolutional network's global
    mean-pool cannot see, so a conv net stays at chance on it in both precisions."""
    cfg = RunConfig(dataset="fixture", arch="dense", family="fold", depth=4, width=32,
                    bias_init=-0.5, lr=0.01, epochs=2, batch_size=20, val_size=100, seed=3)
    accuracy = {}
    for name, fast in {"fp32": FastPath(), "fast": FastPath("bf16", True, False, False, True)}.items():
        summary = train.train(cfg, idx_dir, tmp_path / name, torch.device("cpu"), 0, fast)
        assert summary["status"] == "completed"
        assert summary["environment"]["fast_path"] == fast.to_dict()
        m = pd.read_csv(tmp_path / name / "metrics.csv")
        accuracy[name] = m.query("split == 'test' and metric == 'accuracy' and epoch == 2")["value"].item()
    assert accuracy["fp32"] > 0.5, accuracy
    assert abs(accuracy["fast"] - accuracy["fp32"]) <= 0.01, accuracy


@pytest.mark.parametrize("activation", ["relu", "relu_k"])
def test_packed_networks_match_separate_ones(activation):
    """K = 3 seeds as one vmapped network: the same logits, gradients and Adam steps as three
    separate networks (relu_k: its fixed breakpoints are buffers, stacked too)."""
    cfgs = [RunConfig(family="fold", activation=activation, k=3 if activation == "relu_k" else 1,
                      depth=2, channels=3, bias_init=-0.5, seed=s) for s in range(3)]
    models = [build_model(c) for c in cfgs]
    packed = PackedModels(models)
    torch.manual_seed(0)
    x, y = torch.randn(3, 8, 1, 28, 28), torch.randint(0, 10, (3, 8))
    separate_opt = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in models]
    packed_opt = torch.optim.Adam(packed.parameters(), lr=1e-2)
    for _ in range(2):
        logits = packed(x)
        assert logits.shape == (3, 8, 10)
        # Sum of the K mean losses: each network's gradient is that of its own loss.
        losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(3, 8)
        losses.mean(1).sum().backward()
        packed_opt.step()
        packed_opt.zero_grad()
        for k, (m, opt) in enumerate(zip(models, separate_opt)):
            assert torch.allclose(logits[k], m(x[k]), atol=1e-5)
            F.cross_entropy(m(x[k]), y[k]).backward()
            opt.step()
            opt.zero_grad()
    for k, m in enumerate(models):
        unpacked = packed.unpack(k)
        for name, p in m.named_parameters():
            assert torch.allclose(unpacked[name], p, atol=1e-5), name


def test_packing_refuses_what_vmap_cannot_run():
    bn = build_model(RunConfig(family="resnet", norm="batch", depth=1, channels=2))
    with pytest.raises(ValueError, match="batch-normalised"):
        PackedModels([bn, bn])
    hard = build_model(RunConfig(family="fold", regime="hard", depth=1, channels=2))
    with pytest.raises(ValueError, match="regime hard"):
        PackedModels([hard])
    with pytest.raises(ValueError, match="at least one"):
        PackedModels([])


def test_throughput_benchmark_runs_every_path_and_writes_its_json(tmp_path, idx_dir):
    """benchmarks/train_throughput.py end to end at the smallest size: every path measured, the
    pipeline as orthojac.run.train trains (2 epochs of 50 images: a smaller last batch at 16 and 32),
    ratios to the naive loop, the accuracy check; no cudnn.benchmark. The speed itself is the
    benchmark's business, not a test's."""
    train_throughput = _benchmark("train_throughput")
    out = tmp_path / "throughput.json"
    train_throughput.main(["--device", "cpu", "--families", "fold", "plain", "--depth", "1",
                           "--channels", "2", "--batch-sizes", "16", "32", "--steps", "1",
                           "--warmup", "1", "--pack", "2", "--data-dir", str(idx_dir),
                           "--train-size", "50", "--eval-size", "50", "--checkpoint-every", "2",
                           "--accuracy-data-dir", str(idx_dir),
                           "--accuracy-epochs", "1", "--accuracy-test-size", "50",
                           "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["fast_path"] == FastPath().to_dict() and result["device"].startswith("CPU")
    rows = pd.DataFrame(result["results"])
    assert list(rows["path"]) == ["naive", "pipeline", "pipeline", "packed K=2"] * 2
    assert list(rows["batch_size"]) == [128, 16, 32, 256] * 2
    assert (rows["images_per_s"] > 0).all()
    piped = rows[rows["path"] == "pipeline"]
    assert list(piped["last_batch"]) == [2, 18] * 2 and list(piped["steps_per_epoch"]) == [4, 2] * 2
    assert np.allclose(piped["images_per_s"], 50 / piped["seconds"])
    assert not torch.backends.cudnn.benchmark
    naive = rows[rows["path"] == "naive"].set_index("family")["images_per_s"]
    expected = rows["images_per_s"] / rows["family"].map(naive)
    assert np.allclose(rows["ratio_to_naive"], expected)
    accuracy = result["accuracy"]
    assert accuracy["fp32"]["status"] == accuracy["fast"]["status"] == "completed"
    assert accuracy["difference_points"] == pytest.approx(
        100 * (accuracy["fast"]["test_accuracy"] - accuracy["fp32"]["test_accuracy"]))


def test_the_stream_between_layers_stays_fp32_under_bf16_autocast():
    """fold, limit and orthoff pass their stream on in fp32 under autocast (the branch is bf16,
    the sum fp32), and the lift hands the body fp32: 200 layers do not round x to bf16 200 times.
    Without autocast nothing changes dtype (float64 spectra stay float64)."""
    x = torch.randn(2, 1, 28, 28)
    for family, extra in (("fold", {}), ("limit", {"delta": 0.1}), ("orthoff", {"activation": "abs"})):
        model = build_model(RunConfig(family=family, depth=2, channels=2, bias_init=-0.5, **extra))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            h = model.embed(x)
            assert h.dtype == torch.float32, family
            for layer in model.body:
                h = layer(h)
                assert h.dtype == torch.float32, family
        model = model.double()
        assert model.body(model.embed(x.double())).dtype == torch.float64


def test_no_tensor_is_built_from_python_values_in_a_step(monkeypatch):
    """ReLU_k's signs are a buffer (not persistent: the state_dict keeps its keys) and the soft
    penalty's masks are cached: after the first step, neither the forward pass nor the penalty
    builds a tensor from Python numbers (on a GPU each would be a copy from the host, a sync)."""
    cfg = RunConfig(family="fold", activation="relu_k", k=3, depth=2, channels=2, regime="soft",
                    alpha=0.01, bias_init=-0.5)
    model = build_model(cfg)
    assert not any(k.endswith("signs") for k in model.state_dict())
    x = torch.randn(2, 1, 28, 28)
    expected = (model(x), train.regularisation(model, cfg.regime, cfg.alpha, cfg.gain))

    def refuse(*args, **kwargs):
        raise AssertionError("torch.tensor called within a training step")

    monkeypatch.setattr(torch, "tensor", refuse)
    assert torch.equal(model(x), expected[0])
    assert torch.equal(train.regularisation(model, cfg.regime, cfg.alpha, cfg.gain), expected[1])


def test_divergence_guard_ends_a_run_at_the_same_step_with_the_same_weights(monkeypatch, idx_dir,
                                                                            tmp_path):
    """With the fused Adam the finiteness test stays on the device (DivergenceGuard) and is read
    every CHECK_EVERY steps: a run whose loss turns non-finite at one step (a NaN pixel in one
    training image) ends at that step with the weights before it, exactly as the per-step test
    ends it, and reads the device far less often than once a step."""
    cfg = RunConfig(dataset="fixture", arch="dense", family="fold", depth=2, width=8, bias_init=-0.5,
                    lr=0.01, epochs=3, batch_size=20, val_size=100, seed=3)
    prepare = train.prepare_data

    def poisoned(*args):
        splits = prepare(*args)
        perm = torch.randperm(600, generator=torch.Generator().manual_seed(cfg.seed * 1_000_003))
        splits["train"][0][perm[17 * 20 + 3]] = float("nan")  # in the batch of step 17
        return splits

    monkeypatch.setattr(train, "prepare_data", poisoned)
    monkeypatch.setattr(fastpath, "CHECK_EVERY", 4)
    checks = []
    check = fastpath.DivergenceGuard.check
    monkeypatch.setattr(fastpath.DivergenceGuard, "check",
                        lambda self, step: checks.append(step) or check(self, step))
    fast = FastPath(fused_adam=True)
    runs = {}
    for name in ("guard", "per_step"):
        if name == "per_step":
            monkeypatch.setattr(fastpath, "divergence_guard", lambda *args: None)
        summary = train.train(cfg, idx_dir, tmp_path / name, torch.device("cpu"), 5, fast)
        runs[name] = (summary, pd.read_csv(tmp_path / name / "metrics.csv"),
                      torch.load(tmp_path / name / "final.pt", weights_only=False)["model"])
    (s1, m1, w1), (s2, m2, w2) = runs["per_step"], runs["guard"]
    assert s1["status"] == s2["status"] == "diverged"
    assert s1["diverged_step"] == s2["diverged_step"] == 17 == s2["steps"]
    keep = m1["metric"] != "seconds"
    pd.testing.assert_frame_equal(m1[keep], m2[keep], check_exact=True)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert checks == [4, 5, 8, 10, 12, 15, 16, 20]  # found at step 20: step 17


def test_the_smaller_last_batch_reuses_the_compiled_graph(monkeypatch):
    """The batch dimension is marked dynamic: batches of 8, 8, 5 (an epoch's last) and 8 again
    compile one graph, not one per batch size (dynamo's counters; the aot_eager backend stands in
    for inductor, whose code generation does not decide what dynamo compiles)."""
    from torch._dynamo.utils import counters

    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: compile_(model, backend="aot_eager"))
    torch._dynamo.reset()
    counters.clear()
    model = build_model(SMALL)
    fast = FastPath(compile=True)
    forward = fastpath.prepare_model(model, fast)
    optimiser = fastpath.make_optimiser(model.parameters(), 1e-3, fast)
    for n in (8, 8, 5, 8):
        x, y = torch.randn(n, 1, 28, 28), torch.randint(0, 10, (n,))
        assert train.training_step(forward, model, optimiser, x, y, SMALL, fast) is not None
    assert counters["stats"]["unique_graphs"] == 1
    assert not counters["recompiles"]
    torch._dynamo.reset()


def test_cpu_defaults_rerun_to_identical_metrics_and_evaluate_a_fixed_training_subset(monkeypatch, idx_dir,
                                                                                         tmp_path):
    """The CPU's default levers (fused Adam, hand-written dense fold layers): a rerun of the same
    config gives identical metrics and weights; the training split is evaluated on the fixed
    subset train_evaluation_subset (TRAIN_EVAL_SIZE images, the same for every seed), and
    config.json says how many images each split was evaluated on. The old levers (foreach Adam,
    autograd's layers) train to the same losses up to rounding."""
    monkeypatch.setattr(train, "TRAIN_EVAL_SIZE", 50)
    subset = train.train_evaluation_subset(500)
    assert len(subset) == 50 and torch.equal(subset, train.train_evaluation_subset(500))
    assert bool((subset[1:] > subset[:-1]).all()) and torch.equal(train.train_evaluation_subset(30), torch.arange(30))
    cfg = RunConfig(dataset="fixture", arch="dense", family="fold", depth=3, width=16, bias_init=-0.5,
                    lr=0.01, epochs=2, batch_size=20, val_size=100, seed=3)
    runs = {}
    for name, fast in (("a", FastPath()), ("b", FastPath()), ("old", FastPath(fused_adam=False, fused_layers=False))):
        summary = train.train(cfg, idx_dir, tmp_path / name, torch.device("cpu"), 7, fast)
        assert summary["status"] == "completed"
        assert summary["evaluated"] == {"train": 50, "val": 100, "test": 300}
        metrics = pd.read_csv(tmp_path / name / "metrics.csv")
        runs[name] = (metrics[metrics["metric"] != "seconds"].reset_index(drop=True),
                      torch.load(tmp_path / name / "final.pt", weights_only=False)["model"])
    pd.testing.assert_frame_equal(runs["a"][0], runs["b"][0], check_exact=True)
    assert all(torch.equal(runs["a"][1][k], runs["b"][1][k]) for k in runs["a"][1])
    losses = [runs[n][0].query("metric == 'loss'")["value"].to_numpy() for n in ("a", "old")]
    assert abs(losses[0] - losses[1]).max() < 1e-3, losses


def test_cpu_speed_benchmark_counts_the_flops_and_runs_the_whole_job_both_ways(tmp_path, idx_dir):
    """benchmarks/cpu_speed.py end to end at the smallest size (depth 2, width 8, batch 16, a
    whole job of 200 fixture images): the FLOPs of a dense step as counted by FlopCounterMode are
    the products' own (lift: forward and weight gradient; body: six products a fold layer;
    head: forward and both gradients), every ratio is computed, and the job ran with both
    settings (the old one evaluating the whole training split). No speed is asserted."""
    cpu_speed = _benchmark("cpu_speed")
    out = tmp_path / "cpu_speed.json"
    cpu_speed.main(["--depth", "2", "--width", "8", "--batch", "16", "--steps", "1", "--rounds", "1",
                    "--peak-trials", "1", "--data-dir", str(idx_dir), "--job-images", "200",
                    "--job-val-size", "100", "--h5-depth", "3", "--h5-width", "8", "--json", str(out)])
    result = json.loads(out.read_text())
    b, w, d = 16, 8, 2
    assert result["steps"]["fold"]["flops"] == 4 * b * 784 * w + d * 6 * 2 * b * w * w + 3 * 2 * b * w * 10
    assert set(result["steps"]) == {"fold", "orthoff", "resnet", "plain", "fold_soft", "fold_hard",
                                    "orthoff_abs_soft", "orthoff_abs_hard", "limit50", "quick_fold8", "quick_plain8",
                                    "quick_resnet8", "H1 RNN", "H5 tanh"}
    # quick's one-channel convolutional networks: the convolutions' FLOPs, new and old
    assert all(result["steps"][f"quick_{f}8"]["flops"] == result["steps"][f"quick_{f}8"]["flops_old"] > 0
               for f in ("fold", "plain", "resnet"))
    # H5 (batch 128): the first layer forward and weight gradient (no gradient for the image), three
    # products for each of the two hidden layers in the node, the read-out's three; the modules the same
    h5 = 4 * 128 * 784 * w + 2 * 3 * 2 * 128 * w * w + 3 * 2 * 128 * w * 10
    assert result["steps"]["H5 tanh"]["flops"] == result["steps"]["H5 tanh"]["flops_old"] == h5
    # the old code is in effect for the old steps: torch's Cayley map, read twice by a fold layer,
    # multiplies by its base in a product of its own, forward and backward
    assert result["steps"]["fold_hard"]["flops_old"] > result["steps"]["fold_hard"]["flops"]
    assert result["steps"]["fold"]["flops_old"] == result["steps"]["fold"]["flops"]
    assert all(r["peak_ratio_new"] > 0 and r["peak_ratio_old"] > 0 for r in result["steps"].values())
    # the time in matrix products, profiled, is a part of the profiled step, for every network whose
    # products are matrix products; the convolutional ones have none to count
    dense = {n: r for n, r in result["steps"].items() if n not in cpu_speed.CONVOLUTIONAL}
    assert all(0 < r["product_seconds"] < r["profiled_seconds"] for r in dense.values()), dense
    assert all(r["products_peak_ratio"] == r["flops"] / r["product_seconds"] / result["peak_flops"]
               for r in dense.values())
    assert not any("product_seconds" in result["steps"][n] for n in cpu_speed.CONVOLUTIONAL)
    assert list(result["jobs"]) == ["fold"]
    job = result["jobs"]["fold"]
    assert job["new"]["evaluated"] == {"train": 200, "val": 100, "test": 300}
    assert job["old"]["evaluated"] == {"train": 200, "val": 100, "test": 300}  # 200 < TRAIN_EVAL_SIZE
    assert job["new"]["fast_path"]["fused_adam"] and not job["old"]["fast_path"]["fused_layers"]
    assert job["new"]["steps"] == job["old"]["steps"] == 13
    assert 0 < job["new"]["job_peak_ratio"] < job["new"]["train_peak_ratio"]
    # the job's ceiling: its training at the fold step's products' rate, its time outside training kept
    outside = job["new"]["wall_seconds"] - job["new"]["train_seconds"]
    assert job["new"]["outside_seconds"] == outside
    at_peak = job["training_flops"] / result["peak_flops"]
    assert job["new"]["job_ceiling"] == pytest.approx(
        at_peak / (at_peak / result["steps"]["fold"]["products_peak_ratio"] + outside))
    assert "job_ceiling" not in job["old"]


def test_packed_fold_bodies_are_the_separate_bodies_and_their_gradients():
    """benchmarks/packed_seeds.py's PackedBody (K fold/ReLU bodies as batched products, one node):
    in float64, gradcheck passes, and its output and every gradient equal those of the K bodies
    through orthojac.nets.fused.DenseBody one by one (up to the order of sums: the bits are the
    benchmark's measurement, machine by machine)."""
    packed_seeds = _benchmark("packed_seeds")
    from orthojac.nets import fused
    k, depth, n, w = 3, 4, 5, 6
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(k, n, w, dtype=torch.float64, generator=gen, requires_grad=True)
    params = [torch.randn(w, w, dtype=torch.float64, generator=gen).mul_(0.4).requires_grad_() if i % 2 == 0
              else torch.randn(w, dtype=torch.float64, generator=gen).requires_grad_() for i in range(k * depth * 2)]
    assert torch.autograd.gradcheck(lambda x, *p: packed_seeds.PackedBody.apply(k, x, *p), (x, *params))
    out = packed_seeds.PackedBody.apply(k, x, *params)
    g = torch.randn(k, n, w, dtype=torch.float64, generator=gen)
    grads = torch.autograd.grad(out, (x, *params), g)
    per = 2 * depth
    for i in range(k):
        mine = fused.DenseBody.apply(fused.FoldReLU, 2, x[i], *params[i * per:(i + 1) * per])
        assert torch.allclose(out[i], mine, rtol=1e-12, atol=1e-12)
        theirs = torch.autograd.grad(mine, (x, *params[i * per:(i + 1) * per]), g[i])
        assert torch.allclose(grads[0][i], theirs[0][i], rtol=1e-12, atol=1e-12)
        for a, b in zip(grads[1 + i * per:1 + (i + 1) * per], theirs[1:]):
            assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_packed_seeds_benchmark_compares_bits_and_writes_its_json(tmp_path):
    """benchmarks/packed_seeds.py end to end at the smallest size, and its bit comparison: one
    weight one ulp apart, or one loss, is found. No speed and no bit identity is asserted: both are
    what the benchmark measures, on the machine it runs on."""
    packed_seeds = _benchmark("packed_seeds")
    out = tmp_path / "packed.json"
    packed_seeds.main(["--depth", "2", "--width", "8", "--batch", "8", "--packs", "2", "--steps", "1",
                       "--rounds", "1", "--peak-trials", "1", "--json", str(out)])
    result = json.loads(out.read_text())
    row = result["packs"]["2"]
    assert set(row["ms_per_network_step"]) == {"separate", "packed"} and row["speedup"] > 0
    assert isinstance(row["same_bits"], bool) and row["steps_compared"] == 3
    b, w = 8, 8
    assert row["gflop_per_network_step"] * 1e9 == pytest.approx(4 * b * 784 * w + 2 * 6 * 2 * b * w * w + 3 * 2 * b * w * 10)
    args = argparse.Namespace(depth=2, width=8, batch=8)
    _, a = packed_seeds.networks(args, 2)
    _, c = packed_seeds.networks(args, 2)
    losses = [torch.tensor(1.0), torch.tensor(2.0)]
    assert packed_seeds.same_bits(a, c, losses, [l.clone() for l in losses])
    assert not packed_seeds.same_bits(a, c, losses, [losses[0], torch.nextafter(losses[1], torch.tensor(3.0))])
    weight = c[1][1].body[0].B.weight
    with torch.no_grad():
        weight[0, 0] = torch.nextafter(weight[0, 0], weight[0, 0] + 1)
    assert not packed_seeds.same_bits(a, c, losses, losses)


def test_startup_benchmark_runs_both_optimisers_and_compares_their_numbers(tmp_path, idx_dir):
    """benchmarks/startup.py end to end, one round of the P1 job on the fixture: the imports and
    both jobs timed, their metrics.csv the same but for the training time (the benchmark raises
    otherwise, and a changed loss is a difference). No speed is asserted."""
    startup = _benchmark("startup")
    out = tmp_path / "startup.json"
    result = startup.main(["--rounds", "1", "--jobs", "init", "--data-dir", str(idx_dir), "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert set(result["imports_s"]) == {"import torch", "import torch, then torch._dynamo"}
    assert list(result["jobs"]) == ["init"]
    job = result["jobs"]["init"]
    assert job["same_metrics"] and set(job["wall_s"]) == {"orthojac's optimiser", "torch's optimiser"}
    assert all(v > 0 for v in [*result["imports_s"].values(), *job["wall_s"].values()])
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    a.write_text("epoch,step,split,metric,value\n0,0,val,loss,2.5\n1,4,train,seconds,0.11\n")
    b.write_text("epoch,step,split,metric,value\n0,0,val,loss,2.5\n1,4,train,seconds,0.08\n")
    c.write_text("epoch,step,split,metric,value\n0,0,val,loss,2.4999999\n1,4,train,seconds,0.11\n")
    assert startup.numbers(a) == startup.numbers(b) != startup.numbers(c)


def test_bounds_benchmark_compares_the_same_bits_and_reads_quick_runs(tmp_path, idx_dir):
    """benchmarks/bounds.py at a small size (depth 2, width 16, batch 16): the fold body looped in
    TorchScript gives the bits of orthojac.nets.fused.DenseBody (its measurement of the
    interpreter's share is only worth something if so; at width 8 the two loops' products differ
    in the last bit, from 16 to the benchmark's 128 they agree), the step's phases add up to the step and
    the forward's and backward's FLOPs to the step's, and a quick depth-2 convolutional run's
    checkpoints and training seconds are read (its Jacobians' SVDs timed both ways, the shares
    computed from them), other runs' not. No speed is asserted."""
    bounds = _benchmark("bounds")
    from orthojac.run.checkpoint import atomic_save

    results = tmp_path / "results"
    (results / "data").mkdir(parents=True)
    (results / "data" / "fashion_mnist").symlink_to(idx_dir)
    quick = RunConfig(arch="conv", family="plain", channels=1, depth=2, bias_init=-0.5, seed=3)
    for run, cfg, seconds in (("family=plain+depth=2", quick.to_dict(), 2.5),
                              ("family=plain+depth=8", {"arch": "conv", "depth": 8}, 7.0),
                              ("arch=dense+depth=2", {"arch": "dense", "depth": 2}, 1.0)):
        (results / "runs" / "depth_sweep" / run).mkdir(parents=True)
        (results / "runs" / "depth_sweep" / run / "config.json").write_text(
            json.dumps({"config": cfg, "steps": 10, "train_seconds": seconds}))
    for checkpoint in ("init", "final"):
        atomic_save({"model": build_model(quick).state_dict(), "config": quick.to_dict(),
                     "normalisation": {"mean": 0.2, "std": 0.3}},
                    results / "runs" / "depth_sweep" / "family=plain+depth=2" / f"{checkpoint}.pt")
    out = tmp_path / "bounds.json"
    bounds.main(["--depth", "2", "--width", "16", "--batch", "16", "--rounds", "1", "--results", str(results),
                 "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["interpreter"]["same_bits"] is True
    step = result["fold_step"]
    assert step["step_ms"] == pytest.approx(sum(step[f"{p}_ms"] for p in ("forward", "backward", "optimiser", "rest")))
    b, w, d = 16, 16, 2
    assert step["forward_flop"] == 2 * b * 784 * w + d * 2 * 2 * b * w * w + 2 * b * w * 10
    assert step["step_flop"] == step["forward_flop"] + step["backward_flop"]
    runs = result["quick_spectrum"]["runs"]
    assert list(runs) == ["depth_sweep/family=plain+depth=2"]
    row = runs["depth_sweep/family=plain+depth=2"]
    assert row["full_svds_ms"] > 0 and row["exact_singular_values_ms"] > 0
    assert row["full_share"] == pytest.approx(row["full_svds_ms"] / 1e3 / 2.5)
    assert row["shortcut_share"] == pytest.approx(row["exact_singular_values_ms"] / 1e3 / 2.5)


def test_the_c_fold_step_benchmark_builds_checks_the_bits_and_times_both_steps(tmp_path):
    """benchmarks/fold_step_c.py at a small size (depth 2, width 16, batch 16): the C program and
    library build with the system's compiler against torch's libtorch_cpu; the C body's output,
    input gradient and weight gradients are DenseBody(FoldReLU)'s to the bit (its bias gradients,
    summed in another order, close); the program's five variants and orthojac's step are timed in
    the round, the step's FLOPs are the products' (six a fold layer, the lift's two, the head's
    three) and each ratio is FLOPs / time / that round's peak. No speed is asserted."""
    fold_step_c = _benchmark("fold_step_c")
    out = tmp_path / "fold_step_c.json"
    fold_step_c.main(["--depth", "2", "--width", "16", "--batch", "16", "--rounds", "1", "--steps", "2",
                      "--json", str(out)])
    result = json.loads(out.read_text())
    bits = result["bits"]
    assert bits["output_same_bits"] and bits["input_gradient_same_bits"] and bits["weight_gradients_same_bits"]
    assert 0 <= bits["bias_gradients_max_difference"] < 1e-4
    (row,) = result["rounds"]
    d, w, b = 2, 16, 16
    assert row["step_flop"] == 6 * d * 2 * w * w * b + 2 * 2 * b * 784 * w + 3 * 2 * b * w * 10
    assert set(row["variants_ms"]) == set(fold_step_c.VARIANTS) and row["orthojac_ms"] > 0
    for name, ms in {**row["variants_ms"], "orthojac": row["orthojac_ms"]}.items():
        assert row["peak_ratio"][name] == pytest.approx(row["step_flop"] / (ms / 1e3) / (row["peak_gflops"] * 1e9))



def test_the_c_rnn_benchmark_checks_the_bits_and_times_both_passes(tmp_path):
    """benchmarks/rnn_c.py, one round of two calls: H1's RNN through rnn_c.c is TanhRNN's to the bit
    at every size it checks (training with a penalty on W_hh, evaluation, a NaN, 3e38), and its
    ratios are the timed passes' (nothing about speed is asserted)."""
    rnn_c = _benchmark("rnn_c")
    out = tmp_path / "rnn_c.json"
    rnn_c.main(["--rounds", "1", "--steps", "2", "--json", str(out)])
    result = json.loads(out.read_text())
    assert set(result["bits"]) == {"H1", "evaluation batch", "odd", "one"}
    assert all(all(said.values()) for said in result["bits"].values()) and len(result["bits"]["H1"]) == 7
    ms = result["ms"]
    assert result["ratios"]["training pass, TanhRNN / C"] == pytest.approx(ms["training, TanhRNN"] / ms["training, C"])
    assert result["ratios"]["evaluation pass, TanhRNN / C"] == pytest.approx(
        ms["evaluation, TanhRNN"] / ms["evaluation, C"])
    assert all(v > 0 for v in result["kernels_ms"].values()) and len(result["kernels_ms"]) == 7


@pytest.mark.parametrize("mutant", [
    ("d[i] = g[i] * fmaf(-h[i], h[i], 1.0f);", "d[i] = g[i] * (1.0f - h[i] * h[i]);"),  # torch's fma undone
    ("  vsTanh(nb * H, out, out);", "  for (size_t i = 0; i < (size_t)nb * H; i++) out[i] = tanhf(out[i]);"),  # libm's
    ("memcpy(out, sums + (size_t)(T - 1) * H, (size_t)H * sizeof(float));\n  for (int t = T - 2; t >= 0; t--)",
     "memcpy(out, sums, (size_t)H * sizeof(float));\n  for (int t = 1; t < T; t++)"),  # b_hh's sum from step 0
])
def test_the_c_rnn_benchmarks_bits_check_refuses_a_wrong_kernel(tmp_path, monkeypatch, mutant):
    """The bits check can fail: rnn_c.c with one kernel changed (tanh's derivative without the fused
    multiply-add torch's tanh_backward has; libm's tanh for MKL's; b_hh's steps summed from the first
    instead of the last) is found different, and the benchmark stops before timing."""
    rnn_c = _benchmark("rnn_c")
    source = rnn_c.SOURCE.read_text()
    old, new = mutant
    assert source.count(old) == 1
    mutated = tmp_path / "rnn_c.c"
    mutated.write_text(source.replace(old, new))
    monkeypatch.setattr(rnn_c, "SOURCE", mutated)
    lib = rnn_c.build(tmp_path)
    said = rnn_c.bits(lib, {"batch": 7, "steps": 3, "inputs": 5, "hidden": 6})
    assert not all(said.values()), said
    with pytest.raises(SystemExit, match="not TanhRNN's"):
        rnn_c.main(["--rounds", "1", "--steps", "1"])
