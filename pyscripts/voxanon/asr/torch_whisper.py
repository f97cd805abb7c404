"""openai-whisper backend: a checkpoint file (``{"dims": ..., "model_state_dict": ...}``).

``whisper.load_model`` is only ever given a path (a bare name like ``medium.en`` would make it
download); for a path it reads the checkpoint with ``torch.load(..., weights_only=True)``.

Utterances up to 30 s are one window each: their log-mel is computed and zero-padded as
``whisper.transcribe`` does, ``batch_size`` of them go through the encoder together, and are
decoded with the guards of ``voxanon.asr.guard`` (each temperature step re-decodes only the
utterances that still need it; together when greedy, one by one for beam search or best-of). Longer ones go through ``whisper.transcribe`` itself with the same guards.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from voxanon.asr import AsrConfig, guard
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

    def decode_batch(self, samples: list[np.ndarray]) -> list:
        """One ``whisper.DecodingResult`` per utterance of at most 30 s, decoded with fallback."""
        import torch
        import whisper

        mels = []
        for s in samples:  # as transcribe: mel of the audio padded by 30 s, cut to its length, zero-padded
            mel = whisper.log_mel_spectrogram(torch.from_numpy(s), n_mels=self.model.dims.n_mels,
                                              padding=whisper.audio.N_SAMPLES)
            mels.append(whisper.pad_or_trim(mel[:, :mel.shape[-1] - whisper.audio.N_FRAMES], whisper.audio.N_FRAMES))
        with torch.inference_mode():  # the encoder, the costly part of a 30 s window, runs batched
            features = self.model.embed_audio(torch.stack(mels).to(self.model.device))
        results = [None] * len(samples)
        todo = list(range(len(samples)))
        for t in guard.TEMPERATURES:
            options = replace(self.options, temperature=t, beam_size=None if t > 0 else self.config.beam_size,
                              best_of=guard.BEST_OF if t > 0 else None)
            # whisper.decode keeps a beam or best-of group right only for one audio at a time (since
            # openai/whisper#1483 it no longer repeats the audio features per group member)
            groups = [todo] if max(options.beam_size or 1, options.best_of or 1) == 1 else [[i] for i in todo]
            with torch.inference_mode():
                for group in groups:
                    for i, result in zip(group, whisper.decode(self.model, features[group], options)):
                        results[i] = result
            todo = [i for i in todo if guard.needs_fallback(results[i].avg_logprob, results[i].compression_ratio,
                                                            results[i].no_speech_prob)]
            if not todo:
                break
        return results

    def transcribe_batch(self, audios: list[Audio]) -> list[str]:
        import whisper

        samples = [resample(a, SAMPLE_RATE).samples for a in audios]
        texts = [""] * len(samples)
        speech = [i for i, s in enumerate(samples) if len(s) >= MIN_SAMPLES and not guard.is_silent(s)]
        short = [i for i in speech if len(samples[i]) <= whisper.audio.N_SAMPLES]
        for start in range(0, len(short), self.config.batch_size):
            batch = short[start:start + self.config.batch_size]
            for i, result in zip(batch, self.decode_batch([samples[i] for i in batch])):
                if not guard.is_no_speech(result.avg_logprob, result.no_speech_prob):
                    texts[i] = result.text.strip()
        for i in speech:  # longer than 30 s: whisper's own sliding window, same guards
            if len(samples[i]) > whisper.audio.N_SAMPLES:
                result = self.model.transcribe(
                    np.ascontiguousarray(samples[i]), language=self.options.language, fp16=self.fp16,
                    beam_size=self.config.beam_size, best_of=guard.BEST_OF, temperature=guard.TEMPERATURES,
                    compression_ratio_threshold=guard.COMPRESSION_RATIO_THRESHOLD,
                    logprob_threshold=guard.LOGPROB_THRESHOLD, no_speech_threshold=guard.NO_SPEECH_THRESHOLD)
                texts[i] = result["text"].strip()
        return texts
