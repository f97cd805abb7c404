"""Which torch device a job runs on."""
from __future__ import annotations


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; any other name as given
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...)."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
