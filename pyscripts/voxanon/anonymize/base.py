"""The anonymizer interface shared by every system, and the system registry.

A system lives in ``voxanon.anonymize.<name>`` and defines
  * ``Params``: a frozen dataclass, read from the conf's ``anonymizer.params`` mapping;
  * ``build(params: Params, ctx: BuildContext) -> Anonymizer``.

A system that converts several utterances faster together (the neural ones) also has
``convert_batch(utts) -> [Converted | Exception, ...]`` and ``batch_size`` / ``bucket`` (see
:class:`BatchAnonymizer`); the runner then hands it length-sorted batches through
:func:`convert_all`. Its per-utterance randomness is keyed on the utterance id, never on the batch,
so batching does not change what is drawn.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from voxanon.anonymize.config import params_class
from voxanon.anonymize.params import SYSTEMS, Precision
from voxanon.audio import Audio
from voxanon.config import from_dict
from voxanon.features.config import FeaturesConfig
from voxanon.registry import ModelError

log = logging.getLogger("voxanon.anonymize")



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


class BatchAnonymizer(Anonymizer, Protocol):
    batch_size: int  # utterances per convert_batch call
    bucket: int  # the runner reads bucket x batch_size utterances ahead and sorts them by length

    def convert_batch(self, utts: list[Utterance]) -> list[Converted | Exception]:
        """One result per utterance, in order: a failure of one utterance in its place; raising
        fails the batch, whose utterances are then converted one by one."""
        ...


def convert_all(anonymizer: Anonymizer, utts: list[Utterance]) -> list[Converted | Exception]:
    """Every utterance converted, in one batch when the system batches; an utterance that fails
    gets its exception in its place and the others are still converted. A BuildError (the system
    cannot be built) is raised: it would fail every utterance."""
    batch = getattr(anonymizer, "convert_batch", None)
    if batch is not None and len(utts) > 1:
        try:
            return batch(utts)
        except BuildError:
            raise
        except Exception as err:
            log.warning("a batch of %d utterances failed (%s); converting them one by one", len(utts),
                        str(err).splitlines()[0] if str(err) else type(err).__name__)
    results: list[Converted | Exception] = []
    for utt in utts:
        try:
            results.append(anonymizer(utt))
        except BuildError:
            raise
        except Exception as err:
            results.append(err)
    return results


@dataclass(frozen=True)
class BuildContext:
    seed: int
    device: str  # "cpu", "cuda", "cuda:1", ...
    work_dir: Path  # cache for this system's prepared data (matching sets, transcripts, ...)
    # The conf's features section: its chunk_seconds, context_seconds and batch_seconds apply to
    # the source audio's WavLM features too.
    features: FeaturesConfig = FeaturesConfig()


def autocast(device: str, precision: Precision) -> contextlib.AbstractContextManager:
    """Mixed precision for a model's forward pass (matmuls and convs in ``precision``, norms and
    softmax in float32); float32 changes nothing."""
    import torch

    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=getattr(torch, precision))


def system_module(name: str):
    if name not in SYSTEMS:
        raise ValueError(f"unknown anonymization system {name!r}; known: {', '.join(sorted(SYSTEMS))}")
    return importlib.import_module(SYSTEMS[name])


def build_system(name: str, params: dict | None, ctx: BuildContext, where: str = "anonymizer.params") -> Anonymizer:
    module = system_module(name)
    return module.build(from_dict(params_class(name), params or {}, where), ctx)
