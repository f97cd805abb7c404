"""Piper VITS voices (``<voice>.onnx`` + ``<voice>.onnx.json``) through piper-tts.

A multi-speaker voice (``num_speakers`` > 1, e.g. ``en_US-libritts_r-medium`` with 904) takes a
speaker id per call; its ``speaker_id_map`` names the speakers (LibriTTS speaker ids there).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from voxanon.audio import Audio


class VoiceFileMissing(FileNotFoundError):
    """A voice's .onnx or .onnx.json is not on disk (one-line message naming it)."""


class PiperVoiceBackend:
    """One loaded Piper voice. ``speakers``: speaker name -> id (one entry for single-speaker
    voices: the voice's own name -> None)."""

    def __init__(self, model: Path, threads: int, use_cuda: bool = False, length_scale: float | None = None):
        from piper import PiperVoice
        from piper.config import PiperConfig, SynthesisConfig

        from voxanon.tts.synth import onnx_session

        model = Path(model)
        config = model.with_name(model.name + ".json")
        for path in (model, config):
            if not path.is_file():
                raise VoiceFileMissing(
                    f"Piper voice file {path} not found; a voice needs {model.name} and {config.name} side by "
                    "side (https://huggingface.co/rhasspy/piper-voices, or a registry name in conf/models.yaml)")
        self.name = model.name.removesuffix(".onnx")
        # As PiperVoice.load, with the session's threads set (its own uses every core of the machine).
        self.voice = PiperVoice(config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))),
                                session=onnx_session(model, threads, use_cuda))
        self._config = SynthesisConfig
        self.length_scale = length_scale
        num = self.voice.config.num_speakers
        if num > 1:
            by_id = {i: str(i) for i in range(num)}
            by_id.update({i: name for name, i in self.voice.config.speaker_id_map.items()})
            self.speakers: dict[str, int | None] = {name: i for i, name in sorted(by_id.items())}
        else:
            self.speakers = {self.name: None}

    @property
    def sample_rate(self) -> int:
        return self.voice.config.sample_rate

    def synthesize(self, sentence: str, speaker_id: int | None) -> Audio:
        """One sentence -> float32 mono audio at the voice's rate (22.05 kHz for medium voices)."""
        syn = self._config(speaker_id=speaker_id, length_scale=self.length_scale)
        chunks = [c.audio_float_array for c in self.voice.synthesize(sentence, syn_config=syn)]
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        return Audio(samples.astype(np.float32), self.sample_rate)
