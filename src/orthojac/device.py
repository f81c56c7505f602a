"""Where a job runs: the torch device of its --device flag and the CPU threads of its --threads
flag, the same two flags for `orthojac train`, `orthojac spectra` and the thesis' programs."""

from __future__ import annotations

import argparse

import torch


def select_device(name: str) -> torch.device:
    """`auto`: CUDA when available, else the CPU; any other name as torch spells it."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def add_device_flags(parser: argparse.ArgumentParser, device: bool = True) -> None:
    """--device (unless `device` is False: a program that runs on the CPU only) and --threads."""
    if device:
        parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda[:N]")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for PyTorch (0: its default)")


def use_threads(threads: int) -> None:
    """--threads: that many CPU threads for PyTorch; 0 keeps its default."""
    if threads:
        torch.set_num_threads(threads)
