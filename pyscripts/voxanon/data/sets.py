"""The ``data`` section: which corpus recipe prepares the Kaldi dirs, and what each set is for."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class DataConfig:
    # Who builds the dirs (local/prepare_data.sh): mini (the embedded corpus, or --data) or vpc2024
    recipe: Literal["mini", "vpc2024"] = "mini"
    options: dict = field(default_factory=dict)  # the recipe's own settings (corpus paths, ...)
    # Sets with enrolls/trials: anonymized, then attacked (EER) and transcribed (WER).
    eval_sets: tuple[str, ...] = ()
    # The attacker's training set: anonymized, then the semi-informed ASV trains on it.
    asv_train_set: str = ""
    # Emotion-labelled sets (utt2emo): anonymized, then scored for UAR.
    emotion_sets: tuple[str, ...] = ()
    # kNN-VC target speakers (not anonymized).
    target_pool: str = ""

    @property
    def anonymized_sets(self) -> tuple[str, ...]:
        sets = [*self.eval_sets, *([self.asv_train_set] if self.asv_train_set else []), *self.emotion_sets]
        return tuple(dict.fromkeys(sets))
