"""kNN-VC anonymization (paper §2.1, Table 1 IDs 1-3, multi-target pooling of Figure 1).

Per utterance: optional length variation by a factor f drawn uniformly in ``length_range`` ->
WavLM layer-L features of the source (T, 1024) -> optional uniform noise in [-noise_bound, noise_bound] per value (L-inf bound) -> each frame replaced by the mean of
its k cosine-nearest frames in the target's matching set; with several targets per utterance
(a pseudo-speaker) their kNN outputs are averaged with weights -> HiFi-GAN -> loudness-normalized
16 kHz audio. Targets, weights and factor are drawn from ``utt_rng(seed, utt)``, so every run
makes the same choices; they go to the private record.

Length variation (``length_method``): ``speed`` (default) is the paper's: "a random factor between
0.8 and 1.2 applied to the original audio" — the source is speed-perturbed before WavLM, so its
duration is multiplied by f and its pitch divided by f (sox ``speed 1/f``). ``features`` resamples
the WavLM frame sequence to f times its length instead (timing only, pitch untouched; WavLM sees
the original audio): the cheaper variant voxanon used before, kept to compare with those runs.

The matching sets come from stage 3 (``matching_sets``: a dir written by local/make_targets.sh);
the WavLM checkpoint and layer default to those the matching sets were extracted with.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from math import gcd
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from voxanon.anonymize.base import BuildContext, Converted, Utterance, utt_rng
from voxanon.audio import Audio, AudioError
from voxanon.features.wavlm import extract_layer, load_wavlm
from voxanon.knn.matcher import knn_pooled
from voxanon.knn.matching_set import MatchingSets
from voxanon.registry import resolve_model
from voxanon.vocoder.hifigan import load_generator, vocode

log = logging.getLogger("voxanon.knnvc")


@dataclass(frozen=True)
class Params:
    matching_sets: str  # dir written by stage 3 (exp/targets/<pool>)
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

    def __post_init__(self):
        if self.k < 1 or self.targets_per_utt < 1:
            raise ValueError("k and targets_per_utt must be >= 1")
        lo, hi = self.length_range
        if not 0 < lo <= hi:
            raise ValueError(f"length_range must satisfy 0 < low <= high, got {self.length_range}")
        if self.noise_bound < 0:
            raise ValueError(f"noise_bound must be >= 0, got {self.noise_bound}")


def speed_perturb(audio: Audio, factor: float) -> Audio:
    """Audio played 1/factor times as fast: duration x factor, every frequency (pitch) / factor
    (resampled by the ratio factor, to 0.001, at the same sample rate)."""
    from scipy.signal import resample_poly

    up = round(factor * 1000)
    g = gcd(up, 1000)
    return Audio(resample_poly(audio.samples, up // g, 1000 // g).astype(np.float32), audio.sample_rate)


def resample_frames(feats: torch.Tensor, factor: float) -> torch.Tensor:
    """(T, D) -> (round(T * factor), D) by linear interpolation along time."""
    frames = max(1, round(feats.shape[0] * factor))
    return F.interpolate(feats.T[None], size=frames, mode="linear", align_corners=True)[0].T.contiguous()


class KnnVC:
    def __init__(self, params: Params, ctx: BuildContext):
        self.p, self.seed, self.device = params, ctx.seed, ctx.device
        self.sets = MatchingSets(params.matching_sets)
        if len(self.sets.speakers) < params.targets_per_utt:
            raise ValueError(f"targets_per_utt={params.targets_per_utt} but {params.matching_sets} has only "
                             f"{len(self.sets.speakers)} target speaker(s)")
        wavlm = resolve_model(params.wavlm or self.sets.checkpoint)
        self.layer = self.sets.layer
        self.wavlm = load_wavlm(wavlm, self.device, max_layer=self.layer)
        self.vocoder = load_generator(resolve_model(params.vocoder), self.device)

    def choose(self, utt_id: str) -> dict:
        """The utterance's targets, weights and length factor (reproducible from seed + id)."""
        rng = utt_rng(self.seed, utt_id, "knnvc")
        n = self.p.targets_per_utt
        idx = rng.choice(len(self.sets.speakers), size=n, replace=False)
        weights = rng.dirichlet(np.ones(n)) if self.p.target_weights == "random" else np.full(n, 1.0 / n)
        factor = round(float(rng.uniform(*self.p.length_range)), 3) if self.p.length_variation else 1.0
        noise_seed = int(rng.integers(2**31))
        return {"targets": [self.sets.speakers[i] for i in idx], "weights": [round(float(w), 6) for w in weights],
                "length_factor": factor, "noise_seed": noise_seed}

    def __call__(self, utt: Utterance) -> Converted:
        choice = self.choose(utt.id)
        speed = self.p.length_variation and self.p.length_method == "speed"
        audio = speed_perturb(utt.audio, choice["length_factor"]) if speed else utt.audio
        try:
            feats = torch.from_numpy(extract_layer(self.wavlm, audio, self.layer)).to(self.device)
        except AudioError as err:
            raise AudioError(f"{utt.id}: {err}") from None
        if self.p.length_variation and not speed:
            feats = resample_frames(feats, choice["length_factor"])
        if self.p.feature_noise:
            gen = torch.Generator().manual_seed(choice["noise_seed"])
            noise = (torch.rand(feats.shape, generator=gen) * 2 - 1) * self.p.noise_bound
            feats = feats + noise.to(feats.device)
        pools = [self.sets.get(spk, self.device) for spk in choice["targets"]]
        matched = knn_pooled(feats, pools, choice["weights"], self.p.k)
        audio = vocode(self.vocoder, matched, self.p.loudness_lufs)
        record = {"system": "knnvc", **{k: v for k, v in choice.items() if k != "noise_seed"}}
        return Converted(audio, record)


def build(params: Params, ctx: BuildContext) -> KnnVC:
    return KnnVC(params, ctx)
