"""The ``features`` section of an experiment conf: WavLM layer features (run.sh stage 2)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# In a features dir: the checkpoint, layer, dtype and VAD level that made its features (written by
# voxanon.bin.make_wavlm; read by the matching sets and the converter's training-feature check).
FEATS_STAMP = ".wavlm.json"


@dataclass(frozen=True)
class FeaturesConfig:
    dir: str = "exp/feats"  # features of set S go to <dir>/S/feats.scp (shared by experiments)
    checkpoint: str = "wavlm-large"  # registry name or local path (WavLM-Large.pt or a torchaudio state dict)
    layer: int = 6  # transformer layer whose output is taken (1-based; kNN-VC uses 6)
    # Data sets (names under the data root) to extract; empty = what the system needs
    # (the data.target_pool for knnvc and wavlm_conv, nothing for the others).
    sets: tuple[str, ...] = ()
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    chunk_seconds: float = 30.0  # long audio is cut into chunks of this length ...
    context_seconds: float = 4.0  # ... that overlap by this much on each side (seams do not show)
    batch_seconds: float = 120.0  # padded audio per forward pass (lower it on a small GPU)
    # How features are stored: float32 Kaldi matrices, or float16 (half the disk; kaldiio-only
    # .npy entries in the ark, relative rounding error <= 2^-11; see docs/throughput.md).
    dtype: Literal["float32", "float16"] = "float32"  # voxanon.data.features.DTYPES
    # Silence trimmed from both ends of every data.target_pool utterance before WavLM, as the
    # kNN-VC reference builds its matching sets: sox's VAD (torchaudio.functional.vad) at this
    # trigger level, on the audio and on the reversed audio. 0 = no trimming. Other sets: never.
    pool_vad_trigger_level: float = 7.0

    def __post_init__(self):
        if self.pool_vad_trigger_level < 0:
            raise ValueError(f"pool_vad_trigger_level must be >= 0, got {self.pool_vad_trigger_level}")
        if self.layer < 1:
            raise ValueError(f"layer must be >= 1, got {self.layer}")
        if self.chunk_seconds <= 2 * self.context_seconds:
            raise ValueError(f"chunk_seconds ({self.chunk_seconds}) must exceed 2 x context_seconds ({self.context_seconds})")
