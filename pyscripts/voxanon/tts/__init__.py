"""Text-to-speech with a pool of voices to draw from: Piper VITS voices (single- or
multi-speaker), Kokoro-82M voices and espeak-ng voice variants.

    from voxanon.tts.synth import Tts
    tts = Tts(TtsConfig(), device="cpu")
    speaker = tts.choose(rng, input_gender="f")    # one pool member, drawn uniformly
    audio = tts.synthesize("Hello 42 times.", speaker)   # Audio, 16 kHz mono

Every speaker of every voice is one pool member: a multi-speaker Piper voice adds all of its
speakers (or those ``speakers`` keeps), a single-speaker voice one, each Kokoro and espeak-ng
voice one. Text is normalized (numbers and symbols spelled out) and synthesized sentence by
sentence. Every model is loaded once (one ONNX session per voice file), with ``cpu_threads``
threads on CPU: by default the cores the job was given (``job_threads``).
"""
from voxanon.tts.config import TtsConfig

__all__ = ["TtsConfig"]
