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
the WavLM checkpoint and layer are those the matching sets were extracted with (another
``wavlm`` is refused unless its weights are the same). The source audio goes through WavLM in
chunks as the conf's ``features`` section says (chunk/context/batch seconds).

Batches (``batch_size`` utterances, length-sorted by the runner): the batch goes through WavLM as
padded segments, every query frame of the batch that uses one matching set is matched against it
in one pass (the sets used stay on the device, up to ``device_sets`` of them), and the vocoder
takes the matched sequences as a padded, masked batch; each output equals the one-at-a-time
output to float rounding (tests/test_batched_anonymize.py). ``*_precision`` runs WavLM, the
similarities and the vocoder in bfloat16 / float16 instead (bench/knnvc_bench.py: the error).
"""
from __future__ import annotations

import logging
from math import gcd

import numpy as np
import torch
import torch.nn.functional as F

from voxanon.anonymize.base import BuildContext, Converted, Utterance, autocast
from voxanon.anonymize.params import KnnvcParams as Params
from voxanon.anonymize.params import Precision
from voxanon.audio import Audio
from voxanon.features.wavlm import WavLM, extract_tensors, load_wavlm
from voxanon.knn.matcher import knn_match_batch
from voxanon.knn.matching_set import MatchingSets
from voxanon.models.feature_id import wavlm_identity
from voxanon.registry import resolve_model
from voxanon.rng import utt_rng
from voxanon.vocoder.hifigan import Generator, load_generator, vocode_batch

log = logging.getLogger("voxanon.knnvc")
VOCODER_CHUNK = 1500  # frames (30 s) per vocoder chunk, vocode_batch's default


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


def source_features(wavlm: WavLM, audios: list[Audio], utts: list[Utterance], layer: int, ctx: BuildContext,
                    precision: Precision) -> list[torch.Tensor]:
    """Layer-``layer`` features (T_i, D) of a batch, float32 on the model's device, chunked as the
    conf's ``features`` section says; errors name the utterance."""
    f = ctx.features
    with autocast(ctx.device, precision):
        return extract_tensors(wavlm, audios, layer, f.chunk_seconds, f.context_seconds, f.batch_seconds,
                               [u.id for u in utts])


def vocode_all(vocoder: Generator, feats: list[torch.Tensor], lufs: float, batch_size: int, precision: Precision,
               device: str) -> list[Audio]:
    """A batch's features through the vocoder: on a GPU in padded passes of up to ``batch_size``
    chunks; on the CPU one chunk at a time (measured faster: batched activations outgrow the cache)."""
    passes = VOCODER_CHUNK * batch_size if torch.device(device).type == "cuda" else VOCODER_CHUNK
    with autocast(device, precision):
        return vocode_batch(vocoder, feats, lufs, batch_frames=passes)


class KnnVC:
    def __init__(self, params: Params, ctx: BuildContext):
        self.p, self.ctx, self.seed, self.device = params, ctx, ctx.seed, ctx.device
        if not params.matching_sets:
            raise ValueError("matching_sets is empty: name stage 3's dir, or data.target_pool in the experiment conf")
        self.sets = MatchingSets(params.matching_sets, cache_items=params.device_sets)
        if len(self.sets.speakers) < params.targets_per_utt:
            raise ValueError(f"targets_per_utt={params.targets_per_utt} but {params.matching_sets} has only "
                             f"{len(self.sets.speakers)} target speaker(s)")
        self.layer = self.sets.layer
        self.wavlm = load_wavlm(resolve_model(params.wavlm or self.sets.checkpoint), self.device, max_layer=self.layer)
        if params.wavlm:
            self.check_wavlm()
        self.vocoder = load_generator(resolve_model(params.vocoder), self.device)
        self.batch_size, self.bucket = params.batch_size, params.bucket

    def check_wavlm(self) -> None:
        """``params.wavlm`` must have the weights the matching sets were extracted with."""
        made = load_wavlm(resolve_model(self.sets.checkpoint), "cpu", max_layer=self.layer)
        if wavlm_identity(made, self.layer) != wavlm_identity(self.wavlm, self.layer):
            raise ValueError(f"{self.p.matching_sets} holds layer-{self.layer} features of {self.sets.checkpoint}, "
                             f"but anonymizer.params.wavlm is {self.p.wavlm}, other weights: leave wavlm empty or "
                             "rebuild the matching sets with that checkpoint (stages 2-3)")

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

    def varied(self, feats: torch.Tensor, choice: dict, speed: bool) -> torch.Tensor:
        """Frame resampling (length_method features) and the feature noise of one utterance."""
        if self.p.length_variation and not speed:
            feats = resample_frames(feats, choice["length_factor"])
        if self.p.feature_noise:
            gen = torch.Generator().manual_seed(choice["noise_seed"])
            noise = (torch.rand(feats.shape, generator=gen) * 2 - 1) * self.p.noise_bound
            feats = feats + noise.to(feats.device)
        return feats

    def convert_batch(self, utts: list[Utterance]) -> list[Converted]:
        choices = [self.choose(u.id) for u in utts]
        speed = self.p.length_variation and self.p.length_method == "speed"
        audios = [speed_perturb(u.audio, c["length_factor"]) if speed else u.audio for u, c in zip(utts, choices)]
        feats = source_features(self.wavlm, audios, utts, self.layer, self.ctx, self.p.wavlm_precision)
        feats = [self.varied(f, c, speed) for f, c in zip(feats, choices)]
        pools = {spk: self.sets.get(spk, self.device) for c in choices for spk in c["targets"]}
        matched = knn_match_batch(feats, pools, [list(zip(c["targets"], c["weights"])) for c in choices], self.p.k,
                                  getattr(torch, self.p.matcher_precision))
        out = vocode_all(self.vocoder, matched, self.p.loudness_lufs, self.batch_size, self.p.vocoder_precision,
                         self.device)
        return [Converted(a, {"system": "knnvc", **{k: v for k, v in c.items() if k != "noise_seed"}})
                for a, c in zip(out, choices)]

    def __call__(self, utt: Utterance) -> Converted:
        return self.convert_batch([utt])[0]


def build(params: Params, ctx: BuildContext) -> KnnVC:
    return KnnVC(params, ctx)
