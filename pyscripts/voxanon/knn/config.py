"""The ``targets`` section of an experiment conf: kNN-VC matching sets (run.sh stage 3)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TargetsConfig:
    # Where stage 3 writes the matching sets of the conf's data.target_pool: <dir>/<pool>.
    # Shared by every experiment whose pool, WavLM checkpoint and settings below are the same.
    dir: str = "exp/targets"
    speakers: tuple[str, ...] = ()  # restrict the pool to these speakers; empty = all
    min_minutes: float = 5.0  # warn about targets with less speech than this (quality saturates ~5 min)
    max_minutes: float = 0.0  # keep at most this much speech per target (0 = all), bounds memory for big pools
    # Leading/trailing silence: frames more than trim_db below the utterance's loudest frame, or
    # quieter than trim_floor_dbfs, are cut from both ends of every target utterance.
    trim_db: float = 40.0
    trim_floor_dbfs: float = -60.0

    def __post_init__(self):
        if self.min_minutes < 0 or self.max_minutes < 0:
            raise ValueError("min_minutes and max_minutes must be >= 0")
        if self.trim_db <= 0:
            raise ValueError(f"trim_db must be > 0, got {self.trim_db}")
