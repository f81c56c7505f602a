"""torch's optimisers without the `torch._dynamo` import their first call pays.

`torch.optim.Optimizer`'s `add_param_group`, `zero_grad`, `state_dict` and `load_state_dict` carry
`torch._disable_dynamo`, and every `step` runs under `_use_grad_for_differentiable`: both run
`import torch._dynamo` on their first call, so that a `torch.compile` tracing them stops there. In an
eager process nothing is traced, yet the import (≈ 2.3 s on one core of the AMD EPYC the CPU speed
work was measured on, 2.5–2.7 s under contention; `benchmarks/cpu_speed.py --startup`) is paid by
every job that builds an optimiser: a tenth to a third of a short job of `make quick`.

`eager(cls)` is `cls` with those five methods calling torch's own bodies (`inspect.unwrap`: the
functions the decorators wrap), `step` with gradients on only for a differentiable optimiser, as
`_use_grad_for_differentiable` sets them. The arithmetic is torch's, so the parameters, the moments and the
state dict are the same to the bit, and a state dict written by one loads into the other
(`tests/test_optimisers.py`). Nothing here may be traced by `torch.compile`: the paper's training and
the thesis' programs compile the network's forward pass at most, never the step.
"""

from __future__ import annotations

import functools
import inspect

import torch

_DECORATED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


@functools.cache
def eager(cls: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """`cls` (a torch optimiser) whose methods never import `torch._dynamo`; one class per `cls`."""
    step = inspect.unwrap(cls.step)

    def eager_step(self, closure=None):
        with torch.set_grad_enabled(self.defaults.get("differentiable", False)):
            return step(self, closure)

    namespace = {name: inspect.unwrap(getattr(cls, name)) for name in _DECORATED}  # torch's bodies, as methods
    namespace |= {"step": functools.wraps(step)(eager_step), "__module__": __name__,
                  "__doc__": f"torch.optim.{cls.__name__}, its bodies called without torch._dynamo's import "
                             "(orthojac.run.optimisers)."}
    return type(cls.__name__, (cls,), namespace)


# The classes by name, so that an optimiser object pickles (pickle finds its class here).
Adam, SGD, RMSprop = eager(torch.optim.Adam), eager(torch.optim.SGD), eager(torch.optim.RMSprop)


def adam(params, lr: float, fused: bool | None = True) -> torch.optim.Adam:
    return Adam(params, lr=lr, fused=fused)


def sgd(params, lr: float, momentum: float = 0.0, fused: bool | None = True) -> torch.optim.SGD:
    return SGD(params, lr=lr, momentum=momentum, fused=fused)


def rmsprop(params, lr: float) -> torch.optim.RMSprop:
    return RMSprop(params, lr=lr)
