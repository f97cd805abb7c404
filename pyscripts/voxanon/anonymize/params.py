"""The systems' settings (``anonymizer.params`` of a conf), one frozen dataclass each.

They live here, apart from the systems' code, so a conf is read and checked without torch or the
audio libraries. ``SYSTEMS`` maps a system name to the module with its ``build``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from voxanon.asr.config import AsrConfig
from voxanon.tts.config import TtsConfig

SYSTEMS = {
    "knnvc": "voxanon.anonymize.knnvc",
    "wavlm_conv": "voxanon.anonymize.wavlm_conv",
    "asr_tts": "voxanon.anonymize.asr_tts",
    "mcadams": "voxanon.anonymize.mcadams",
    "admixture": "voxanon.anonymize.admixture",
}

Precision = Literal["float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class KnnvcParams:
    matching_sets: str = ""  # stage 3's dir; "" = <targets.dir>/<data.target_pool>
    vocoder: str = "knnvc-prematch-vocoder"  # registry name or local file ({"generator": ...})
    wavlm: str = ""  # registry name or local file; "" = the checkpoint the matching sets were made with
    k: int = 4
    targets_per_utt: int = 1  # > 1: a pseudo-speaker pooling several targets' kNN outputs
    target_weights: Literal["equal", "random"] = "equal"  # random: drawn per utterance, Dirichlet(1)
    length_variation: bool = False
    length_range: tuple[float, float] = (0.8, 1.2)  # f: the duration factor, drawn to 0.001
    length_method: Literal["speed", "features"] = "speed"  # speed-perturb the audio, or resample frames
    feature_noise: bool = False
    noise_bound: float = 32.0  # L-inf bound of the uniform feature noise
    loudness_lufs: float = -16.0
    batch_size: int = 16  # utterances converted together (1: one at a time)
    bucket: int = 8  # the runner sorts bucket x batch_size utterances by length into batches
    device_sets: int = 64  # matching sets kept on the device (least recently used go first)
    wavlm_precision: Precision = "float32"
    matcher_precision: Precision = "float32"  # of the cosine similarities only
    vocoder_precision: Precision = "float32"

    def __post_init__(self):
        if self.k < 1 or self.targets_per_utt < 1:
            raise ValueError("k and targets_per_utt must be >= 1")
        if self.batch_size < 1 or self.bucket < 1 or self.device_sets < 1:
            raise ValueError("batch_size, bucket and device_sets must be >= 1")
        lo, hi = self.length_range
        if not 0 < lo <= hi:
            raise ValueError(f"length_range must satisfy 0 < low <= high, got {self.length_range}")
        if self.noise_bound < 0:
            raise ValueError(f"noise_bound must be >= 0, got {self.noise_bound}")



@dataclass(frozen=True)
class McAdamsParams:
    alpha: float | None = None  # fixed McAdams coefficient; null: draw per utterance
    alpha_range: tuple[float, float] = (0.5, 0.9)  # uniform range when alpha is null
    lpc_order: int = 20
    frame_ms: float = 20.0
    shift_ms: float = 10.0

    def __post_init__(self):
        for a in ([self.alpha] if self.alpha is not None else list(self.alpha_range)):
            if not 0.0 < a <= 2.0:
                raise ValueError(f"McAdams coefficient {a} must be in (0, 2]")
        if len(self.alpha_range) != 2 or self.alpha_range[0] > self.alpha_range[1]:
            raise ValueError(f"alpha_range {self.alpha_range} must be [low, high] with low <= high")
        if self.lpc_order < 1:
            raise ValueError(f"lpc_order {self.lpc_order} must be >= 1")
        if not 0 < self.shift_ms <= self.frame_ms:
            raise ValueError(f"shift_ms {self.shift_ms} must be in (0, frame_ms={self.frame_ms}]")



OFFLINE_PIPER_VOICES = ("piper-joe-medium",)
OFFLINE_KOKORO_VOICES = ("jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")  # not jf_alpha: misheard most
OFFLINE_ESPEAK_VOICES = ()  # none: Whisper base misheard espeak-ng voices most (33 % WER on TIMIT)


@dataclass(frozen=True)
class AsrTtsParams:
    asr: AsrConfig = field(default_factory=AsrConfig)
    tts: TtsConfig = field(default_factory=lambda: TtsConfig(
        piper_voices=OFFLINE_PIPER_VOICES, kokoro_voices=OFFLINE_KOKORO_VOICES, kokoro_speed=0.85,
        espeak_voices=OFFLINE_ESPEAK_VOICES))
    transcripts: str = "exp/asr_transcripts"  # shared transcript cache (relative to the recipe dir)
    bucket: int = 4  # the runner sorts bucket x asr.batch_size utterances by length into batches

    def __post_init__(self):
        if self.bucket < 1:
            raise ValueError("asr_tts: bucket must be >= 1")

    @property
    def batch_size(self) -> int:
        """Utterances the runner hands over together: those the ASR decodes together."""
        return self.asr.batch_size



@dataclass(frozen=True)
class WavlmConvParams:
    checkpoint: str = ""  # the converter; "" = exp/<exp>/converter/final.pt (stage 4's)
    wavlm: str = ""  # registry name or local file; "" = features.checkpoint (what stage 4 trained on)
    layer: int | None = None  # None = features.layer
    vocoder: str = "knnvc-prematch-vocoder"  # registry name or local file ({"generator": ...})
    loudness_lufs: float = -16.0
    batch_size: int = 16  # utterances converted together (1: one at a time)
    bucket: int = 8  # the runner sorts bucket x batch_size utterances by length into batches
    wavlm_precision: Precision = "float32"
    converter_precision: Precision = "float32"
    vocoder_precision: Precision = "float32"

    def __post_init__(self):
        if self.batch_size < 1 or self.bucket < 1:
            raise ValueError("batch_size and bucket must be >= 1")



@dataclass(frozen=True)
class Component:
    system: str  # a name from SYSTEMS (not admixture itself)
    p: float  # probability of drawing this system for an utterance
    params: dict = field(default_factory=dict)  # that system's own Params

    def __post_init__(self):
        if self.system not in SYSTEMS or self.system == "admixture":
            known = ", ".join(sorted(set(SYSTEMS) - {"admixture"}))
            raise ValueError(f"system {self.system!r} cannot be mixed; known: {known}")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p = {self.p} of system {self.system!r} is not a probability in [0, 1]")


@dataclass(frozen=True)
class AdmixtureParams:
    systems: tuple[Component, ...] = ()
    cache_dir: str = ""  # keep the parts' outputs here for other admixtures of the same parts ("" = none)

    def __post_init__(self):
        if len(self.systems) < 2:
            raise ValueError(f"an admixture needs at least 2 systems, got {len(self.systems)}")
        total = sum(c.p for c in self.systems)
        if abs(total - 1.0) > 1e-6:
            shares = " + ".join(f"{c.system} {c.p:g}" for c in self.systems)
            raise ValueError(f"the systems' probabilities must sum to 1, got {shares} = {total:g}")


PARAMS = {"knnvc": KnnvcParams, "wavlm_conv": WavlmConvParams, "asr_tts": AsrTtsParams,
          "mcadams": McAdamsParams, "admixture": AdmixtureParams}
