"""Load a speechbrain pretrained-model dir offline, as the VPC 2024 evaluation loads its models.

A model dir holds ``hyperparams.yaml`` and the checkpoint files its ``pretrainer`` names. The
release zips wrap it in folders (``exp/asr/...``, ``fold_1/CKPT+...``), so ``find_model_dir``
looks below the given dir: the shallowest dir with ``hyperparams.yaml``; among siblings the last
by name (the newest ``CKPT+`` dir, as the VPC's ``scan_checkpoint`` takes).

``load_pretrained`` is speechbrain's ``from_hparams`` with ``source = savedir = the dir`` (every
file is read from there, nothing fetched) and ``pretrained_path`` set to the dir when the
hyperparams name one, so a dir that refers to its own files stays valid when moved. The hub is
switched off before transformers is imported.
"""
from __future__ import annotations

import os
from pathlib import Path

HPARAMS = "hyperparams.yaml"


class ModelDirError(RuntimeError):
    """A pretrained-model dir is missing or incomplete."""


def find_model_dir(root: str | Path) -> Path:
    root = Path(root)
    if (root / HPARAMS).is_file():
        return root
    found = sorted(root.rglob(HPARAMS), key=lambda p: (len(p.parts), str(p)))
    if not found:
        raise ModelDirError(f"{root}: no {HPARAMS} (expected a speechbrain model dir)")
    depth = len(found[0].parts)
    return [p for p in found if len(p.parts) == depth][-1].parent


def load_pretrained(cls, model_dir: Path, device: str, **kwargs):
    """``cls.from_hparams`` on ``model_dir`` (found with ``find_model_dir``), on ``device``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    model_dir = find_model_dir(model_dir).resolve()
    try:
        return cls.from_hparams(source=str(model_dir), savedir=str(model_dir), hparams_file=HPARAMS,
                                overrides={"pretrained_path": str(model_dir)}, overrides_must_match=False,
                                run_opts={"device": device}, **kwargs)
    except (OSError, KeyError, ValueError) as err:
        raise ModelDirError(f"{model_dir}: cannot load the speechbrain model: {str(err).splitlines()[0]}") from None
