"""openai-whisper backend: a checkpoint file (``{"dims": ..., "model_state_dict": ...}``).

``whisper.load_model`` is only ever given a path (a bare name like ``medium.en`` would make it
download); for a path it reads the checkpoint with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from voxanon.asr import AsrConfig
from voxanon.audio import SAMPLE_RATE, Audio, resample

MIN_SAMPLES = SAMPLE_RATE // 100  # shorter than 10 ms: nothing to recognize


class OpenAiWhisperAsr:
    def __init__(self, checkpoint: Path, config: AsrConfig, device: str = "cpu"):
        import torch
        import whisper

        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"{checkpoint}: not an openai-whisper checkpoint file (.pt)")
        if config.cpu_threads:
            torch.set_num_threads(config.cpu_threads)
        self.config = config
        self.model = whisper.load_model(str(checkpoint), device=device).eval()
        self.fp16 = device.startswith("cuda")
        language = config.language or None
        if not self.model.is_multilingual and language not in (None, "en"):
            raise ValueError(f"{checkpoint} is an English-only model; asr.language {language!r} is not possible")
        self.options = whisper.DecodingOptions(language=language, beam_size=config.beam_size,
                                               without_timestamps=True, fp16=self.fp16)

    def transcribe(self, audio: Audio) -> str:
        return self.transcribe_batch([audio])[0]

    def transcribe_batch(self, audios: list[Audio]) -> list[str]:
        import torch
        import whisper

        samples = [resample(a, SAMPLE_RATE).samples for a in audios]
        texts = [""] * len(samples)
        short = [i for i, s in enumerate(samples) if MIN_SAMPLES <= len(s) <= whisper.audio.N_SAMPLES]
        for start in range(0, len(short), self.config.batch_size):
            batch = short[start:start + self.config.batch_size]
            mels = torch.stack([
                whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(samples[i])),
                                            n_mels=self.model.dims.n_mels)
                for i in batch]).to(self.model.device)
            with torch.inference_mode():
                results = whisper.decode(self.model, mels, self.options)
            for i, result in zip(batch, results):
                texts[i] = result.text.strip()
        for i, s in enumerate(samples):  # longer than 30 s: whisper's own sliding window
            if len(s) > whisper.audio.N_SAMPLES:
                # temperature 0 only, like the batched path (no sampling fallback)
                result = self.model.transcribe(np.ascontiguousarray(s), language=self.options.language,
                                               beam_size=self.config.beam_size, fp16=self.fp16, temperature=0.0)
                texts[i] = result["text"].strip()
        return texts
