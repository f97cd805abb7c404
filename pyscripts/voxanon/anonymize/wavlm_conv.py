"""WavLM conversion model anonymization (paper §2.2, Table 1 IDs 5-8).

Per utterance: WavLM layer-L features of the source (T, 1024) -> the trained converter (run.sh
stage 4; it learned the kNN-VC mapping to one target speaker, optionally with the adversarial
and discrete objectives) -> HiFi-GAN (the prematched kNN-VC vocoder) -> loudness-normalized
16 kHz audio. Deterministic: no per-utterance choices, so the record names only the target the
converter was trained towards. The converter only takes features of the WavLM weights and layer
it was trained on (``params.wavlm`` / ``params.layer`` are checked against its checkpoint).

Batches (``batch_size`` utterances, length-sorted by the runner) go through WavLM, the converter
and the vocoder as padded, masked batches, as in kNN-VC (see voxanon.anonymize.knnvc), with the
same ``*_precision`` options; the source audio is chunked as the conf's ``features`` section says.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from voxanon.anonymize.base import BuildContext, Converted, Precision, Utterance, autocast
from voxanon.anonymize.knnvc import source_features, vocode_all
from voxanon.features.wavlm import load_wavlm
from voxanon.models.converter import load_converter
from voxanon.models.feature_id import check_features, wavlm_identity
from voxanon.registry import resolve_model
from voxanon.vocoder.hifigan import load_generator


@dataclass(frozen=True)
class Params:
    # The converter from stage 4; "" = $VOXANON_EXP/converter/final.pt (the experiment run.sh runs).
    checkpoint: str = ""
    wavlm: str = "wavlm-large"  # registry name or local file; the one the training features came from
    layer: int = 6
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


def converter_path(params: Params) -> Path:
    if params.checkpoint:
        return Path(params.checkpoint)
    exp = os.environ.get("VOXANON_EXP")
    if not exp:
        raise ValueError("anonymizer.params.checkpoint is empty and VOXANON_EXP is not set (run.sh sets it): "
                         "give the converter checkpoint, e.g. exp/<exp>/converter/final.pt")
    return Path(exp) / "converter" / "final.pt"


class WavLMConversion:
    def __init__(self, params: Params, ctx: BuildContext):
        self.p, self.ctx, self.device = params, ctx, ctx.device
        path = converter_path(params)
        self.converter, meta = load_converter(path, self.device)
        self.target = meta["target"]
        self.wavlm = load_wavlm(resolve_model(params.wavlm), self.device, max_layer=params.layer)
        check_features(meta["features"], wavlm_identity(self.wavlm, params.layer), path, params.wavlm)
        self.vocoder = load_generator(resolve_model(params.vocoder), self.device)
        self.batch_size, self.bucket = params.batch_size, params.bucket

    @torch.inference_mode()
    def convert_feats(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """The converter on a padded batch; each output cut to its input's length."""
        lengths = torch.tensor([len(f) for f in feats], device=self.device)
        batch = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        with autocast(self.device, self.p.converter_precision):
            out = self.converter(batch, lengths)[0].float()
        return [o[:n] for o, n in zip(out, lengths.tolist())]

    def convert_batch(self, utts: list[Utterance]) -> list[Converted]:
        feats = source_features(self.wavlm, [u.audio for u in utts], utts, self.p.layer, self.ctx,
                                self.p.wavlm_precision)
        out = vocode_all(self.vocoder, self.convert_feats(feats), self.p.loudness_lufs, self.batch_size,
                         self.p.vocoder_precision, self.device)
        return [Converted(a, {"system": "wavlm_conv", "target": self.target}) for a in out]

    def __call__(self, utt: Utterance) -> Converted:
        return self.convert_batch([utt])[0]


def build(params: Params, ctx: BuildContext) -> WavLMConversion:
    return WavLMConversion(params, ctx)
