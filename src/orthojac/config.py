"""The settings of one run, with defaults: the single place where a run's knobs are defined.

The workflow turns each grid point of `config/*.yaml` into these fields (one `--flag` each); the
resolved config is written next to every run. Defaults here are orthojac's `choice`; what the
sources state is recorded, with where, in `config/config.yaml`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field


def setting(default, help: str, choices=None, flag: str | bool | None = None, *, bound: str | None = None,
            values: str | None = None, maximum: float | None = None, single: bool = False):
    """A settings field, the one place of everything about it: its default (a list: a fresh copy per
    instance; dataclasses.MISSING: a required flag), help text and choices; its flag when it is not
    `--name-with-dashes` (False: a key the workflow reads, no flag of the program). What the
    config's schema allows of each value (orthojac.workflow.schema generates it from the field):
    its type, `choices`, `bound` ("positive": > 0; "nonnegative": ≥ 0, an int's default; None:
    any number, a float's default), `values` (a `$defs` entry of the schema each value matches,
    such as `family`), `maximum`, and `single` (a text setting taking one `value:`, no grid)."""
    metadata = {"help": help, "choices": choices, "flag": flag, "bound": bound, "values": values,
                "maximum": maximum, "single": single}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


_f = setting


GAUSSIAN_CONTROL = "gaussian"  # `init` of the control: a fold layer whose B is not orthogonal (orthojac.nets.models)


@dataclass
class RunConfig:
    dataset: str = _f("fashion_mnist", "data set name (a key of the config's `data:`)")
    arch: str = _f("conv", "network type: conv (28×28×C) or dense (flattened 784 → width)", ["conv", "dense"])
    family: str = _f("fold", "layer family of the body (see orthojac.nets.models.MODELS)", values="family")
    activation: str = _f("relu", "activation ρ/σ of each layer (see orthojac.nets.activations)", values="activation")
    depth: int = _f(10, "number of layers L in the body", bound="positive", maximum=10000)
    channels: int = _f(16, "channels C of the convolutional body", bound="positive", maximum=1024)
    width: int = _f(128, "width n of the dense body", bound="positive", maximum=16384)
    kernel_size: int = _f(3, "kernel size of the body's convolutions", bound="positive", maximum=63)
    init: str = _f("haar", "orthogonal construction of B (and A); gaussian: the control, a non-orthogonal B with "
                   "N(0, 1/n) entries (dense, regime init)", ["haar", "cayley", "expm", "identity", "gaussian"])
    bias_init: float = _f(-2.0, "constant initial bias b of every body layer (fold, orthoff, partial, limit, pso)")
    k: int = _f(1, "number of breakpoints k of relu_k / sigma_k", bound="positive", maximum=1024)
    breakpoints: str = _f("", "breakpoints t_0<…<t_{k−1} of relu_k / sigma_k, comma-separated ('': linspace(−1,1,k); 0 for k=1)", values="breakpoints")
    breakpoint_mode: str = _f("fixed", "relu_k / sigma_k breakpoints fixed or learnable per channel", ["fixed", "learnable"])
    width_mid: int = _f(0, "rows m of B (dense) or channels C_mid (conv) of fold/partial/limit: B has orthonormal rows, m ≤ n (0: square)", maximum=16384)
    ab_init: str = _f("independent", "orthoff: A drawn independently of B, or A = B at initialisation (equal: with σ_1 and its breakpoint above the pre-activations the layer starts as the identity, docs/replication.md §5)", ["independent", "equal"])
    delta: float = _f(0.1, "modulation strength δ of the limit layer, s(x) = 1 + δ tanh(Mx)", bound="nonnegative")
    pso_strategy: str = _f("bias", "persistent isometric subspace: large-bias units (bias) or identity channels (block)", ["bias", "block"])
    pso_d: int = _f(4, "dimension d of the persistent isometric subspace (pso family)", maximum=16384)
    pso_bias: float = _f(10.0, "bias of the d subspace units of the pso `bias` strategy (large: ReLU linear there)")
    init_scheme: str = _f("he", "initialisation of the baselines plain/resnet", ["he", "glorot", "gaussian", "orthogonal"])
    sigma_w: float = _f(1.0, "init_scheme gaussian: W ~ N(0, sigma_w²/fan_in)", bound="positive")
    sigma_b: float = _f(0.0, "init_scheme gaussian: b ~ N(0, sigma_b²)", bound="nonnegative")
    gain: float = _f(1.0, "gain g: init_scheme orthogonal uses g·Q; soft_gain regularises ‖BBᵀ/g² − I‖²", bound="positive")
    norm: str = _f("none", "normalisation inside the resnet block (with none its last layer starts at zero)", ["none", "batch"])
    regime: str = _f("init", "orthogonality regime: init only, soft penalty, hard parametrisation, soft_gain (Hlav eq. 11), soft_gain_listing (Hlav's code)", ["init", "soft", "hard", "soft_gain", "soft_gain_listing"])
    alpha: float = _f(1e-3, "weight α (λ) of the soft regularisers", bound="nonnegative")
    optimizer: str = _f("adam", "optimiser", ["adam"])
    lr: float = _f(3e-4, "peak learning rate", bound="positive")
    schedule: str = _f("cosine", "learning-rate schedule over all steps", ["cosine", "constant"])
    epochs: int = _f(2, "training epochs (0: the network is measured at initialisation only)", maximum=10000)
    batch_size: int = _f(128, "mini-batch size", bound="positive", maximum=65536)
    train_size: int = _f(0, "training images used (0: all but the validation split)", maximum=10_000_000)
    val_size: int = _f(5000, "images held out of the training split for validation", maximum=10_000_000)
    test_size: int = _f(0, "test images evaluated each epoch (0: all)", maximum=10_000_000)
    seed: int = _f(0, "random seed (initialisation and data order)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def field_kind(annotation) -> tuple[type, bool]:
    """(element type, is a list) of a field's annotation (`int`, `list[float]`, or its string)."""
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", None) if typing.get_origin(annotation) is None \
            else f"list[{typing.get_args(annotation)[0].__name__}]"
    if annotation.startswith("list[") and annotation.endswith("]"):
        return _TYPES[annotation[len("list["):-1]], True
    return _TYPES[annotation], False


