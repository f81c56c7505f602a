"""What the spectrum stage measures for each run of an experiment: the fields of an experiment's
`spectra:` block, the one place of their defaults, help and choices (orthojac.config.setting).

`orthojac spectra` takes one flag per field (orthojac.config.add_arguments), the workflow passes
them (orthojac.workflow.Pipeline.spectra_args), the config's schema allows them with these defaults
(orthojac.workflow.schema) and the report lists each as a provenance row, in this order. No torch:
the workflow reads it to build each job's flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .config import flag_of, setting

METHODS = ("exact", "lanczos", "auto")
DTYPES = ("float64", "float32")


@dataclass
class SpectraSettings:
    """An experiment's `spectra:` settings (one `orthojac spectra` flag each, but `checkpoints`)."""

    checkpoints: list[str] = setting(["init", "final"], "init, final, and epochN: the weights after epoch N "
                                     "(training keeps them in epochs.pt); one spectrum job each",
                                     flag=False, values="checkpoint")
    points: int = setting(2, "test images to evaluate at (the first N)", bound="positive", maximum=10000)
    method: str = setting("auto", "exact SVD (every σ), matrix-free Lanczos extremes (σ_max, σ_min), or exact "
                          "up to exact_max_dim (auto)", choices=list(METHODS))
    dtype: str = setting("float64", "precision of the Jacobian and the SVD", choices=list(DTYPES))
    layers: bool = setting(True, "the per-layer spectra too (false, --no-layers: the body's spectrum only)")
    grad_batch: int = setting(256, "test images of the fixed batch for the per-layer gradient norms (0: none)", maximum=65536)
    exact_max_dim: int = setting(16384, "auto: largest body dimension computed exactly", bound="positive", maximum=1_000_000)
    chunk_size: int = setting(256, "Jacobian rows per vmapped VJP: bounds memory", bound="positive", maximum=65536)


DEFAULTS = SpectraSettings()

# The order of the flags in the spectrum rule's command, as it was first written (a rule whose
# command changes runs its jobs again); a field not named here follows, in field order.
COMMAND_ORDER = ("points", "method", "exact_max_dim", "grad_batch", "chunk_size", "dtype", "layers")


def command_flags(spec: dict, settings=SpectraSettings) -> list[str]:
    """An experiment's (validated) `spectra:` block as `orthojac spectra` arguments: `--flag value`
    for each field with a flag, a yes/no field's switch where its value is not the default."""
    fields = {f.name: f for f in dataclasses.fields(settings) if f.metadata.get("flag") is not False}
    order = [name for name in COMMAND_ORDER if name in fields] + [n for n in fields if n not in COMMAND_ORDER]
    args = []
    for name in order:
        f = fields[name]
        if isinstance(f.default, bool):
            args += [flag_of(f)] if spec[name] != f.default else []
        else:
            args += [flag_of(f), str(spec[name])]
    return args
