"""HiFi-GAN discriminators and losses, for training the vocoder.

MPD: one 2-D conv stack per period (2, 3, 5, 7, 11) on the waveform folded to (T / p, p).
MSD: three 1-D conv stacks on the waveform at scales 1, 1/2, 1/4 (the first spectral-normed).
Losses (least squares GAN): discriminator sum (1 - D(real))^2 + D(fake)^2; generator sum
(1 - D(fake))^2; feature matching L1 between real and fake activations (x2); mel L1 (x45).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from voxanon.weight_norm import WNConv1d, WNConv2d

LRELU = 0.1


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int):
        super().__init__()
        self.period = period
        chans = [1, 32, 128, 512, 1024]
        self.convs = nn.ModuleList(
            WNConv2d(chans[i], chans[i + 1], (5, 1), (3, 1), (2, 0)) for i in range(4))
        self.convs.append(WNConv2d(1024, 1024, (5, 1), (1, 1), (2, 0)))
        self.conv_post = WNConv2d(1024, 1, (3, 1), (1, 1), (1, 0))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """x (B, 1, T) -> (scores (B, *), feature maps)."""
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), "reflect")
        x = x.view(b, c, -1, self.period)
        fmaps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU)
            fmaps.append(x)
        x = self.conv_post(x)
        fmaps.append(x)
        return x.flatten(1), fmaps


class ScaleDiscriminator(nn.Module):
    def __init__(self, spectral: bool = False):
        super().__init__()
        specs = [(1, 128, 15, 1, 1, 7), (128, 128, 41, 2, 4, 20), (128, 256, 41, 2, 16, 20), (256, 512, 41, 4, 16, 20),
                 (512, 1024, 41, 4, 16, 20), (1024, 1024, 41, 1, 16, 20), (1024, 1024, 5, 1, 1, 2)]
        if spectral:
            self.convs = nn.ModuleList(spectral_norm(nn.Conv1d(i, o, k, s, groups=g, padding=p))
                                       for i, o, k, s, g, p in specs)
            self.conv_post = spectral_norm(nn.Conv1d(1024, 1, 3, 1, padding=1))
        else:
            self.convs = nn.ModuleList(WNConv1d(i, o, k, s, p, groups=g) for i, o, k, s, g, p in specs)
            self.conv_post = WNConv1d(1024, 1, 3, 1, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        fmaps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU)
            fmaps.append(x)
        x = self.conv_post(x)
        fmaps.append(x)
        return x.flatten(1), fmaps


class Discriminators(nn.Module):
    """MPD + MSD; forward returns the list of (scores, feature maps) of every sub-discriminator."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11)):
        super().__init__()
        self.mpd = nn.ModuleList(PeriodDiscriminator(p) for p in periods)
        self.msd = nn.ModuleList([ScaleDiscriminator(spectral=True), ScaleDiscriminator(), ScaleDiscriminator()])
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, x: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        outs = [d(x) for d in self.mpd]
        for i, d in enumerate(self.msd):
            if i:
                x = self.pool(x)
            outs.append(d(x))
        return outs


def discriminator_loss(real: list, fake: list) -> Tensor:
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f ** 2) for (r, _), (f, _) in zip(real, fake))


def generator_loss(fake: list) -> Tensor:
    return sum(torch.mean((1 - f) ** 2) for f, _ in fake)


def feature_loss(real: list, fake: list) -> Tensor:
    return 2 * sum(F.l1_loss(f, r.detach()) for (_, rm), (_, fm) in zip(real, fake) for r, f in zip(rm, fm))
