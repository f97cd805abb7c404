"""The ``targets`` section of an experiment conf: kNN-VC matching sets (run.sh stage 3)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TargetsConfig:
    # Where stage 3 writes the matching sets of the conf's data.target_pool: <dir>/<pool>.
    # Shared by every experiment whose pool, WavLM features and settings below are the same.
    dir: str = "exp/targets"
    speakers: tuple[str, ...] = ()  # restrict the pool to these speakers; empty = all
    # Targets with less speech than this (after silence trimming) are left out, with a count
    # logged: kNN-VC quality saturates at ~5 min of target speech.
    min_minutes: float = 5.0
    max_minutes: float = 0.0  # keep at most this much speech per target (0 = all), bounds memory for big pools

    def __post_init__(self):
        if self.min_minutes < 0 or self.max_minutes < 0:
            raise ValueError("min_minutes and max_minutes must be >= 0")
