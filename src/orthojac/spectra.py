"""Jacobian spectra of a trained (or freshly initialised) network.

    python -m orthojac.spectra --weights results/runs/E/R/final.pt --data-dir D \
        --out-body body.csv --out-layers layers.csv

`jacobian_spectrum`: the exact singular values of the body's input→output Jacobian ∂body(h)/∂h at
fixed test inputs h = lift(image) — a chunked `torch.func.jacrev` (one vmapped vector-Jacobian
product per chunk of rows: memory grows with the chunk, not with the dimension) followed by
`torch.linalg.svdvals`. Per layer, the same at that layer's own input along the forward pass.
Tables are tidy: body (point, index, sigma) and layers (point, layer, metric, value).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, write_csv_atomic
from .config import RunConfig
from .data import load_split
from .models import build_model


def jacobian_matrix(f, x: torch.Tensor, chunk_size: int | None = 256) -> torch.Tensor:
    """The dim×dim Jacobian of f at a single input x (any shape), rows chunked."""
    dim = x.numel()

    def flat(v):
        return f(v.reshape(x.shape).unsqueeze(0)).reshape(-1)

    return torch.func.jacrev(flat, chunk_size=chunk_size)(x.reshape(-1)).reshape(dim, dim)


def jacobian_spectrum(f, x: torch.Tensor, chunk_size: int | None = 256) -> torch.Tensor:
    """Singular values (descending) of the Jacobian of f at x."""
    return torch.linalg.svdvals(jacobian_matrix(f, x, chunk_size))


def spectra(model, images: torch.Tensor, chunk_size: int, per_layer: bool):
    """Rows for the body table and the per-layer table, one input point at a time."""
    body_rows, layer_rows = [], []
    with torch.no_grad():
        inputs = model.embed(images)
    for p, h in enumerate(inputs):
        sigma = jacobian_spectrum(model.body, h, chunk_size)
        body_rows += [{"point": p, "index": i, "sigma": s} for i, s in enumerate(sigma.tolist())]
        if not per_layer:
            continue
        for ell, layer in enumerate(model.body):
            s = jacobian_spectrum(layer, h, chunk_size)
            for metric, value in (("sigma_min", s.min()), ("sigma_max", s.max()),
                                  ("sigma_mean", s.mean()), ("max_abs_dev", (s - 1).abs().max())):
                layer_rows.append({"point": p, "layer": ell, "metric": metric, "value": value.item()})
            with torch.no_grad():
                h = layer(h.unsqueeze(0)).squeeze(0)
    return body_rows, layer_rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac-spectra", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="init.pt or final.pt of a run")
    parser.add_argument("--data-dir", type=Path, required=True, help="folder of the IDX files")
    parser.add_argument("--points", type=int, default=2, help="test images to evaluate at (the first N)")
    parser.add_argument("--chunk-size", type=int, default=256,
                        help="Jacobian rows per vmapped VJP: bounds memory")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                        help="precision of the Jacobian and the SVD")
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda[:N]")
    parser.add_argument("--no-layers", action="store_true", help="skip the per-layer spectra")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for PyTorch (0: its default)")
    parser.add_argument("--out-body", type=Path, required=True, help="CSV of the body's singular values")
    parser.add_argument("--out-layers", type=Path, required=True, help="CSV of per-layer summaries")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    ckpt = load_checkpoint(args.weights)
    cfg = RunConfig(**ckpt["config"])
    model = build_model(cfg)
    model.load_state_dict(ckpt["model"])
    dtype = getattr(torch, args.dtype)
    model = model.to(device=device, dtype=dtype).eval()
    x_test, _ = load_split(args.data_dir, "t10k")
    norm = ckpt["normalisation"]
    images = torch.as_tensor(x_test[: args.points].copy(), dtype=dtype, device=device).unsqueeze(1)
    images = (images / 255 - norm["mean"]) / norm["std"]
    body, layers = spectra(model, images, args.chunk_size, not args.no_layers)
    write_csv_atomic(args.out_body, body, ["point", "index", "sigma"])
    write_csv_atomic(args.out_layers, layers, ["point", "layer", "metric", "value"])
    dev = max(abs(r["sigma"] - 1) for r in body)
    print(f"{args.weights}: body max|σ−1| = {dev:.3e} over {args.points} points", file=sys.stderr)


if __name__ == "__main__":
    main()
