"""The settings of one run, with defaults: the single place where a run's knobs are defined.

The workflow turns each grid point of `config/*.yaml` into these fields (one `--flag` each); the
resolved config is written next to every run. Defaults here are orthojac's `choice`; what the
sources state is recorded, with where, in `config/config.yaml`.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field


def _f(default, help: str, choices=None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class RunConfig:
    dataset: str = _f("fashion_mnist", "data set name (a key of the config's `data:`)")
    arch: str = _f("conv", "network type: conv (28×28×C) or dense (flattened 784 → width)", ["conv", "dense"])
    family: str = _f("fold", "layer family of the body (see orthojac.models.MODELS)")
    activation: str = _f("relu", "activation ρ/σ of each layer (see orthojac.activations)")
    depth: int = _f(10, "number of layers L in the body")
    channels: int = _f(16, "channels C of the convolutional body")
    width: int = _f(128, "width n of the dense body")
    kernel_size: int = _f(3, "kernel size of the body's convolutions")
    init: str = _f("haar", "orthogonal construction of B (and A)", ["haar", "cayley", "expm", "identity"])
    bias_init: float = _f(-2.0, "constant initial bias b of every body layer")
    optimizer: str = _f("adam", "optimiser", ["adam"])
    lr: float = _f(3e-4, "peak learning rate")
    schedule: str = _f("cosine", "learning-rate schedule over all steps", ["cosine", "constant"])
    epochs: int = _f(2, "training epochs")
    batch_size: int = _f(128, "mini-batch size")
    train_size: int = _f(0, "training images used (0: all but the validation split)")
    val_size: int = _f(5000, "images held out of the training split for validation")
    test_size: int = _f(0, "test images evaluated each epoch (0: all)")
    seed: int = _f(0, "random seed (initialisation and data order)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One `--flag` per RunConfig field, with its help text and default."""
    for f in dataclasses.fields(RunConfig):
        kind = {"int": int, "float": float, "str": str}[f.type]
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=kind,
            default=f.default,
            choices=f.metadata.get("choices"),
            help=f"{f.metadata['help']} (default: {f.default})",
        )


def from_namespace(ns: argparse.Namespace) -> RunConfig:
    return RunConfig(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(RunConfig)})


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]
