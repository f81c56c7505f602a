"""The torch device a job runs on, from its --device flag (shared by orthojac.run.train and the thesis
loops)."""

from __future__ import annotations

import torch


def select_device(name: str) -> torch.device:
    """`auto`: CUDA when available, else the CPU; any other name as torch spells it."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
