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

from typing import TYPE_CHECKING, Protocol

from voxanon.asr.config import AsrConfig

if TYPE_CHECKING:
    from voxanon.audio import Audio


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
