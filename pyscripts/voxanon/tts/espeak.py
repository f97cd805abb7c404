"""espeak-ng voices (Debian ``espeak-ng``): formant synthesis, no weights, always offline.

A voice is ``<language>+<variant>`` (``en-us+f3``, ``en-us+m7``; list variants with
``espeak-ng --voices=variant``). Text goes in on stdin, never through a shell.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess

import numpy as np
import soundfile as sf

from voxanon.audio import Audio


class EspeakBackend:
    def __init__(self, rate_wpm: int = 165):
        self.binary = shutil.which("espeak-ng")
        if self.binary is None:
            raise FileNotFoundError("espeak-ng not found on PATH; install the Debian package espeak-ng "
                                    "(apt-get install espeak-ng) or set tts.espeak_voices: []")
        self.rate_wpm = rate_wpm
        self._listings: dict[str, set[str]] = {}

    def _listing(self, kind: str) -> set[str]:
        """Lower-cased names espeak-ng accepts for ``--voices`` (languages, voice names, files,
        other-language codes) or ``--voices=variant`` (variant names and files)."""
        if kind in self._listings:
            return self._listings[kind]
        arg = "--voices" if kind == "language" else "--voices=variant"
        lines = subprocess.run([self.binary, arg], capture_output=True, text=True, timeout=60).stdout.splitlines()[1:]
        names = set()
        for line in lines:
            cols = line.split()
            if len(cols) >= 5:
                names.update({cols[1], cols[3], cols[4], cols[4].rsplit("/", 1)[-1]})
                names.update(re.findall(r"\((\S+) \d+\)", line))
        self._listings[kind] = {n.lower() for n in names}
        return self._listings[kind]

    def check_voice(self, voice: str) -> None:
        """Fail early on a voice espeak-ng does not know: it would silently fall back to its
        default voice (exit status 0) when reading text from stdin."""
        language, _, variant = voice.partition("+")
        if language.lower() not in self._listing("language"):
            raise ValueError(f"espeak-ng voice {voice!r}: unknown language {language!r} (see espeak-ng --voices)")
        if variant and variant.lower() not in self._listing("variant"):
            raise ValueError(f"espeak-ng voice {voice!r}: unknown variant {variant!r} (see espeak-ng --voices=variant)")

    def synthesize(self, sentence: str, voice: str) -> Audio:
        """One sentence -> float32 mono audio at espeak-ng's rate (22.05 kHz)."""
        proc = subprocess.run([self.binary, "--stdout", "-v", voice, "-s", str(self.rate_wpm)],
                              input=sentence.encode("utf-8"), capture_output=True, timeout=120)
        if proc.returncode != 0 or not proc.stdout:
            raise RuntimeError(f"espeak-ng voice {voice!r} failed ({proc.returncode}): {proc.stderr.decode()[-200:]}")
        data, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
        return Audio(np.ascontiguousarray(data.mean(axis=1)), int(rate))
