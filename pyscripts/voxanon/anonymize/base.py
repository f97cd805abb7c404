"""The anonymizer interface shared by every system, the system registry, and seeded randomness.

A system lives in ``voxanon.anonymize.<name>`` and defines
  * ``Params``: a frozen dataclass, read from the conf's ``anonymizer.params`` mapping;
  * ``build(params: Params, ctx: BuildContext) -> Anonymizer``.
"""
from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from voxanon.audio import Audio
from voxanon.config import from_dict
from voxanon.registry import ModelError

SYSTEMS = {
    "knnvc": "voxanon.anonymize.knnvc",
    "wavlm_conv": "voxanon.anonymize.wavlm_conv",
    "asr_tts": "voxanon.anonymize.asr_tts",
    "mcadams": "voxanon.anonymize.mcadams",
    "admixture": "voxanon.anonymize.admixture",
}


@dataclass(frozen=True)
class Utterance:
    id: str
    speaker: str
    audio: Audio  # 16 kHz mono
    gender: str | None = None  # "m" / "f" when spk2gender exists


@dataclass(frozen=True)
class Converted:
    audio: Audio  # 16 kHz mono
    # What was chosen for this utterance (target speakers, system, factors). It can undo the
    # anonymization, so it is written only to the owner-only record dir, never the data dir.
    record: dict[str, Any] = field(default_factory=dict)


class BuildError(ModelError):
    """A system (an admixture part) could not be built: the job fails once with this, not per utterance."""


class Anonymizer(Protocol):
    def __call__(self, utt: Utterance) -> Converted: ...


@dataclass(frozen=True)
class BuildContext:
    seed: int
    device: str  # "cpu", "cuda", "cuda:1", ...
    work_dir: Path  # cache for this system's prepared data (matching sets, transcripts, ...)


def utt_rng(seed: int, utt_id: str, *salt: str) -> np.random.Generator:
    """A generator determined by the seed and the utterance id only, so the choices for an
    utterance are the same whatever job, order or machine processes it."""
    digest = hashlib.sha256("\x1f".join((str(seed), utt_id, *salt)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def system_module(name: str):
    if name not in SYSTEMS:
        raise ValueError(f"unknown anonymization system {name!r}; known: {', '.join(sorted(SYSTEMS))}")
    return importlib.import_module(SYSTEMS[name])


def build_system(name: str, params: dict | None, ctx: BuildContext, where: str = "anonymizer.params") -> Anonymizer:
    module = system_module(name)
    return module.build(from_dict(module.Params, params or {}, where), ctx)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
