"""The converter with its training objectives, as one module (so DDP wraps one thing).

A batch: ``source`` (B, T, D) WavLM features, ``target`` (B, T, D) kNN-VC targets (or the source
itself for target-reconstruction items), ``lengths`` (B,) frames, ``speakers`` (B,) source-speaker
indices (-100 for reconstruction items, which the adversary does not see as a speaker).

Logged parts: ``loss`` is the converter's own objective (weighted L1 + L2 + CTC); ``adv`` is the
adversary's cross-entropy, which the adversary descends and the converter ascends (x weight)
through gradient reversal. The tensor backpropagated is their sum.
"""
from __future__ import annotations

import torch
from torch import nn

from voxanon.models.adversary import SpeakerAdversary, adversarial_loss
from voxanon.models.config import TrainConfig
from voxanon.models.converter import Converter, pad_mask
from voxanon.models.units import UnitCTC


class ConverterObjectives(nn.Module):
    def __init__(self, cfg: TrainConfig, n_speakers: int, centroids: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg.objectives
        self.converter = Converter(cfg.model)
        self.adversary = None
        self.units = None
        if self.cfg.adversary.enabled:
            if n_speakers < 2:
                raise ValueError(f"the adversarial objective needs at least 2 training speakers, got {n_speakers}")
            self.adversary = SpeakerAdversary(self.cfg.adversary, cfg.model.feat_dim, n_speakers)
        if self.cfg.discrete.enabled:
            if centroids is None:
                raise ValueError("the discrete objective needs k-means centroids (units.npy of the pairs stage)")
            self.units = UnitCTC(centroids, self.cfg.discrete.temperature, cfg.model.hidden)

    def forward(self, source: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor,
                speakers: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """-> (tensor to backpropagate, named parts for logging: loss, l1, l2[, ctc][, adv, adv_acc])."""
        out, states = self.converter(source, lengths)
        mask = pad_mask(lengths, source.size(1)).unsqueeze(-1)
        n = mask.sum() * out.size(-1)
        diff = (out.float() - target.float()) * mask
        parts = {"l1": diff.abs().sum() / n, "l2": diff.pow(2).sum() / n}
        objective = self.cfg.l1_weight * parts["l1"] + self.cfg.l2_weight * parts["l2"]
        if self.units is not None:
            parts["ctc"] = self.units(out, states, lengths, target)
            objective = objective + self.cfg.discrete.weight * parts["ctc"]
        parts["loss"] = objective
        total = objective
        if self.adversary is not None:
            parts["adv"], parts["adv_acc"] = adversarial_loss(self.adversary, out, lengths, speakers,
                                                              self.cfg.adversary.weight)
            total = total + parts["adv"]  # the reversal layer scales and flips it for the converter
        return total, {k: v.detach() for k, v in parts.items()}
