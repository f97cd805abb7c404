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

from pathlib import Path

import torch

from voxanon.anonymize.base import BuildContext, Converted, Utterance, autocast
from voxanon.anonymize.params import WavlmConvParams as Params
from voxanon.anonymize.knnvc import source_features, vocode_all
from voxanon.features.wavlm import load_wavlm
from voxanon.models.converter import load_converter
from voxanon.models.feature_id import check_features, wavlm_identity
from voxanon.registry import resolve_model
from voxanon.vocoder.hifigan import load_generator


def converter_path(params: Params) -> Path:
    if not params.checkpoint:  # a conf read as an experiment has it (exp/<exp>/converter/final.pt)
        raise ValueError("anonymizer.params.checkpoint is empty: give the converter checkpoint, "
                         "e.g. exp/<exp>/converter/final.pt")
    return Path(params.checkpoint)


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
