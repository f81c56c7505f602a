"""bf16 autocast against fp32: the relative error of the body's gradient, per family, depth and bias.

Under `torch.autocast(dtype=torch.bfloat16)` every convolution returns bf16. If the residual
stream x of a `fold`/`limit` layer x − 2Bᵀρ(Bx + b) is bf16 too, each of L layers rounds x to 8
significant bits, and the error grows with depth; orthojac keeps x in fp32 (the branch is computed
in bf16, the sum in fp32). This script measures

    error = ‖g_bf16 − g_fp32‖₂ / ‖g_fp32‖₂,   g = the gradient of the cross-entropy with respect to
                                              all body parameters, concatenated,

on one batch of random normalised images (seeded), for the network orthojac builds from each
setting, on the CPU with the same autocast rules as on CUDA (`torch.autocast("cpu", bfloat16)`;
the rounding of bf16 does not depend on the device). Beside it, `rounded_weights`: the same error
for an fp32 pass whose body parameters alone were rounded to bf16 (what a bf16 copy of the weights
costs without any bf16 arithmetic: how sensitive the fp32 gradient itself is). It prints a table
and writes JSON. Run it with the code to measure on PYTHONPATH; benchmarks/README.md holds the
numbers before and after the fp32 residual stream.

    PYTHONPATH=src python benchmarks/bf16_residual.py --json benchmarks/bf16_residual_cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from orthojac.config import RunConfig
from orthojac.nets.models import build_model

FAMILIES = {  # the families whose layers carry a stream x from layer to layer
    "fold": {"activation": "relu"},
    "limit": {"activation": "relu", "delta": 0.1},
    "orthoff": {"activation": "abs"},
}


def body_gradient(cfg: RunConfig, x: torch.Tensor, y: torch.Tensor, bf16: bool,
                  round_weights: bool = False) -> torch.Tensor:
    model = build_model(cfg).to(x.device)
    if round_weights:
        with torch.no_grad():
            for p in model.body.parameters():
                p.copy_(p.to(torch.bfloat16))
    ctx = torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16)
    with ctx:
        logits = model(x).float()
    F.cross_entropy(logits, y).backward()
    return torch.cat([p.grad.flatten() for p in model.body.parameters()])


def relative_error(cfg: RunConfig, batch: int = 16, seed: int = 1, device: str = "cpu") -> dict:
    """The errors on `device` (CUDA: with TF32 off, so that fp32 is fp32)."""
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(batch, 1, 28, 28, generator=gen), torch.randint(0, 10, (batch,), generator=gen)
    x, y = x.to(device), y.to(device)
    g32 = body_gradient(cfg, x, y, bf16=False)
    g16 = body_gradient(cfg, x, y, bf16=True)
    rounded = body_gradient(cfg, x, y, bf16=False, round_weights=True)
    return {"error": ((g16 - g32).norm() / g32.norm()).item(),
            "rounded_weights": ((rounded - g32).norm() / g32.norm()).item(),
            "grad_norm": g32.norm().item()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--depths", type=int, nargs="+", default=[3, 200])
    parser.add_argument("--biases", type=float, nargs="+", default=[-0.5, -2.0])
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for family in args.families:
        for depth in args.depths:
            for bias in args.biases:
                cfg = RunConfig(family=family, depth=depth, channels=args.channels, bias_init=bias,
                                **FAMILIES[family])
                row = {"family": family, "depth": depth, "bias_init": bias, "channels": args.channels,
                       **relative_error(cfg, args.batch)}
                rows.append(row)
                print(f"{family:8s} depth {depth:4d} bias {bias:5.1f}: body-gradient error "
                      f"{100 * row['error']:7.2f} % (fp32, bf16-rounded weights: "
                      f"{100 * row['rounded_weights']:6.2f} %)", flush=True)
    if args.json:
        import orthojac

        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "python": platform.python_version(),
            "orthojac": str(Path(orthojac.__file__).parent), "command": " ".join(sys.argv),
            "batch": args.batch, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
