"""WavLM conversion model anonymization (paper §2.2, Table 1 IDs 5-8).

Per utterance: WavLM layer-L features of the source (T, 1024) -> the trained converter (run.sh
stage 4; it learned the kNN-VC mapping to one target speaker, optionally with the adversarial
and discrete objectives) -> HiFi-GAN (the prematched kNN-VC vocoder) -> loudness-normalized
16 kHz audio. Deterministic: no per-utterance choices, so the record names only the target the
converter was trained towards. The converter only takes features of the WavLM weights and layer
it was trained on (``params.wavlm`` / ``params.layer`` are checked against its checkpoint).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from voxanon.anonymize.base import BuildContext, Converted, Utterance
from voxanon.audio import AudioError
from voxanon.features.wavlm import extract_layer, load_wavlm
from voxanon.models.converter import load_converter
from voxanon.models.feature_id import check_features, wavlm_identity
from voxanon.registry import resolve_model
from voxanon.vocoder.hifigan import load_generator, vocode


@dataclass(frozen=True)
class Params:
    # The converter from stage 4; "" = $VOXANON_EXP/converter/final.pt (the experiment run.sh runs).
    checkpoint: str = ""
    wavlm: str = "wavlm-large"  # registry name or local file; the one the training features came from
    layer: int = 6
    vocoder: str = "knnvc-prematch-vocoder"  # registry name or local file ({"generator": ...})
    loudness_lufs: float = -16.0


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
        self.p, self.device = params, ctx.device
        path = converter_path(params)
        self.converter, meta = load_converter(path, self.device)
        self.target = meta["target"]
        self.wavlm = load_wavlm(resolve_model(params.wavlm), self.device, max_layer=params.layer)
        check_features(meta["features"], wavlm_identity(self.wavlm, params.layer), path, params.wavlm)
        self.vocoder = load_generator(resolve_model(params.vocoder), self.device)

    def __call__(self, utt: Utterance) -> Converted:
        try:
            feats = torch.from_numpy(extract_layer(self.wavlm, utt.audio, self.p.layer)).to(self.device)
        except AudioError as err:
            raise AudioError(f"{utt.id}: {err}") from None
        converted = self.converter.convert(feats)
        audio = vocode(self.vocoder, converted, self.p.loudness_lufs)
        return Converted(audio, {"system": "wavlm_conv", "target": self.target})


def build(params: Params, ctx: BuildContext) -> WavLMConversion:
    return WavLMConversion(params, ctx)
