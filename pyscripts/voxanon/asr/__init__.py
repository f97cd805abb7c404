"""Speech recognition behind one small interface: the VPC's speechbrain model and two Whisper backends.

    asr = load_asr(AsrConfig(backend="faster_whisper", model="whisper-base-ct2"), device="cpu")
    asr.transcribe(audio)             # Audio (any rate; resampled to 16 kHz) -> str
    asr.transcribe_batch([a1, a2])    # -> [str, str]; batched where the backend allows

* ``speechbrain``: a speechbrain ``EncoderASR`` model dir (registry ``vpc-asr``: the VPC 2024
  ASR_eval, wav2vec2-CTC on LibriSpeech 960 h), loaded offline from its own hyperparams;
  ``transcribe_batch`` decodes one zero-padded batch (the VPC's batching), by default without a
  padding mask for wav2vec2, as the release does (``wav2vec2_padding_mask``).
* ``faster_whisper``: a CTranslate2 model dir (registry name such as ``whisper-base-ct2``,
  ``whisper-tiny.en-ct2``, or a local dir); ``compute_type`` and ``cpu_threads`` apply.
* ``whisper``: openai-whisper with a checkpoint ``.pt`` (registry name such as
  ``whisper-medium.en``, or a local ``.pt``), loaded with ``torch.load(weights_only=True)``.
  Utterances up to 30 s are decoded ``batch_size`` at a time; longer ones one by one.

Models are resolved through ``voxanon.registry``; nothing is downloaded here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from voxanon.audio import Audio


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


class Asr(Protocol):
    def transcribe(self, audio: Audio) -> str: ...

    def transcribe_batch(self, audios: list[Audio]) -> list[str]: ...


def load_asr(config: AsrConfig, device: str = "cpu") -> Asr:
    """The backend ``config`` names, with its model resolved through the registry."""
    from voxanon.registry import resolve_model

    path = resolve_model(config.model)
    if config.backend == "speechbrain":
        from voxanon.asr.speechbrain_asr import SpeechBrainAsr

        return SpeechBrainAsr(path, config, device)
    if config.backend == "faster_whisper":
        from voxanon.asr.faster import FasterWhisperAsr

        return FasterWhisperAsr(path, config, device)
    from voxanon.asr.torch_whisper import OpenAiWhisperAsr

    return OpenAiWhisperAsr(path, config, device)
