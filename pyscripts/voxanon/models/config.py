"""The ``train`` section of an experiment conf: the WavLM conversion model (run.sh stage 4).

Sub-sections: ``pairs`` (what the training pairs are made of), ``model`` (architecture),
``objectives`` (which losses, with weights), ``optim`` (schedule, checkpoints, logging).
Only the ``wavlm_conv`` system reads it; other systems skip stage 4. The defaults are the
paper's Table-1 ID 5 ("base"): ming024's FastSpeech2 blocks and schedule at 4 + 6 layers,
hidden 512, L1 + L2 only, no target reconstruction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class PairsConfig:
    # Kaldi data dir (under the data root) whose utterances are converted; "" = data.asv_train_set.
    train_set: str = ""
    # The target speaker / pseudo-speaker: a matching-set name from stage 3 (targets section).
    target: str = ""
    k: int = 4  # kNN-VC neighbours for the training targets k(w(u), a)
    valid_utts: int = 50  # utterances held out (by sorted id hash) for the validation loss
    # Share of the items of each batch replaced by (w(u_a), w(u_a)): a window of the target's own
    # speech reconstructed. 0 in the paper's rows 5-8; a reconstruction conf sets it (e.g. 0.1).
    recon_share: float = 0.0
    # Storage of the kNN-VC training targets: float16 halves the ~270 GB of train-clean-360's pairs
    # (per-value error at most 2^-11 relative; voxanon.data.features).
    dtype: Literal["float32", "float16"] = "float32"

    def __post_init__(self):
        if not 0.0 <= self.recon_share < 1.0:
            raise ValueError(f"recon_share must be in [0, 1), got {self.recon_share}")
        if self.k < 1:
            raise ValueError("k must be >= 1")


@dataclass(frozen=True)
class ModelConfig:
    """FastSpeech2's encoder and decoder without the variance adaptor, on WavLM features."""
    # fft: ming024's FFT block (post-LN); transformer: the pre-LN block of ESPnet's FastSpeech2
    # (this project's first setting: with heads 4, ffn_kernels [3, 3], dropout 0.1).
    block: Literal["fft", "transformer"] = "fft"
    feat_dim: int = 1024  # WavLM-Large feature size, in and out
    hidden: int = 512
    heads: int = 2
    ffn_dim: int = 1024  # position-wise conv feed-forward units (FastSpeech2: 1024)
    ffn_kernels: tuple[int, int] = (9, 1)  # its two conv1d kernels (odd)
    encoder_layers: int = 4
    decoder_layers: int = 6
    dropout: float = 0.2

    def __post_init__(self):
        if len(self.ffn_kernels) != 2 or any(k < 1 or k % 2 == 0 for k in self.ffn_kernels):
            raise ValueError(f"ffn_kernels must be two odd sizes, got {list(self.ffn_kernels)}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} must be a multiple of heads {self.heads}")


@dataclass(frozen=True)
class AdversaryConfig:
    """ECAPA-TDNN classifying the source speaker from the converter output (gradient reversal)."""
    enabled: bool = False
    weight: float = 0.1  # reversed-gradient scale for the converter
    channels: int = 512  # ECAPA channels of the first four blocks (the fifth is 3x)
    embedding_dim: int = 192
    lr: float = 1e-3  # constant (the converter's schedule does not apply to it)


@dataclass(frozen=True)
class DiscreteConfig:
    """CTC over spherical k-means units of the target, unit logits = cosine(frame, centroid) / T."""
    enabled: bool = False
    weight: float = 0.1
    units: int = 100  # k-means clusters
    temperature: float = 0.1
    kmeans_frames: int = 100000  # target-speaker frames sampled for k-means (at least `units`)


@dataclass(frozen=True)
class ObjectivesConfig:
    l1_weight: float = 1.0  # frame L1 to the kNN-VC target (0 = off)
    l2_weight: float = 1.0  # frame L2 (MSE) to the kNN-VC target (0 = off)
    adversary: AdversaryConfig = field(default_factory=AdversaryConfig)
    discrete: DiscreteConfig = field(default_factory=DiscreteConfig)


@dataclass(frozen=True)
class OptimConfig:
    # Items per step over all processes together: each of N GPUs takes batch_size / N, so the
    # batch, and with it the learning rate, does not change with the number of GPUs.
    batch_size: int = 16
    # noam: linear warm-up to `lr` at warmup_steps, then lr * sqrt(warmup / step) (ming024's
    # ScheduledOptim: 512^-0.5 * 4000^-0.5 = 7e-4 at the peak); constant: warm-up, then `lr`.
    schedule: Literal["noam", "constant"] = "noam"
    lr: float = 7e-4
    betas: tuple[float, float] = (0.9, 0.98)  # Adam, as ming024
    eps: float = 1e-9
    warmup_steps: int = 4000
    max_steps: int = 100000
    grad_clip: float = 1.0  # max gradient norm, for the converter and the adversary separately
    amp: bool = True  # bf16/fp16 autocast on GPU; ignored on CPU
    checkpoint_every: int = 2000
    keep_checkpoints: int = 3
    valid_every: int = 1000
    log_every: int = 100
    num_workers: int = 2  # data-loader processes
    seed: int = 1986


@dataclass(frozen=True)
class TrainConfig:
    device: str = "auto"  # auto | cpu | cuda; with several GPUs visible, training runs DDP on all
    pairs: PairsConfig = field(default_factory=PairsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objectives: ObjectivesConfig = field(default_factory=ObjectivesConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
