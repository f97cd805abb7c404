"""The ``asv``, ``eval`` and ``report`` sections of an experiment conf (run.sh stages 6, 7, 8).

Defaults are the VPC 2024 recipe; the mini conf shrinks them (fewer channels, epochs, chunks);
``conf/base/vpc2026_track1.yaml`` sets the VPC 2026 Track 1 ones (docs/vpc2026.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class AsvConfig:
    """ECAPA-TDNN attacker (stage 6) and how it is used for scoring (stage 7)."""

    # Architecture (speechbrain ECAPA_TDNN): channels of the four SE-Res2 blocks; the MFA layer has
    # 3x as many. VPC 2024: 80 fbank, 512 channels, 192-d embeddings, attention 128.
    n_mels: int = 80
    channels: int = 512
    emb_dim: int = 192
    attention_channels: int = 128
    # AAM-softmax
    margin: float = 0.2
    scale: float = 30.0
    # Adam with a triangular cyclic learning rate (speechbrain CyclicLRScheduler), stepped per batch
    lr: float = 0.01  # max_lr of the cycle
    base_lr: float = 1e-8
    step_size: int = 65000  # batches per half cycle
    weight_decay: float = 2e-6
    epochs: int = 10
    batch_size: int = 256
    # VPC eval_post epoch plan: one training row per whole chunk_s chunk of an utterance
    # (floor(dur / chunk_s) rows; shorter utterances and chunks with mean |x| < min_amplitude are
    # dropped), each row cropped afresh at random from its utterance every epoch.
    chunk_s: float = 3.0
    min_amplitude: float = 5e-4
    valid_share: float = 0.1  # utterance-level 90/10 train/valid split; the best-valid epoch is kept
    seed: int = 1986
    # "online": speechbrain Fbank computed per batch; "precomputed": fbank of every training
    # utterance written once to ark/scp under the model dir, chunks cut from it.
    features: Literal["online", "precomputed"] = "online"
    num_workers: int = 2  # DataLoader workers (online features)
    checkpoint_minutes: float = 15.0  # also checkpoint inside an epoch this often
    max_utts: int = 0  # >0: train on a seeded random subset of this many utterances (mini runs)
    device: str = "auto"  # auto | cpu | cuda | cuda:N; several GPUs: run.sh uses torchrun
    # ASV used by the original / ignorant / lazy-informed attackers: a model dir (ours, or the VPC
    # release's asv_orig) or a registry name. Default: the VPC 2024 release (vpc-asv-orig).
    # Empty: stage 6 trains one on the original asv_train_set with the settings above.
    orig_model: str = "vpc-asv-orig"
    # Fine-tuning (VPC 2026 Track 1's semi-informed attacker): the model dir or registry name whose
    # weights the training starts from (its architecture wins over the sizes above; an asv_ssl
    # model keeps its WavLM frozen). Empty: train from random weights.
    init_model: str = ""
    optimizer: Literal["adam", "adamw"] = "adam"  # VPC 2026: AdamW, weight_decay 0.01
    drop_last: bool = False  # leave out the last, smaller batch of an epoch (VPC 2026)
    # VPC 2026: speechbrain DropFreq + DropChunk on every training chunk before the fbank branch
    # (voxanon.eval.asv_augment; online features only). VPC 2024: none.
    augment: bool = False
    wavlm_crop_s: float = 10.0  # asv_ssl: its WavLM sees the utterance cropped at random / zero-padded to this
    # Convergence (voxanon.eval.convergence): after every epoch, the validation EER on at most
    # valid_eer_utts held-out utterances (a seeded subset; 0: not measured); stages 6-8 warn when it
    # fell by more than convergence_margin EER points over the last convergence_epochs epochs.
    valid_eer_utts: int = 2000
    convergence_margin: float = 1.0
    convergence_epochs: int = 2
    # Mixture-aware attacker: a mixture dir (another experiment's exp/<exp>/mixture) whose trained
    # asv_part<i> this experiment uses instead of training its own; the admixture sweep sets it, since
    # the parts' outputs of the training set are the same for every p. Empty: trained in exp/<exp>/mixture.
    part_models: str = ""
    # The stronger semi-informed attacker (eval.scenarios: semi-informed-finetuned, exp/<exp>/asv_anon_ft):
    # the recipe above started from ASV_orig (orig_model, else exp/<exp>/asv_orig) with a new
    # classifier, for finetuned_epochs epochs (0: epochs).
    finetuned_epochs: int = 0

    def __post_init__(self):
        if not 0.0 <= self.valid_share < 1.0:
            raise ValueError(f"valid_share must be in [0, 1), got {self.valid_share}")
        for name in ("n_mels", "channels", "emb_dim", "attention_channels", "epochs", "batch_size", "step_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.valid_eer_utts < 0 or self.convergence_epochs < 1 or self.finetuned_epochs < 0:
            raise ValueError("valid_eer_utts and finetuned_epochs must be >= 0, convergence_epochs >= 1")
        if self.chunk_s <= 0:
            raise ValueError(f"chunk_s must be positive, got {self.chunk_s}")


@dataclass(frozen=True)
class EvalConfig:
    """Stage 7: which metrics, with which models."""

    metrics: tuple[Literal["asv", "wer", "ser"], ...] = ("asv", "wer", "ser")
    # Attack scenarios scored for every trials file (VPC 2024: ignorant, lazy-informed,
    # semi-informed; "original" = original enroll and trials, the privacy reference).
    # "mixture-aware": for admixture systems only, the mixture-aware attacker and training-set
    # filtering (voxanon.eval.mixture_attack; stage 6 trains 2 ASVs per part); needs semi-informed.
    # "semi-informed-finetuned" (opt-in): a stronger semi-informed attacker next to the VPC's,
    # fine-tuned from ASV_orig (asv.finetuned_epochs; stage 6 trains exp/<exp>/asv_anon_ft).
    scenarios: tuple[Literal["original", "ignorant", "lazy-informed", "semi-informed", "semi-informed-finetuned",
                             "mixture-aware"], ...] = (
        "original", "ignorant", "lazy-informed", "semi-informed", "mixture-aware")
    # Scoring pre-processing (VPC 2024): loudness to -30 LUFS, then peak-normalize to 1.0.
    target_lufs: float = -30.0
    peak: float = 1.0
    device: str = "auto"
    # Privacy metrics beyond EER
    dcf_p_target: float = 0.01
    dcf_c_miss: float = 1.0
    dcf_c_fa: float = 1.0
    linkability_omega: float = 1.0
    # WER: the voxanon.asr settings (voxanon.asr.AsrConfig as a mapping). Default: the VPC 2024
    # ASR_eval (speechbrain wav2vec2-CTC, batches of 8), its wav2vec2 run without a padding mask as
    # in the release (wav2vec2_padding_mask: true masks the padding). Proxies: e.g.
    # {backend: faster_whisper, model: whisper-base-ct2, language: en}.
    asr: dict = field(default_factory=lambda: {"backend": "speechbrain", "model": "vpc-asr", "batch_size": 8})
    wer_original: bool = True  # also transcribe the original audio (the utility reference)
    # UAR: the VPC 2024 SER fold models (a registry name, or a dir holding fold_<k>), each
    # spk2fold speaker's utterances classified by its fold's model.
    ser_model: str = "vpc-ser"
    # Strict like the VPC: a missing or unreadable utterance stops WER/UAR naming it. True: such
    # utterances are left out and listed, and the figure is marked partial.
    allow_partial: bool = False
    allow_pipes: bool = False  # wav.scp entries that are shell commands
    # Which challenge's results layout: "vpc2024" (exp/<exp>/results/result_for_rank<suffix>) or
    # "vpc2026-track1" (also exp/<exp>/results_summary/track1/result_for_rank<suffix>, its ASV_eval
    # row anonymized/anonymized on the mixed trials, scored by asv.orig_model = vpc-asv-ssl).
    protocol: Literal["vpc2024", "vpc2026-track1"] = "vpc2024"
    # Utterance embeddings before the speaker mean and cosine: "" = the protocol's (vpc2024: none,
    # as speechbrain's encode_batch; vpc2026-track1: l2). "l2": unit length (the 2026 repo's fixed
    # F.normalize(dim=-1)); "sign": the 2026 repo's F.normalize(dim=1) on [1, 1, 192], i.e. sign(x),
    # for comparing with figures published with that code; "none".
    embedding_norm: Literal["", "none", "l2", "sign"] = ""
    # Trials whose enrollment or trial utterance has no audio in the scored dir stop stage 7 naming
    # them; true: they are left out and listed (the 2026 repo skips them with a warning).
    skip_missing_trials: bool = False

    @property
    def norm(self) -> str:
        """The embedding normalization in effect."""
        return self.embedding_norm or ("l2" if self.protocol == "vpc2026-track1" else "none")

    def __post_init__(self):
        from voxanon.asr import AsrConfig  # checked here so a typo fails at conf check, not in stage 7
        from voxanon.config import from_dict

        from_dict(AsrConfig, self.asr, "eval.asr")


@dataclass(frozen=True)
class ReportConfig:
    """Stage 8: the summary, plots and HTML page."""

    audio_examples: int = 4  # original/anonymized pairs with audio players
    copy_audio: bool = True  # copy example wavs next to the page (else link them relatively)
    title: str = ""  # page title; default "voxanon: <exp>"

    def __post_init__(self):
        if self.audio_examples < 0:
            raise ValueError("audio_examples must be >= 0")
