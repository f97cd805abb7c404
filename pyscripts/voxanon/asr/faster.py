"""faster-whisper (CTranslate2) backend: a local model dir, never a hub download.

Decoding uses the guards of ``voxanon.asr.guard`` (openai-whisper's ``transcribe`` thresholds and
temperature fallback, passed explicitly rather than left to the library's defaults)."""
from __future__ import annotations

import logging
from pathlib import Path

from voxanon.asr import AsrConfig, guard
from voxanon.audio import SAMPLE_RATE, Audio, resample

MIN_SAMPLES = SAMPLE_RATE // 100  # shorter than 10 ms: nothing to recognize


class FasterWhisperAsr:
    def __init__(self, model_dir: Path, config: AsrConfig, device: str = "cpu"):
        from faster_whisper import WhisperModel

        if not (Path(model_dir) / "model.bin").is_file():
            raise FileNotFoundError(f"{model_dir}: not a CTranslate2 Whisper model dir (no model.bin)")
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # not a line per utterance
        kind, _, index = device.partition(":")
        self.config = config
        self.model = WhisperModel(str(model_dir), device=kind, device_index=int(index or 0),
                                  compute_type=config.compute_type, cpu_threads=config.cpu_threads,
                                  local_files_only=True)

    def transcribe(self, audio: Audio) -> str:
        samples = resample(audio, SAMPLE_RATE).samples
        if len(samples) < MIN_SAMPLES or guard.is_silent(samples):
            return ""
        segments, _ = self.model.transcribe(
            samples, language=self.config.language or None, beam_size=self.config.beam_size,
            best_of=guard.BEST_OF, temperature=list(guard.TEMPERATURES),
            compression_ratio_threshold=guard.COMPRESSION_RATIO_THRESHOLD,
            log_prob_threshold=guard.LOGPROB_THRESHOLD, no_speech_threshold=guard.NO_SPEECH_THRESHOLD)
        return " ".join(s.text.strip() for s in segments).strip()

    def transcribe_batch(self, audios: list[Audio]) -> list[str]:
        # CTranslate2 already spreads one utterance over its threads; utterances go one by one
        # (faster-whisper's batched pipeline has no temperature fallback, so batch_size does not apply).
        return [self.transcribe(a) for a in audios]
