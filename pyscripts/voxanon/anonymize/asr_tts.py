"""Cascaded anonymization: speech recognition, then speech synthesis in a random voice.

Paper §2.3 (Table 1, ID 4): Whisper medium.en transcribes the utterance and Piper VITS
``en_US-libritts_r-medium`` (904 speakers) speaks the transcript with a speaker drawn at random
per utterance. Nothing of the input's voice survives except what the words carry; prosody,
emotion and timing are lost too (the price paid in UAR).

* The speaker is drawn from ``utt_rng(seed, utt, "asr_tts")``: the same utterance gets the same
  speaker on any job or machine. (VITS also samples noise inside the ONNX graph, so the
  waveform itself is not bit-identical between runs.)
* Transcripts are cached in ``<work_dir>/asr_tts/transcripts.<asr fingerprint>/<utt>.json``
  keyed by a hash of the input audio; a re-run reuses them and only synthesizes.
* An empty transcript (no speech found by ``voxanon.asr.guard``, or nothing speakable after
  normalization) gives silence of the input's length and a logged warning: the utterance keeps
  its id and duration, the attacker's training drops it as silent, WER counts its words deleted.
* The record holds the speaker (``piper:<voice>[:<speaker>]`` or ``espeak:<voice>``) and the
  transcript.

The default ``Params`` use only models that ship in packages: faster-whisper base, the Piper
``joe`` voice and six espeak-ng voice variants (seven voices to draw from).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from voxanon.anonymize.base import BuildContext, Converted, Utterance, utt_rng
from voxanon.asr import AsrConfig, load_asr
from voxanon.audio import Audio
from voxanon.config import fingerprint
from voxanon.data.kaldi import atomic_write_text
from voxanon.tts import Tts, TtsConfig

log = logging.getLogger("voxanon.asr_tts")

OFFLINE_ESPEAK_VOICES = ("en-us+f2", "en-us+f4", "en-us+m3", "en-us+m7", "en+f3", "en+m1")


@dataclass(frozen=True)
class Params:
    asr: AsrConfig = field(default_factory=AsrConfig)
    tts: TtsConfig = field(default_factory=lambda: TtsConfig(espeak_voices=OFFLINE_ESPEAK_VOICES))


class TranscriptCache:
    """One JSON file per utterance: ``{"audio_sha256": ..., "text": ...}``; a transcript is
    reused only for the same audio."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, utt: str) -> Path:
        return self.root / f"{quote(utt, safe='')}.json"

    def get(self, utt: str, audio_sha256: str) -> str | None:
        path = self._path(utt)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry.get("text") if entry.get("audio_sha256") == audio_sha256 else None

    def put(self, utt: str, audio_sha256: str, text: str) -> None:
        atomic_write_text(self._path(utt), json.dumps({"audio_sha256": audio_sha256, "text": text}) + "\n")


class AsrTtsAnonymizer:
    def __init__(self, params: Params, ctx: BuildContext):
        self.params = params
        self.seed = ctx.seed
        self.asr = load_asr(params.asr, ctx.device)
        self.tts = Tts(params.tts, ctx.device)
        self.cache = TranscriptCache(Path(ctx.work_dir) / "asr_tts" / f"transcripts.{fingerprint(params.asr)}")
        log.info("asr_tts: ASR %s (%s), %d TTS speakers to draw from", params.asr.model, params.asr.backend,
                 len(self.tts.speakers))

    def transcript(self, utt: Utterance) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(utt.audio.samples).tobytes()).hexdigest()
        text = self.cache.get(utt.id, digest)
        if text is None:
            text = self.asr.transcribe(utt.audio)
            self.cache.put(utt.id, digest, text)
        return text

    def __call__(self, utt: Utterance) -> Converted:
        text = self.transcript(utt)
        speaker = self.tts.choose(utt_rng(self.seed, utt.id, "asr_tts"), utt.gender)
        audio = self.tts.synthesize(text, speaker)
        if len(audio.samples) == 0:
            log.warning("utterance %s: empty transcript (%r); writing %.2f s of silence", utt.id, text,
                        utt.audio.duration)
            audio = Audio(np.zeros(len(utt.audio.samples), np.float32), utt.audio.sample_rate)
        return Converted(audio, {"system": "asr_tts", "speaker": speaker.label, "transcript": text})


def build(params: Params, ctx: BuildContext) -> AsrTtsAnonymizer:
    return AsrTtsAnonymizer(params, ctx)
