"""Adversarial speaker-ID objective: an ECAPA-TDNN on WavLM features classifies the *source*
speaker of each training utterance from the converter's output, and the converter is trained to
defeat it through a gradient-reversal layer (one backward pass serves both players: the adversary
descends its cross-entropy, the converter ascends it, scaled by ``weight``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from voxanon.models.config import AdversaryConfig


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


def reverse_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; gradient multiplied by ``-scale`` backward."""
    return _ReverseGrad.apply(x, scale)


class SpeakerAdversary(nn.Module):
    """SpeechBrain's ECAPA-TDNN over (B, T, feat_dim) WavLM features + a linear speaker classifier."""

    def __init__(self, cfg: AdversaryConfig, feat_dim: int, n_speakers: int):
        super().__init__()
        from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

        c = cfg.channels
        self.embed = ECAPA_TDNN(feat_dim, lin_neurons=cfg.embedding_dim, channels=[c, c, c, c, 3 * c])
        self.classify = nn.Linear(cfg.embedding_dim, n_speakers)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feats (B, T, D), lengths (B,) frames -> speaker logits (B, n_speakers)."""
        rel = lengths.to(feats.dtype) / feats.size(1)  # SpeechBrain wants relative lengths
        return self.classify(self.embed(feats, rel).squeeze(1))


def adversarial_loss(adversary: SpeakerAdversary, converted: torch.Tensor, lengths: torch.Tensor,
                     speakers: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the adversary on the converter output through gradient reversal.

    speakers (B,) source-speaker indices, -100 for items that take no part (target
    reconstruction). Returns (loss, accuracy over the counted items)."""
    keep = speakers >= 0
    logits = adversary(reverse_grad(converted, scale), lengths)
    per_item = F.cross_entropy(logits.float(), speakers.clamp(min=0), reduction="none")
    # Always run on the whole batch, so every parameter gets a gradient (DDP needs that).
    count = keep.sum().clamp(min=1)
    loss = (per_item * keep).sum() / count
    acc = ((logits.argmax(-1) == speakers) & keep).sum().float() / count
    return loss, acc.detach()
