"""Whisper's guards against hallucinated text, as openai-whisper's ``transcribe`` applies them,
shared by both Whisper backends.

Each 30 s window is decoded at temperature 0 (beam search) and decoded again, by sampling
``BEST_OF`` candidates, at the next temperature of ``TEMPERATURES`` while the text is too
repetitive (gzip compression ratio > 2.4) or too improbable (mean token log-probability < -1),
unless the window looks like silence (no-speech probability > 0.6 with that low log-probability).
A window whose final decoding has no-speech probability > 0.6 and log-probability <= -1 gives no
text. These are the thresholds of ``whisper.transcribe`` (its CLI defaults, best_of 5 included).

They do not catch digital silence: Whisper base reads 3 s of zeros as " You" with log-probability
-0.82 (above -1), so it is kept by the rules above. Audio below ``SILENCE_DBFS`` RMS is therefore
no speech before any decoding: 16-bit speech that quiet is a few quantization steps.
"""
from __future__ import annotations

import numpy as np

TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
COMPRESSION_RATIO_THRESHOLD = 2.4
LOGPROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
BEST_OF = 5  # candidates sampled at each temperature > 0 (whisper CLI's --best_of)
SILENCE_DBFS = -70.0


def needs_fallback(avg_logprob: float, compression_ratio: float, no_speech_prob: float) -> bool:
    """Decode again at the next temperature (``decode_with_fallback`` in whisper/transcribe.py)."""
    low_logprob = avg_logprob < LOGPROB_THRESHOLD
    if no_speech_prob > NO_SPEECH_THRESHOLD and low_logprob:
        return False  # silence: no retry, it is dropped by is_no_speech
    return compression_ratio > COMPRESSION_RATIO_THRESHOLD or low_logprob


def is_no_speech(avg_logprob: float, no_speech_prob: float) -> bool:
    """The final decoding of a window is dropped (the window gives no text)."""
    return no_speech_prob > NO_SPEECH_THRESHOLD and not avg_logprob > LOGPROB_THRESHOLD


def is_silent(samples: np.ndarray) -> bool:
    """Empty, or quieter than ``SILENCE_DBFS`` RMS: nothing to decode."""
    if len(samples) == 0:
        return True
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return rms < 10.0 ** (SILENCE_DBFS / 20.0)
