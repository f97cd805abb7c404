"""The ``train`` section of an experiment conf: the WavLM conversion model (run.sh stage 4).

Sub-sections: ``data`` (what the training pairs are made of), ``model`` (architecture),
``objectives`` (which losses, with weights), ``optim`` (schedule, checkpoints, logging).
Only the ``wavlm_conv`` system reads it; other systems skip stage 4.
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
    # Share of each batch replaced by (w(u_a), w(u_a)): target-speaker speech reconstructed.
    recon_share: float = 0.1
    recon_frames: int = 400  # target-speaker chunks for reconstruction items, in frames (20 ms)
    max_frames: int = 400  # random crop of longer training items, in frames

    def __post_init__(self):
        if not 0.0 <= self.recon_share < 1.0:
            raise ValueError(f"recon_share must be in [0, 1), got {self.recon_share}")
        if self.k < 1 or self.max_frames < 2 or self.recon_frames < 2:
            raise ValueError("k must be >= 1 and max_frames, recon_frames >= 2")


@dataclass(frozen=True)
class ModelConfig:
    """FastSpeech2-style encoder-decoder (without length regulator / variance adaptor)."""
    block: Literal["transformer", "conformer"] = "transformer"  # ESPnet encoder block type
    feat_dim: int = 1024  # WavLM-Large feature size, in and out
    hidden: int = 512
    heads: int = 4
    ffn_dim: int = 1024  # position-wise conv1d feed-forward units (FastSpeech2: 1024)
    ffn_kernel: int = 3  # its kernel size (FastSpeech2 uses a conv1d FFN)
    encoder_layers: int = 4
    decoder_layers: int = 6
    dropout: float = 0.1


@dataclass(frozen=True)
class AdversaryConfig:
    """ECAPA-TDNN classifying the source speaker from the converter output (gradient reversal)."""
    enabled: bool = False
    weight: float = 0.1  # reversed-gradient scale for the converter
    channels: int = 512  # ECAPA channels of the first four blocks (the fifth is 3x)
    embedding_dim: int = 192
    lr: float = 1e-3


@dataclass(frozen=True)
class DiscreteConfig:
    """CTC over k-means units of the target speaker, logits = cosine(frame, centroid) / T."""
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
    batch_size: int = 16  # items per GPU (or per CPU process)
    lr: float = 2e-4  # Adam, linear warm-up then constant
    warmup_steps: int = 4000
    max_steps: int = 100000
    grad_clip: float = 1.0
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
