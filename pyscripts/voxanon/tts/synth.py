"""Synthesis behind one interface: Piper, Kokoro and espeak-ng voices (see ``voxanon.tts``)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxanon.audio import SAMPLE_RATE, Audio, peak_normalize, resample
from voxanon.tts.config import TtsConfig
from voxanon.tts.text import normalize_text, split_sentences

SENTENCE_PAUSE_S = 0.2  # silence between synthesized sentences


def job_threads(requested: int = 0) -> int:
    """``requested`` if > 0, else the cores this job was given: ``OMP_NUM_THREADS`` (run.pl sets it
    per task to ``--num-threads`` or the task's share of the machine), else the CPUs this process
    may run on (under Slurm, those of its ``--cpus-per-task``)."""
    if requested > 0:
        return requested
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return len(os.sched_getaffinity(0))


def onnx_session(model: Path, threads: int, use_cuda: bool = False):
    """An onnxruntime session on CUDA when asked and available (CPU builds have no CUDA
    provider: CPU then), else on CPU with ``threads`` intra-op threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if use_cuda and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"}))
    return onnxruntime.InferenceSession(str(model), sess_options=options, providers=providers)


@dataclass(frozen=True)
class Speaker:
    backend: str  # "piper", "kokoro" or "espeak"
    voice: str  # Piper voice name (file stem), Kokoro voice or espeak voice
    name: str  # speaker name (see TtsConfig.speaker_genders)
    sid: int | None = None  # speaker id of a multi-speaker Piper voice

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.voice}" + (f":{self.name}" if self.sid is not None else "")


def read_genders(path: str | Path) -> dict[str, str]:
    genders = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 2 or parts[1] not in ("m", "f"):
            raise ValueError(f"{path}:{n}: expected '<speaker> m|f', got {line!r}")
        genders[parts[0]] = parts[1]
    return genders


class Tts:
    def __init__(self, config: TtsConfig, device: str = "cpu"):
        from voxanon.registry import resolve_model
        from voxanon.tts.espeak import EspeakBackend
        from voxanon.tts.kokoro import KokoroBackend
        from voxanon.tts.piper_voice import PiperVoiceBackend

        self.config = config
        threads, use_cuda = job_threads(config.cpu_threads), device.startswith("cuda")
        self.piper: dict[str, PiperVoiceBackend] = {}
        speakers: list[Speaker] = []
        known: set[str] = set()
        for spec in config.piper_voices:
            backend = PiperVoiceBackend(resolve_model(spec), threads, use_cuda, config.length_scale)
            self.piper[backend.name] = backend
            multi = len(backend.speakers) > 1
            known.update(backend.speakers if multi else ())
            for name, sid in backend.speakers.items():
                if multi and config.speakers and name not in config.speakers:
                    continue
                speakers.append(Speaker("piper", backend.name, name, sid))
        self.kokoro = (KokoroBackend(resolve_model(config.kokoro_model), threads, use_cuda, config.kokoro_speed)
                       if config.kokoro_voices else None)
        for voice in config.kokoro_voices:
            if voice not in self.kokoro.styles:
                raise ValueError(f"tts.kokoro_voices: {voice!r} is not a voice of {config.kokoro_model} "
                                 f"(it has {', '.join(self.kokoro.voices)})")
            speakers.append(Speaker("kokoro", voice, voice))
        self.espeak = EspeakBackend(config.espeak_rate) if config.espeak_voices else None
        for voice in config.espeak_voices:
            self.espeak.check_voice(voice)
            speakers.append(Speaker("espeak", voice, voice))
        unknown = [s for s in config.speakers if s not in known]
        if unknown:
            raise ValueError(f"tts.speakers {unknown}: no multi-speaker Piper voice has these speakers"
                             f" (names from speaker_id_map, e.g. {sorted(known)[:3]})")
        self.speakers = speakers
        self.genders = read_genders(config.speaker_genders) if config.speaker_genders else {}
        self._pools = {g: [s for s in speakers if self.genders.get(s.name) == g] for g in ("m", "f")}
        if config.gender != "any":
            for g, pool in self._pools.items():
                if not pool:
                    raise ValueError(f"tts: no speaker of gender {g!r} in the pool ({config.speaker_genders})")

    def pool(self, input_gender: str | None = None) -> list[Speaker]:
        """The speakers allowed for an input of ``input_gender`` ("m", "f" or None)."""
        wanted = self.config.gender
        if wanted == "any":
            return self.speakers
        if wanted in ("same", "opposite"):
            if input_gender not in ("m", "f"):
                raise ValueError(f"tts.gender {wanted!r} needs the input speaker's gender (spk2gender)")
            wanted = input_gender if wanted == "same" else {"m": "f", "f": "m"}[input_gender]
        return self._pools[wanted]

    def choose(self, rng: np.random.Generator, input_gender: str | None = None) -> Speaker:
        pool = self.pool(input_gender)
        return pool[int(rng.integers(len(pool)))]

    def synthesize(self, text: str, speaker: Speaker) -> Audio:
        """Normalized ``text`` spoken by ``speaker``, 16 kHz mono, peak 0.95; empty audio when
        nothing in the text is speakable."""
        pieces = []
        pause = np.zeros(int(SENTENCE_PAUSE_S * SAMPLE_RATE), np.float32)
        for sentence in split_sentences(normalize_text(text)):
            if speaker.backend == "piper":
                audio = self.piper[speaker.voice].synthesize(sentence, speaker.sid)
            elif speaker.backend == "kokoro":
                audio = self.kokoro.synthesize(sentence, speaker.voice)
            else:
                audio = self.espeak.synthesize(sentence, speaker.voice)
            if len(audio.samples):
                pieces += [resample(audio, SAMPLE_RATE).samples, pause]
        samples = np.concatenate(pieces[:-1]) if pieces else np.zeros(0, np.float32)
        return peak_normalize(Audio(samples.astype(np.float32), SAMPLE_RATE))
