"""Speech recognition settings (``eval.asr``, an ``asr_tts`` system's ``asr``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class AsrConfig:
    backend: Literal["speechbrain", "faster_whisper", "whisper"] = "faster_whisper"
    model: str = "whisper-base-ct2"  # registry name or local path (speechbrain dir / CT2 dir / .pt)
    language: str = "en"  # forced decoding language ("" = detect; multilingual models only)
    beam_size: int = 5
    batch_size: int = 8  # speechbrain, whisper backends: utterances per decoding batch (VPC: 8)
    compute_type: str = "default"  # faster_whisper: default, int8, float16, float32, ...
    cpu_threads: int = 0  # 0 = the library's default
    # speechbrain: True gives the wav2vec2 lobe the batch's padding mask (speechbrain >= 1.0).
    # False (default) runs it as the VPC 2024 release (speechbrain 0.5.16) does: on the zero-padded
    # batch without a mask, the relative lengths used only for CTC decoding.
    wav2vec2_padding_mask: bool = False

    def __post_init__(self):
        if self.beam_size < 1 or self.batch_size < 1 or self.cpu_threads < 0:
            raise ValueError("asr: beam_size and batch_size must be >= 1, cpu_threads >= 0")
