"""Converter training checkpoints: atomic writes, the latest one, and a config check on resume.

A checkpoint is a plain dict readable with ``torch.load(..., weights_only=True)``:
  step, train_config (the conf's ``train`` section), model_config, speakers (adversary classes),
  converter (state dict; all inference needs), extras (adversary / CTC head state),
  optimizer, scheduler, scaler, rng (torch CPU / CUDA generator states).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from voxanon.config import to_dict
from voxanon.models.config import TrainConfig

# Keys that may change between a kill and the resume without changing what is being trained.
RESUMABLE_CHANGES = {"optim.max_steps", "optim.checkpoint_every", "optim.keep_checkpoints", "optim.valid_every",
                     "optim.log_every", "optim.num_workers"}
_NAME = re.compile(r"^step_(\d+)\.pt$")


class CheckpointMismatch(ValueError):
    """A checkpoint was made with a different training config."""


def save_atomic(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def checkpoint_path(ckpt_dir: Path, step: int) -> Path:
    return ckpt_dir / f"step_{step:08d}.pt"


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Finished checkpoints, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def prune(ckpt_dir: Path, keep: int) -> None:
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        old.unlink()


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def config_differences(saved: dict, cfg: TrainConfig) -> list[str]:
    """Dotted keys (``train.x.y: saved -> now``) that differ and would change the training."""
    old, new = _flat(saved), _flat(to_dict(cfg))
    return [f"train.{k}: {old.get(k)!r} in the checkpoint, {new.get(k)!r} in the conf"
            for k in sorted(set(old) | set(new)) if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k)]


def load_for_resume(path: Path, cfg: TrainConfig) -> dict:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    diffs = config_differences(ckpt.get("train_config", {}), cfg)
    if diffs:
        raise CheckpointMismatch(f"{path} was trained with another config:\n  " + "\n  ".join(diffs)
                                 + "\nuse a new experiment, or re-run the stage with --overwrite true to start over")
    return ckpt
