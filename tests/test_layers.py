"""Orthogonality of the layer families' Jacobians (float64, exact Jacobians)."""

import pytest
import torch

from orthojac.nets.activations import make_activation
from orthojac.nets.layers import ConvOperator, DenseOperator, Fold
from orthojac.nets.orthogonal import CONSTRUCTIONS, orthogonal_matrix
from orthojac.spectra import jacobian_spectrum


def _fold(op, bias_scale, gen):
    layer = Fold(op, make_activation("relu")).double()
    with torch.no_grad():
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen, dtype=torch.float64) * bias_scale)
    return layer


@pytest.mark.parametrize("construction", sorted(CONSTRUCTIONS))
def test_constructions_are_orthogonal(construction):
    gen = torch.Generator().manual_seed(0)
    q = orthogonal_matrix(9, 9, construction, gen)
    assert torch.allclose(q @ q.T, torch.eye(9, dtype=torch.float64), atol=1e-12)
    rect = orthogonal_matrix(4, 9, construction, gen)
    assert torch.allclose(rect @ rect.T, torch.eye(4, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("n,m", [(12, 12), (12, 5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_fold_jacobian_is_orthogonal(n, m, seed):
    gen = torch.Generator().manual_seed(seed)
    op = DenseOperator(m, n).double()
    op.init_orthogonal_("haar", gen)
    layer = _fold(op, 1.0, gen)
    x = torch.randn(n, generator=gen, dtype=torch.float64)
    sigma = jacobian_spectrum(layer, x)
    assert (sigma - 1).abs().max() < 1e-6
    # Not the trivial case: some units are active and some are not, so J ≠ ±I.
    pre = op(x.unsqueeze(0)) + layer.bias
    assert 0 < (pre > 0).sum() < m


@pytest.mark.parametrize("construction", ["cayley", "haar", "expm"])
def test_conv_fold_jacobian_is_orthogonal(construction):
    gen = torch.Generator().manual_seed(3)
    op = ConvOperator(3, 3, 3).double()
    op.init_orthogonal_(construction, gen)
    layer = _fold(op, 0.5, gen)
    x = torch.randn(3, 6, 6, generator=gen, dtype=torch.float64)
    sigma = jacobian_spectrum(layer, x, chunk_size=32)
    assert sigma.numel() == 3 * 6 * 6
    assert (sigma - 1).abs().max() < 1e-6
    J = torch.func.jacrev(lambda v: layer(v.unsqueeze(0)).squeeze(0).reshape(-1))(x).reshape(108, 108)
    assert (J - torch.eye(108, dtype=torch.float64)).abs().max() > 0.1  # some ReLUs are active


def test_conv_adjoint_is_the_transpose():
    gen = torch.Generator().manual_seed(4)
    op = ConvOperator(2, 3, 3).double()
    torch.nn.init.normal_(op.weight, generator=gen)
    x = torch.randn(1, 3, 5, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(1, 2, 5, 5, generator=gen, dtype=torch.float64)
    assert torch.allclose((op(x) * y).sum(), (x * op.adjoint(y)).sum())


def test_unorthogonal_fold_is_detected():
    """The check can fail: a Gaussian B gives a non-orthogonal Jacobian."""
    gen = torch.Generator().manual_seed(5)
    op = DenseOperator(8, 8).double()
    torch.nn.init.normal_(op.weight, generator=gen)
    layer = _fold(op, 1.0, gen)
    sigma = jacobian_spectrum(layer, torch.randn(8, generator=gen, dtype=torch.float64))
    assert (sigma - 1).abs().max() > 1e-2


def test_hand_written_dense_fold_matches_autograd():
    """DenseFoldReLU (the training path of a dense fold/ReLU layer): its backward passes torch's
    gradcheck in float64, and forward and gradients equal autograd's through the plain code up to
    rounding, in float32 too (with units on both sides of ReLU's kink)."""
    from orthojac.nets.layers import DenseFoldReLU

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: DenseFoldReLU.apply(*a)[0], (x, w, b))
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        layer = _fold(DenseOperator(16, 16), 0.5, gen).to(dtype)
        layer.B.init_orthogonal_("haar", gen)
        x = torch.randn(32, 16, dtype=dtype, generator=gen)
        results = []
        for fused in (False, True):
            layer.fused = fused
            xi = x.clone().requires_grad_(True)
            out = layer(xi)
            assert layer.takes_fused_path(xi) is fused
            grads = torch.autograd.grad((out * torch.arange(16, dtype=dtype)).sum(), (xi, *layer.parameters()))
            results.append((out.detach(), *grads))
        assert any((r != 0).any() for r in results[0][2:])  # the weight's gradient is not trivially zero
        for plain, fused in zip(*results):
            torch.testing.assert_close(fused, plain, rtol=tol, atol=tol)


def test_the_hand_written_path_is_taken_only_for_training_a_plain_dense_fold_relu_layer():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 8, generator=gen)
    layer = Fold(DenseOperator(8, 8), make_activation("relu"))
    with torch.no_grad():  # the operator's weight is torch.empty until initialised: garbage, perhaps NaN
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    layer.fused = True
    assert layer.takes_fused_path(x)
    with torch.no_grad():
        assert layer.eval().takes_fused_path(x)  # evaluation without gradients
        plain = Fold(DenseOperator(8, 8), make_activation("relu")).eval()
        plain.load_state_dict(layer.state_dict())
        torch.testing.assert_close(layer(x), plain(x), rtol=1e-6, atol=1e-6)
    assert not layer.eval().takes_fused_path(x)  # spectra: eval mode, with gradients
    layer.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not layer.takes_fused_path(x)
    assert not torch.vmap(lambda xi: torch.tensor(layer.takes_fused_path(xi)))(x).any()
    assert not Fold(ConvOperator(2, 2), make_activation("relu")).takes_fused_path(torch.randn(1, 2, 4, 4))
    relu_k = Fold(DenseOperator(8, 8), make_activation("relu_k", k=2))
    relu_k.fused = True
    assert not relu_k.takes_fused_path(x)
    hard = Fold(DenseOperator(8, 8), make_activation("relu"))
    hard.B.init_orthogonal_("haar", gen)
    hard.B.make_hard_()
    hard.fused = True
    assert not hard.takes_fused_path(x)


@pytest.mark.parametrize("gain", [1.0, 1.5])
def test_hand_written_cayley_map_is_torchs_parametrisation(gain):
    """Regime hard's square weights take `CayleyOrthogonal`: the same weight, gradient and
    checkpoint keys as torch's orthogonal parametrisation with the Cayley map (float64, a random
    parameter with its diagonal and upper triangle filled, which neither map reads); a weight that
    is not orthogonal (gain ≠ 1) is projected to the same orthogonal base."""
    import copy

    from torch.nn.utils import parametrizations

    from orthojac.nets.layers import CayleyOrthogonal

    gen = torch.Generator().manual_seed(3)
    ours = DenseOperator(10, 10).double()
    ours.init_orthogonal_("haar", gen, gain=gain)
    theirs = copy.deepcopy(ours)
    ours.make_hard_()
    parametrizations.orthogonal(theirs, "weight", orthogonal_map="cayley")
    assert isinstance(ours.parametrizations.weight[0], CayleyOrthogonal)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    assert torch.allclose(ours.weight, theirs.weight, atol=1e-14)
    x = torch.randn(10, 10, generator=gen, dtype=torch.float64)
    for op in (ours, theirs):
        with torch.no_grad():
            op.parametrizations.weight.original.copy_(x)
    g = torch.randn(10, 10, generator=gen, dtype=torch.float64)
    (ours.weight * g).sum().backward()
    (theirs.weight * g).sum().backward()
    assert torch.allclose(ours.weight, theirs.weight, atol=1e-13)
    assert torch.allclose(ours.weight.T @ ours.weight, torch.eye(10, dtype=torch.float64), atol=1e-13)
    grad_ours, grad_theirs = ours.parametrizations.weight.original.grad, theirs.parametrizations.weight.original.grad
    assert grad_ours.abs().max() > 0.1
    assert torch.allclose(grad_ours, grad_theirs, atol=1e-12)


def test_rectangular_hard_weights_keep_torchs_parametrisation():
    from torch.nn.utils import parametrizations

    op = DenseOperator(4, 9)
    op.init_orthogonal_("haar", torch.Generator().manual_seed(0))
    op.make_hard_()
    assert type(op.parametrizations.weight[0]) is parametrizations._Orthogonal
    assert torch.allclose(op.weight @ op.weight.T, torch.eye(4), atol=1e-5)


def test_a_fold_layer_computes_its_hard_weight_once_a_step(monkeypatch):
    """Under fastpath.weights_once the fold layer's two reads of B (Bx and Bᵀ·) share one Cayley
    map, forward and backward, and the gradient is the one computed without the cache."""
    from orthojac.nets import layers
    from orthojac.run.fastpath import FastPath, weights_once

    gen = torch.Generator().manual_seed(1)
    layer = _fold(DenseOperator(6, 6), 0.5, gen)
    layer.B.init_orthogonal_("haar", gen)
    layer.double()
    layer.B.make_hard_()
    x = torch.randn(5, 6, generator=gen, dtype=torch.float64)
    calls = []
    original = layers._Cayley.forward
    monkeypatch.setattr(layers._Cayley, "forward", staticmethod(lambda ctx, *a: calls.append(1) or original(ctx, *a)))
    grads = []
    for cache in (False, True):
        calls.clear()
        layer.zero_grad()
        with weights_once(FastPath()) if cache else torch.enable_grad():
            layer(x).square().sum().backward()
        grads.append(layer.B.parametrizations.weight.original.grad.clone())
        assert len(calls) == (1 if cache else 2)
    assert grads[0].abs().max() > 0 and torch.allclose(grads[0], grads[1], atol=1e-12)


def _train_dense(fused_layers: bool, whole_body: bool, monkeypatch, steps=3, **settings):
    """Three steps of a small dense network as orthojac.run.train takes them; the losses, the
    weights after them and an evaluation's logits. `whole_body` False: the body's layers one by one
    (models.fused_body says no)."""
    from orthojac.config import RunConfig
    from orthojac.nets import models
    from orthojac.run import fastpath, train

    with monkeypatch.context() as patch:
        if not whole_body:
            patch.setattr(models, "fused_body", lambda body, x: None)
        cfg = RunConfig(arch="dense", depth=6, width=16, batch_size=8, **settings)
        model = models.build_model(cfg)
        fast = fastpath.FastPath(fused_layers=fused_layers)
        forward = fastpath.prepare_model(model, fast)
        optimiser = fastpath.make_optimiser(model.parameters(), 1e-2, fast)
        gen = torch.Generator().manual_seed(3)
        losses = []
        for _ in range(steps):
            x, y = torch.randn(8, 1, 28, 28, generator=gen), torch.randint(0, 10, (8,), generator=gen)
            losses.append(train.training_step(forward, model, optimiser, x, y, cfg, fast).item())
        with torch.no_grad():
            logits = forward(torch.randn(20, 1, 28, 28, generator=gen))
    return losses, model.state_dict(), logits


FUSED_BODIES = {  # a family's settings whose dense body fused.fused_body takes as one node
    "fold": {"family": "fold", "bias_init": -0.3},
    "fold_soft": {"family": "fold", "bias_init": -0.3, "regime": "soft", "alpha": 1e-2},
    "plain": {"family": "plain", "init_scheme": "he"},
    "resnet": {"family": "resnet", "init_scheme": "he"},
    "orthoff_sigma1": {"family": "orthoff", "activation": "sigma_k", "k": 1, "breakpoints": "0.3",
                       "ab_init": "equal"},
    "orthoff_abs": {"family": "orthoff", "activation": "abs", "bias_init": 0.1},
    "partial": {"family": "partial", "bias_init": 0.1},
    "pso": {"family": "pso", "pso_d": 3, "pso_bias": 1.0},
    "limit": {"family": "limit", "delta": 0.3, "bias_init": 0.1},
}


@pytest.mark.parametrize("name", sorted(FUSED_BODIES))
def test_a_whole_body_in_one_node_trains_to_the_bits_of_its_layers_one_by_one(name, monkeypatch):
    """fused.DenseBody (every layer of a dense body in one autograd node) trains to exactly the
    bits of the layers called one by one, losses, weights and evaluation: for fold the per-layer
    node fused.DenseFoldReLU (the CPU reference's path), for the others autograd through the
    modules' own code. Fold also stays within rounding of autograd's plain code."""
    settings = FUSED_BODIES[name]
    body = _train_dense(True, True, monkeypatch, **settings)
    layer_by_layer = _train_dense(True, False, monkeypatch, **settings)
    assert body[0] == layer_by_layer[0] and len(set(body[0])) == 3, (body[0], layer_by_layer[0])
    changed = [k for k in body[1] if not torch.equal(body[1][k], layer_by_layer[1][k])]
    assert not changed, changed
    assert torch.equal(body[2], layer_by_layer[2])
    if settings["family"] == "fold":
        plain = _train_dense(False, True, monkeypatch, **settings)
        torch.testing.assert_close(torch.tensor(body[0]), torch.tensor(plain[0]), rtol=1e-5, atol=1e-6)
        for k in body[1]:
            torch.testing.assert_close(body[1][k], plain[1][k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel", ["FoldReLU", "PlainReLU", "ResidualReLU", "OrthFFSigma1", "OrthFFAbs", "PartialReLU",
                                    "LimitReLU"])
def test_each_hand_written_body_passes_gradcheck(kernel):
    from orthojac.nets import fused

    gen = torch.Generator().manual_seed(0)
    shapes = {"FoldReLU": [(4, 4), (4,)], "PlainReLU": [(4, 4), (4,)],
              "ResidualReLU": [(4, 4), (4,), (4, 4), (4,)], "OrthFFSigma1": [(4, 4), (4, 4), (4,), None],
              "OrthFFAbs": [(4, 4), (4, 4), (4,)], "PartialReLU": [(4, 4), (4, 4), (4,)],
              "LimitReLU": [(4, 4), (4,), (4, 4)]}[kernel]
    kind = fused.LimitReLU(0.3) if kernel == "LimitReLU" else getattr(fused, kernel)

    def param(shape):
        if shape is None:  # σ_1's breakpoint: a buffer, no gradient
            return torch.tensor([0.2], dtype=torch.float64)
        return torch.randn(shape, dtype=torch.float64, generator=gen).requires_grad_(True)

    x = torch.randn(5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    params = [param(shape) for _ in range(3) for shape in shapes]
    assert torch.autograd.gradcheck(lambda x, *p: fused.DenseBody.apply(kind, len(shapes), x, *p),
                                    (x, *params))
    # differentiable once: a gradient of its gradient raises rather than come out wrong
    out = fused.DenseBody.apply(kind, len(shapes), x, *params)
    (dx,) = torch.autograd.grad(out.pow(2).sum(), x, create_graph=True)  # the node's g needs a graph itself
    with pytest.raises(RuntimeError, match="once_differentiable"):
        dx.sum().backward()


def test_the_whole_body_node_is_taken_only_where_every_layer_takes_the_hand_written_path():
    from orthojac.config import RunConfig
    from orthojac.nets.fused import fused_body
    from orthojac.nets.models import build_model
    from orthojac.run import fastpath

    def model(**settings):
        net = build_model(RunConfig(arch="dense", depth=3, width=8, **settings))
        fastpath.prepare_model(net, fastpath.FastPath())
        return net

    x = torch.randn(4, 8)
    for settings in FUSED_BODIES.values():
        assert fused_body(model(**settings).body, x) is not None, settings
    with torch.no_grad():
        net = model(family="fold").eval()
        torch.testing.assert_close(fused_body(net.body, x), net.body(x), rtol=0, atol=0)
    assert fused_body(model(family="fold").eval().body, x) is None  # spectra: eval mode, with gradients
    assert fused_body(model(family="fold", regime="hard").body, x) is None
    assert fused_body(model(family="fold", activation="relu_k", k=2).body, x) is None
    assert fused_body(model(family="plain", activation="tanh").body, x) is None
    assert fused_body(model(family="resnet", norm="batch").body, x) is None
    assert fused_body(model(family="orthoff", activation="sigma_k", k=2).body, x) is None
    mixed = model(family="limit")
    mixed.body[1].delta = 0.2  # one kernel a body: layers with different δ run one by one
    assert fused_body(mixed.body, x) is None
    assert fused_body(model(family="pso", pso_strategy="block", pso_d=2).body, x) is None
    hooked = model(family="fold")
    hooked.body[1].register_forward_hook(lambda *a: None)
    assert fused_body(hooked.body, x) is None
    unfused = build_model(RunConfig(arch="dense", family="fold", depth=3, width=8))
    fastpath.prepare_model(unfused, fastpath.FastPath(fused_layers=False))
    assert fused_body(unfused.body, x) is None


@pytest.mark.parametrize("k", [1, 3, 5])
def test_the_batch_as_channels_convolutions_are_torchs_and_pass_gradcheck(k):
    """orthojac.nets.one_channel.batch_depthwise, plain and adjoint: F.conv2d and F.conv_transpose2d
    with 'same' zero padding for one channel, in float64, and their gradients (gradcheck, and the
    second order: torch's convolution, differentiable as any)."""
    import torch.nn.functional as F
    from orthojac.nets import one_channel
    gen = torch.Generator().manual_seed(k)
    x = torch.randn(3, 1, 6, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 1, k, k, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(1, generator=gen, dtype=torch.float64, requires_grad=True)
    for adjoint, torch_conv in ((False, F.conv2d), (True, F.conv_transpose2d)):
        conv = lambda a, c: one_channel.batch_depthwise(a, c, adjoint)  # noqa: E731
        torch.testing.assert_close(conv(x, w), torch_conv(x, w, padding=k // 2))
        assert torch.autograd.gradcheck(conv, (x, w))
        assert torch.autograd.gradgradcheck(conv, (x, w))
        biased = lambda a, c, d: one_channel.batch_depthwise(a, c, adjoint, bias=d)  # noqa: E731
        torch.testing.assert_close(biased(x, w, b), torch_conv(x, w, b, padding=k // 2))
        assert torch.autograd.gradcheck(biased, (x, w, b))
        # one image: torch's own call, the same bits
        assert torch.equal(biased(x[:1], w, b), torch_conv(x[:1], w, b, padding=k // 2))


def _conv_net(channels: int, fused_layers: bool = True, **settings):
    from orthojac.config import RunConfig
    from orthojac.nets.models import build_model
    from orthojac.run import fastpath
    net = build_model(RunConfig(arch="conv", channels=channels, depth=2, init="cayley", bias_init=-0.5, **settings))
    fastpath.prepare_model(net, fastpath.FastPath(fused_layers=fused_layers))
    return net


@pytest.mark.parametrize("family", ["fold", "plain", "resnet"])
def test_one_channel_convolutional_networks_train_through_the_batch_as_channels(family):
    """config/quick.yaml's depth sweep (C = 1): with the lever on, every convolution of a training
    step (the lift's, the body's and their adjoints) runs as a convolution of the batch as channels
    (groups = the batch), torch's as one of one channel, and the loss and every gradient are the
    same up to the order of sums (float32)."""
    import torch.nn.functional as F
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(8, 1, 28, 28, generator=gen), torch.randint(0, 10, (8,), generator=gen)
    nets = {name: _conv_net(1, fused_layers=name == "depthwise", family=family) for name in ("depthwise", "torch")}
    nets["torch"].load_state_dict(nets["depthwise"].state_dict())
    grads, groups = {}, {}
    for name, net in nets.items():
        loss = F.cross_entropy(net(x), y)
        seen, todo = set(), [loss.grad_fn]
        while todo:  # the autograd graph's nodes
            node = todo.pop()
            if node is not None and node not in seen:
                seen.add(node)
                todo += [n for n, _ in node.next_functions]
        groups[name] = sorted(n._saved_groups for n in seen if type(n).__name__ == "ConvolutionBackward0")
        grads[name] = (loss, *torch.autograd.grad(loss, list(net.parameters())))
    # the lift, and per layer (depth 2) fold's B and Bᵀ, plain's W, resnet's W₁ and W₂
    convolutions = 1 + 2 * {"fold": 2, "plain": 1, "resnet": 2}[family]
    assert groups == {"torch": [1] * convolutions, "depthwise": [len(x)] * convolutions}
    for a, b in zip(grads["depthwise"], grads["torch"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_the_batch_as_channels_is_taken_only_for_one_channel_on_a_cpu_outside_torch_func():
    from orthojac.nets.layers import DeltaConvOperator
    from orthojac.nets.one_channel import ConvLift
    x = torch.randn(2, 1, 6, 6)
    net = _conv_net(1)
    op, lift = net.body[0].B, net.lift
    assert isinstance(lift, ConvLift) and op.fused and lift.fused
    assert op.takes_depthwise(x)
    plain = _conv_net(1, fused_layers=False)
    plain.load_state_dict(net.state_dict())
    images = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert op.eval().takes_depthwise(x)  # evaluation without gradients
        torch.testing.assert_close(net.eval()(images), plain.eval()(images), rtol=1e-5, atol=1e-5)
    assert op.eval().takes_depthwise(x)  # spectra: eval mode, with gradients
    op.train()
    seen = []
    torch.func.vmap(lambda a: seen.append(op.takes_depthwise(a)) or a)(torch.randn(3, 2, 1, 6, 6))
    assert seen == [False]  # inside a torch.func transform (PackedModels)
    # an empty batch, or images of two channels, are left to torch (found by a review: groups = 0 raised)
    assert not op.takes_depthwise(torch.empty(0, 1, 6, 6)) and op(torch.empty(0, 1, 6, 6)).shape == (0, 1, 6, 6)
    assert not op.takes_depthwise(torch.randn(2, 2, 6, 6))
    assert not _conv_net(2).body[0].B.takes_depthwise(torch.randn(2, 2, 6, 6))  # two channels: oneDNN
    assert not _conv_net(1, fused_layers=False).body[0].B.takes_depthwise(x)
    hard = _conv_net(1, regime="hard").body[0].B
    assert isinstance(hard, DeltaConvOperator) and not hard.takes_depthwise(x)  # regime hard
    # a lift batch_depthwise does not compute keeps torch's convolution; without a bias it still may
    images = torch.randn(2, 1, 8, 8)
    for settings in ({"kernel_size": 5, "padding": 1}, {"kernel_size": 3, "padding": 1, "padding_mode": "reflect"},
                     {"kernel_size": 3, "padding": 1, "dilation": 2}, {"kernel_size": 3, "padding": 1, "stride": 2},
                     {"kernel_size": 3, "padding": 1, "bias": False}, {"kernel_size": 5, "padding": 2}):
        other = ConvLift(1, 1, **settings)
        other.fused = True
        torch_conv = torch.nn.Conv2d(1, 1, **settings)
        torch_conv.load_state_dict(other.state_dict())
        torch.testing.assert_close(other(images), torch_conv(images), rtol=1e-5, atol=1e-5)
        assert other.is_same_convolution() == (settings.get("padding_mode", "zeros") == "zeros"
                                               and "dilation" not in settings and "stride" not in settings
                                               and settings["padding"] == settings["kernel_size"] // 2)
