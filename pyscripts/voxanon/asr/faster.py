"""faster-whisper (CTranslate2) backend: a local model dir, never a hub download.

Utterances up to 30 s are one window each, as in the openai-whisper backend: their log-mel is cut
to the audio's frames and zero-padded to 30 s as ``WhisperModel.transcribe`` does, and
``batch_size`` of them are encoded and decoded together (beam search at temperature 0 runs batched
in CTranslate2), with timestamp tokens as ``transcribe`` (the text is every segment's; where
``transcribe`` would decode the window's unfinished last segment again, this keeps the first
decoding). Decoding uses the guards of ``voxanon.asr.guard``
(openai-whisper's ``transcribe`` thresholds and temperature fallback): each temperature step
re-decodes, together, only the utterances that still need it, by sampling ``BEST_OF`` candidates.
``transcribe`` is a batch of one, so a batch gives the text of one-at-a-time decoding.
Longer utterances go through ``WhisperModel.transcribe`` with the same guards.
(faster-whisper's own ``BatchedInferencePipeline`` has no temperature fallback, hence not used.)
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from voxanon.asr import AsrConfig, guard
from voxanon.audio import SAMPLE_RATE, Audio, resample

MIN_SAMPLES = SAMPLE_RATE // 100  # shorter than 10 ms: nothing to recognize
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # one Whisper window
MAX_INITIAL_TIMESTAMP = 50  # in 20 ms steps: transcribe's max_initial_timestamp of 1 s


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
        self.multilingual = self.model.model.is_multilingual
        self.language = config.language or (None if self.multilingual else "en")  # None: detected per utterance
        if not self.multilingual and self.language != "en":
            raise ValueError(f"{model_dir} is an English-only model; asr.language {self.language!r} is not possible")
        self._tokenizers = {}

    def _tokenizer(self, language: str):
        from faster_whisper.tokenizer import Tokenizer

        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(self.model.hf_tokenizer, self.multilingual, task="transcribe",
                                                   language=language)
        return self._tokenizers[language]

    def transcribe(self, audio: Audio) -> str:
        return self.transcribe_batch([audio])[0]

    def _generate(self, features: np.ndarray, prompts: list[list[int]], temperature: float) -> list[tuple]:
        """(tokens, avg_logprob, no_speech_prob) per window, decoded at ``temperature``."""
        if temperature > 0:
            kwargs = {"beam_size": 1, "num_hypotheses": guard.BEST_OF, "sampling_topk": 0,
                      "sampling_temperature": temperature}
        else:
            kwargs = {"beam_size": self.config.beam_size}
        results = self.model.model.generate(
            self.model.encode(features), prompts, max_length=self.model.max_length, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True, suppress_tokens=[-1],
            max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP, **kwargs)
        out = []
        for r in results:  # as WhisperModel.generate_with_fallback: the best hypothesis, length penalty 1
            tokens = r.sequences_ids[0]
            out.append((tokens, r.scores[0] * len(tokens) / (len(tokens) + 1), r.no_speech_prob))
        return out

    def decode_batch(self, samples: list[np.ndarray]) -> list[str]:
        """The guarded text of each utterance of at most 30 s, decoded together."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.transcribe import get_compression_ratio

        mels = []
        for s in samples:  # as WhisperModel.transcribe: the window's frames, zero-padded to 30 s
            mel = self.model.feature_extractor(s)
            mels.append(pad_or_trim(mel[:, :mel.shape[-1] - 1]))
        features = np.stack(mels).astype(np.float32)
        languages = [self.language] * len(samples)
        if self.language is None:
            detected = self.model.model.detect_language(self.model.encode(features))
            languages = [d[0][0][2:-2] for d in detected]  # "<|en|>" -> "en"
        prompts = [self.model.get_prompt(self._tokenizer(lang), []) for lang in languages]
        decoded: list[tuple] = [()] * len(samples)
        texts = [""] * len(samples)
        todo = list(range(len(samples)))
        for t in guard.TEMPERATURES:
            for i, result in zip(todo, self._generate(features[todo], [prompts[i] for i in todo], t)):
                decoded[i] = result
                texts[i] = self._tokenizer(languages[i]).decode(result[0]).strip()
            todo = [i for i in todo
                    if guard.needs_fallback(decoded[i][1], get_compression_ratio(texts[i]), decoded[i][2])]
            if not todo:
                break
        return ["" if guard.is_no_speech(d[1], d[2]) else text for d, text in zip(decoded, texts)]

    def _transcribe_long(self, samples: np.ndarray) -> str:
        segments, _ = self.model.transcribe(
            samples, language=self.language, beam_size=self.config.beam_size,
            best_of=guard.BEST_OF, temperature=list(guard.TEMPERATURES),
            compression_ratio_threshold=guard.COMPRESSION_RATIO_THRESHOLD,
            log_prob_threshold=guard.LOGPROB_THRESHOLD, no_speech_threshold=guard.NO_SPEECH_THRESHOLD)
        return " ".join(s.text.strip() for s in segments).strip()

    def transcribe_batch(self, audios: list[Audio]) -> list[str]:
        samples = [resample(a, SAMPLE_RATE).samples for a in audios]
        texts = [""] * len(samples)
        speech = [i for i, s in enumerate(samples) if len(s) >= MIN_SAMPLES and not guard.is_silent(s)]
        short = [i for i in speech if len(samples[i]) <= WINDOW_SAMPLES]
        for start in range(0, len(short), self.config.batch_size):
            batch = short[start:start + self.config.batch_size]
            for i, text in zip(batch, self.decode_batch([samples[i] for i in batch])):
                texts[i] = text
        for i in speech:
            if len(samples[i]) > WINDOW_SAMPLES:
                texts[i] = self._transcribe_long(samples[i])
        return texts
