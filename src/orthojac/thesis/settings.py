"""The settings of each thesis section: one dataclass per config section, its fields the section's
keys, each field's default, help, choices and bounds in its metadata (orthojac.config.setting);
the section's `train` flags (orthojac.config.add_arguments) and its block of the config's schema
(orthojac.workflow.schema) are generated from it. No torch: the workflow (orthojac.workflow.SECTIONS)
reads them to build each job's flags. The section's keys that are not a program's flags (its
`description`, `dataset`, `seeds`, H2's data) are in the schema's file, workflow/schemas.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import setting

VARIANTS = ("eq11", "listing")  # H1/H2 regulariser forms (orthojac.thesis.rnn.VARIANTS: their functions)
DENSE_WEIGHTS = ("orthogonal", "gaussian")  # H3/H5 initialisations
OPTIMIZERS = ("adam", "momentum", "rmsprop", "sgd")  # H3/H5 (orthojac.thesis.dense.OPTIMIZERS: the optimisers)
DENSE_ACTIVATIONS = ("linear", "tanh", "relu")  # H3/H5's φ (orthojac.thesis.dense.ACTIVATIONS: the modules)
LR_SCALINGS = ("inverse_depth", "constant")  # H3
H4_ACTIVATIONS = ("relu", "tanh", "hardtanh")
H4_WEIGHTS = ("gaussian", "orthogonal")
EMBEDDINGS_MEMBER = "glove.6B.300d.txt"  # H2: the GloVe text file inside glove.6B.zip


@dataclass
class RNN:
    """The `hlav_rnn:` config section's settings, one `train` flag each."""

    hidden: int = setting(64, "hidden units of the RNN", bound="positive", maximum=16384)
    batch_size: int = setting(256, "mini-batch size", bound="positive", maximum=65536)
    train_size: int = setting(48000, "training images (0: all but validation)", maximum=10_000_000)
    val_size: int = setting(12000, "validation images (the last of the training split)", bound="positive", maximum=10_000_000)
    test_size: int = setting(0, "test images (0: all)", maximum=10_000_000)
    epochs: int = setting(20, "training epochs", bound="positive", maximum=10000)
    lr: float = setting(1e-3, "Adam learning rate", bound="positive")
    gain: float = setting(1.1, "gain A of the GainA configurations", bound="positive")
    lambdas: list[float] = setting([0.001, 0.01], "penalties λ = B", bound="positive")
    variants: list[str] = setting(sorted(VARIANTS), "regulariser forms: eq11 (‖WWᵀ/g² − I‖²_F) and/or listing "
                                  "(mean((WWᵀ/g² − 1)²))", choices=sorted(VARIANTS))


@dataclass
class LSTM:
    """The `hlav_lstm:` config section's settings, one `train` flag each."""

    seq_len: int = setting(50, "tokens a sentence (padded/truncated at the front)", bound="positive", maximum=10000)
    hidden: int = setting(128, "hidden units of the LSTM", bound="positive", maximum=16384)
    batch_size: int = setting(128, "mini-batch size", bound="positive", maximum=65536)
    train_size: int = setting(4264, "training sentences", bound="positive", maximum=10_000_000)
    val_size: int = setting(533, "validation sentences", bound="positive", maximum=10_000_000)
    test_size: int = setting(533, "test sentences", bound="positive", maximum=10_000_000)
    corpus_seed: int = setting(0, "seed of the choice and split of the sentences")
    epochs: int = setting(20, "training epochs", bound="positive", maximum=10000)
    lr: float = setting(1e-3, "Adam learning rate", bound="positive")
    gain: float = setting(1.1, "gain A of the GainA configurations", bound="positive")
    lambdas: list[float] = setting([0.001, 0.01], "penalties λ = B", bound="positive")
    variants: list[str] = setting(sorted(VARIANTS), "regulariser forms: eq11 (‖WᵀW/g² − I‖²_F) and/or listing "
                                  "(mean((WWᵀ/g² − 1)²))", choices=sorted(VARIANTS))
    embeddings_member: str = setting(EMBEDDINGS_MEMBER, "the GloVe text file inside the zip",
                                     flag="--member", single=True)


@dataclass
class Linear:
    """The `hlav_linear:` config section's settings, one `train` flag each."""

    depths: list[int] = setting([2, 4, 8, 16, 32, 64, 128], "hidden layers L", bound="positive", maximum=10000)
    weights: list[str] = setting(list(DENSE_WEIGHTS), "initialisations", choices=DENSE_WEIGHTS)
    width: int = setting(128, "width n of every hidden layer", bound="positive", maximum=16384)
    sigma_w2: float = setting(1.0, "σ_w² of the hidden weights (Hlav §3: 1)", bound="positive")
    optimizer: str = setting("sgd", "optimizer (momentum: SGD, 0.9)", choices=sorted(OPTIMIZERS))
    epochs: int = setting(10, "most epochs a run may take to reach the target", bound="positive", maximum=10000)
    batch_size: int = setting(128, "mini-batch size", bound="positive", maximum=65536)
    lr: float = setting(1.0, "SGD learning rate η (scaled by --lr-scaling)", bound="positive")
    lr_scaling: str = setting("inverse_depth", "inverse_depth: η_L = η / L; constant: η_L = η", choices=LR_SCALINGS)
    target: float = setting(0.8, "validation accuracy that ends a run", bound="positive", maximum=1)
    eval_every: int = setting(50, "steps between validation evaluations", bound="positive")
    train_size: int = setting(0, "training images (0: all but validation)", maximum=10_000_000)
    val_size: int = setting(10000, "validation images (the last of the training split)", bound="positive", maximum=10_000_000)


@dataclass
class Deep:
    """The `hlav_deep:` config section's settings, one `train` flag each."""

    networks: list[str] = setting(["tanh:1.05", "tanh:2", "relu:2"],
                                  "activation:σ_w² of each network (Hlav Fig. 3: tanh:1.05 tanh:2 relu:2)", values="hlav_network")
    weights: list[str] = setting(list(DENSE_WEIGHTS), "initialisations", choices=DENSE_WEIGHTS)
    depth: int = setting(200, "hidden layers L", bound="positive", maximum=10000)
    width: int = setting(400, "width n of every hidden layer", bound="positive", maximum=16384)
    optimizer: str = setting("sgd", "optimizer (momentum: SGD, 0.9)", choices=sorted(OPTIMIZERS))
    lr: float = setting(1e-3, "learning rate", bound="positive")
    epochs: int = setting(10, "training epochs", bound="positive", maximum=10000)
    batch_size: int = setting(128, "mini-batch size", bound="positive", maximum=65536)
    train_size: int = setting(0, "training images (0: all but validation)", maximum=10_000_000)
    val_size: int = setting(10000, "validation images (the last of the training split)", bound="positive", maximum=10_000_000)
    test_size: int = setting(0, "test images (0: all)", maximum=10_000_000)


@dataclass(kw_only=True)
class Theory:
    """The `h4:` config section's settings, one flag each (H4 has no subcommands)."""

    activations: list[str] = setting(list(H4_ACTIVATIONS), "activations φ", choices=H4_ACTIVATIONS)
    weights: list[str] = setting(list(H4_WEIGHTS), "weight distributions", choices=H4_WEIGHTS)
    width: int = setting(400, "width n of every layer", bound="positive", maximum=16384)
    depths: list[int] = setting(dataclasses.MISSING, "depths L to record", bound="positive", maximum=10000)
    seeds: list[int] = setting([0], "one random network per seed")
    q_star: float = setting(1 / 64, "pre-activation variance q* at which tanh/hard-tanh are made critical", bound="positive")