def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of a settings field: `--name-with-dashes` (a yes/no field true by
    default: `--no-name-with-dashes`), unless its metadata names one."""
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    no = "no-" if field_kind(f.type)[0] is bool and f.default is True else ""
    return f"--{no}" + f.name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, settings=RunConfig, defaults_in_help: bool = True) -> None:
    """One `--flag` per field of the dataclass `settings` (RunConfig, a thesis section's Settings,
    SpectraSettings), with its type, default, choices and help text; a list field takes one or more
    values (nargs="+"), a field without a default is a required flag, a yes/no field is a switch
    that turns its default over (`--no-layers`), a field whose flag is False (a key the workflow
    reads) has none. `defaults_in_help`: append "(default: …)" to each help text."""
    for f in dataclasses.fields(settings):
        if f.metadata.get("flag") is False:
            continue
        kind, many = field_kind(f.type)
        if kind is bool:
            parser.add_argument(flag_of(f), dest=f.name, action="store_false" if f.default else "store_true",
                                help=f.metadata["help"])
            continue
        options = {"dest": f.name, "type": kind, "choices": f.metadata.get("choices"), "help": f.metadata["help"]}
        if many:
            options["nargs"] = "+"
        if f.default is not dataclasses.MISSING:
            options["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            options["default"] = f.default_factory()
        else:
            options["required"] = True
        if defaults_in_help and "default" in options:
            options["help"] += f" (default: {options['default']})"
        parser.add_argument(flag_of(f), **options)


def from_namespace(ns: argparse.Namespace, settings=RunConfig):
    """The `settings` dataclass (default RunConfig) of parsed arguments (a field without a flag
    keeps its default)."""
    return settings(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(settings) if hasattr(ns, f.name)})


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]
