"""Converter training checkpoints: atomic writes, the latest one, and a config check on resume.

A checkpoint is a plain dict readable with ``torch.load(..., weights_only=True)``:
  step, target, features (WavLM identity of the training features), train_config (the conf's
  ``train`` section), model_config, speakers (adversary classes), converter (state dict; with
  model_config and features all inference needs), extras (adversary / CTC head state),
  optimizer, scheduler, scaler. No RNG state: dropout is seeded per step and rank.
"""
from __future__ import annotations

import pickle
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


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message names the file."""


def read_checkpoint(path: Path) -> dict:
    """``torch.load(..., weights_only=True)`` of a checkpoint dict. torch's own messages name no file
    and suggest ``weights_only=False`` (which would run code from the file): never pass that on."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError):
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (corrupt, truncated or another format); "
                              "re-create it (re-run the stage that wrote it) or fetch it again") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint (a {type(ckpt).__name__}, expected a dict)")
    return ckpt


def load_state(model: torch.nn.Module, state: dict, path: Path, what: str) -> None:
    """``model.load_state_dict(state)`` with one line naming the file and the keys that differ."""
    expected, found = set(model.state_dict()), set(state)
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise CheckpointError(f"{path}: the {what} does not match this model (missing keys: "
                              f"{', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(unexpected[:5]) or 'none'}); "
                              "was it made by another model config or version? re-create it")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # shapes differ: torch lists them one per line after a header
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise CheckpointError(f"{path}: the {what} does not fit this model ({lines[-1][:160]}); "
                              "re-create it with the current model config") from None


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
    ckpt = read_checkpoint(path)
    diffs = config_differences(ckpt.get("train_config", {}), cfg)
    if diffs:
        raise CheckpointMismatch(f"{path} was trained with another config:\n  " + "\n  ".join(diffs)
                                 + "\nuse a new experiment, or re-run the stage with --overwrite true to start over")
    return ckpt
