"""Device and dtype choice: cuda, then mps, then cpu; half precision on a GPU."""

from __future__ import annotations

import torch


def choose_device(preference: str = "auto") -> torch.device:
    """`preference` is "auto" or an explicit torch device string such as "cpu" or "cuda:1"."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def choose_dtype(device: torch.device) -> torch.dtype:
    """float32 on CPU (half is slow there); bfloat16 where supported, else float16."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32
