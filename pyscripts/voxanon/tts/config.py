"""Speech synthesis settings (an ``asr_tts`` system's ``tts``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TtsConfig:
    # Piper voices: registry names (conf/models.yaml) or paths to .onnx files (.onnx.json beside).
    piper_voices: tuple[str, ...] = ("piper-joe-medium",)
    # Kokoro voices: names in the Kokoro model's voices.npz; [] for none.
    kokoro_voices: tuple[str, ...] = ()
    kokoro_model: str = "kokoro-82m-int8"  # registry name or a dir with model.onnx, voices.npz, vocab.json
    kokoro_speed: float = 1.0  # Kokoro speaking rate (<1 slower; the offline conf speaks at 0.85)
    # espeak-ng voices (<language>+<variant>); [] for none.
    espeak_voices: tuple[str, ...] = ()
    # Keep only these speakers of multi-speaker Piper voices: names from the voice's
    # speaker_id_map (libritts_r's are LibriTTS speaker ids, so a yaml number 3922 is the name
    # "3922", never the model's internal index); empty keeps all; a name no voice has is an error.
    speakers: tuple[str | int, ...] = ()
    # "any", a fixed gender ("m", "f"), or relative to the input speaker ("same", "opposite";
    # needs spk2gender). Anything but "any" needs speaker_genders.
    gender: Literal["any", "m", "f", "same", "opposite"] = "any"
    # File of "<speaker> m|f" lines; <speaker> is a multi-speaker voice's speaker name, a
    # single-speaker Piper voice's name (en_US-joe-medium), a Kokoro voice (jf_alpha) or an
    # espeak voice (en-us+f3).
    speaker_genders: str = ""
    length_scale: float = 1.0  # Piper speaking-rate factor (>1 slower)
    espeak_rate: int = 165  # espeak-ng words per minute
    cpu_threads: int = 0  # threads of each ONNX session on CPU; 0 = the job's cores (job_threads)

    def __post_init__(self):
        object.__setattr__(self, "speakers", tuple(str(s) for s in self.speakers))
        if not self.piper_voices and not self.kokoro_voices and not self.espeak_voices:
            raise ValueError("tts: give at least one of piper_voices, kokoro_voices, espeak_voices")
        if self.cpu_threads < 0 or self.kokoro_speed <= 0:
            raise ValueError("tts: cpu_threads must be >= 0, kokoro_speed > 0")
        if self.gender != "any" and not self.speaker_genders:
            raise ValueError(f"tts.gender {self.gender!r} needs tts.speaker_genders (a '<speaker> m|f' file)")
