"""Cascaded anonymization: speech recognition, then speech synthesis in a random voice.

Paper §2.3 (Table 1, ID 4): Whisper medium.en transcribes the utterance and Piper VITS
``en_US-libritts_r-medium`` (904 speakers) speaks the transcript with a speaker drawn at random
per utterance. Nothing of the input's voice survives except what the words carry; prosody,
emotion and timing are lost too (the price paid in UAR).

* The speaker is drawn from ``utt_rng(seed, utt, "asr_tts")``: the same utterance gets the same
  speaker on any job or machine. (VITS also samples noise inside the ONNX graph, so the
  waveform itself is not bit-identical between runs.)
* Transcripts are cached under ``transcripts`` (default ``exp/asr_transcripts``, beside
  ``exp/targets``), in ``<settings hash>/<sha256 of the 16 kHz audio>.json``: keyed on the audio's
  content and the settings that change the text (model, language, beam, compute type, the
  decoding guards; not threads or batch size), never on the utterance id or the experiment, so
  every experiment, re-run and admixture p that meets the same audio with the same ASR reuses
  the transcript (Whisper medium transcribes train-clean-360 once). Owner-only, like the records.
* Batches: the runner hands over ``asr.batch_size`` utterances at a time (length-sorted out of
  ``bucket`` x that many); those without a cached transcript are decoded together
  (``transcribe_batch``: batched on a GPU), then each is spoken. The TTS models are loaded once.
* An empty transcript (no speech found by ``voxanon.asr.guard``, or nothing speakable after
  normalization) gives silence of the input's length and a logged warning: the utterance keeps
  its id and duration, the attacker's training drops it as silent, WER counts its words deleted.
* The record holds the speaker (``piper:<voice>[:<speaker>]``, ``kokoro:<voice>`` or
  ``espeak:<voice>``) and the transcript.

The default ``Params`` use only models that ship in packages: faster-whisper base, the Piper
``joe`` voice and four of the five Kokoro-82M voices, at speed 0.85 (five voices to draw from).
No espeak-ng voice: Whisper base misheard them (TIMIT: 33 % WER on a pool of six espeak voices
and joe, against 9 % on the originals; bench/results/asr_tts_timit.md has this pool's figures).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from voxanon.anonymize.base import BuildContext, Converted, Utterance
from voxanon.anonymize.params import AsrTtsParams as Params
from voxanon.asr import AsrConfig, guard, load_asr
from voxanon.audio import Audio
from voxanon.config import fingerprint, to_dict
from voxanon.fileio import atomic_write_text
from voxanon.rng import utt_rng
from voxanon.tts.synth import Tts, job_threads

log = logging.getLogger("voxanon.asr_tts")

def transcript_settings(config: AsrConfig) -> dict:
    """What decides a transcript: the ASR settings but threads and batch size, and the guards."""
    guards = (guard.TEMPERATURES, guard.COMPRESSION_RATIO_THRESHOLD, guard.LOGPROB_THRESHOLD,
              guard.NO_SPEECH_THRESHOLD, guard.BEST_OF, guard.SILENCE_DBFS)
    return to_dict({"asr": replace(config, cpu_threads=0, batch_size=1), "guards": guards})


class TranscriptCache:
    """``<root>/<settings hash>/<audio sha256>.json`` = ``{"text": ...}``; ``settings.json`` beside says
    which ASR settings the dir holds."""

    def __init__(self, root: Path, config: AsrConfig):
        settings = transcript_settings(config)
        self.dir = root / fingerprint(settings)
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.chmod(0o700)  # transcripts are the content of private speech
        if not (self.dir / "settings.json").exists():
            atomic_write_text(self.dir / "settings.json", json.dumps(settings, sort_keys=True) + "\n")

    def get(self, audio_sha256: str) -> str | None:
        try:
            return json.loads((self.dir / f"{audio_sha256}.json").read_text(encoding="utf-8"))["text"]
        except (OSError, ValueError, KeyError):
            return None

    def put(self, audio_sha256: str, text: str) -> None:
        atomic_write_text(self.dir / f"{audio_sha256}.json", json.dumps({"text": text}) + "\n")


class AsrTtsAnonymizer:
    def __init__(self, params: Params, ctx: BuildContext):
        self.params = params
        self.seed = ctx.seed
        # cpu_threads 0: the job's cores (voxanon.tts.synth.job_threads), for the ASR as for the TTS
        self.asr = load_asr(replace(params.asr, cpu_threads=job_threads(params.asr.cpu_threads)), ctx.device)
        self.tts = Tts(params.tts, ctx.device)
        self.cache = TranscriptCache(Path(params.transcripts), params.asr)
        self.batch_size, self.bucket = params.batch_size, params.bucket
        log.info("asr_tts: ASR %s (%s), %d TTS speakers to draw from", params.asr.model, params.asr.backend,
                 len(self.tts.speakers))

    def transcripts(self, utts: list[Utterance]) -> list[str]:
        """From the cache, else decoded together (``transcribe_batch``) and cached."""
        digests = [hashlib.sha256(np.ascontiguousarray(u.audio.samples).tobytes()).hexdigest() for u in utts]
        texts = [self.cache.get(d) for d in digests]
        todo = [i for i, text in enumerate(texts) if text is None]
        for i, text in zip(todo, self.asr.transcribe_batch([utts[i].audio for i in todo]) if todo else []):
            self.cache.put(digests[i], text)
            texts[i] = text
        return texts

    def convert_batch(self, utts: list[Utterance]) -> list[Converted | Exception]:
        """Transcripts decoded as one batch, then each utterance spoken (a synthesis failure is that
        utterance's alone)."""
        results: list[Converted | Exception] = []
        for utt, text in zip(utts, self.transcripts(utts)):
            try:
                results.append(self.speak(utt, text))
            except Exception as err:  # the runner reports it for this utterance
                results.append(err)
        return results

    def __call__(self, utt: Utterance) -> Converted:
        return self.speak(utt, self.transcripts([utt])[0])

    def speak(self, utt: Utterance, text: str) -> Converted:
        speaker = self.tts.choose(utt_rng(self.seed, utt.id, "asr_tts"), utt.gender)
        audio = self.tts.synthesize(text, speaker)
        if len(audio.samples) == 0:
            log.warning("utterance %s: empty transcript (%r); writing %.2f s of silence", utt.id, text,
                        utt.audio.duration)
            audio = Audio(np.zeros(len(utt.audio.samples), np.float32), utt.audio.sample_rate)
        return Converted(audio, {"system": "asr_tts", "speaker": speaker.label, "transcript": text})


def build(params: Params, ctx: BuildContext) -> AsrTtsAnonymizer:
    return AsrTtsAnonymizer(params, ctx)
