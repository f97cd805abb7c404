"""Weight-normalized convolutions whose parameters are named ``weight_g`` / ``weight_v``, the layout
of ``torch.nn.utils.weight_norm`` that published checkpoints (HiFi-GAN's) were saved in, so they
load and save as published without key conversion.

weight = g * v / ||v||, the norm taken over every dim except ``dim``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _norm_except(v: Tensor, dim: int) -> Tensor:
    dims = [d for d in range(v.dim()) if d != dim]
    return v.norm(2, dim=dims, keepdim=True)


class _WeightNormed(nn.Module):
    def __init__(self, weight: Tensor, bias: Tensor | None, dim: int):
        super().__init__()
        self.dim = dim
        self.weight_g = nn.Parameter(_norm_except(weight, dim).detach().clone())
        self.weight_v = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None

    @property
    def weight(self) -> Tensor:
        return self.weight_g * self.weight_v / _norm_except(self.weight_v, self.dim)


class WNConv1d(_WeightNormed):
    """``weight_norm(nn.Conv1d(...), dim=dim)`` with the same parameter names and initialization."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                 groups: int = 1, bias: bool = True, dim: int = 0):
        conv = nn.Conv1d(cin, cout, kernel, stride, padding, dilation, groups, bias)
        super().__init__(conv.weight, conv.bias, dim)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class WNConvTranspose1d(_WeightNormed):
    """``weight_norm(nn.ConvTranspose1d(...))`` (dim 0) with the same parameter names."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        conv = nn.ConvTranspose1d(cin, cout, kernel, stride, padding)
        super().__init__(conv.weight, conv.bias, 0)
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding)


class WNConv2d(_WeightNormed):
    """``weight_norm(nn.Conv2d(...))`` (dim 0), for HiFi-GAN's period discriminators."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
                 padding: tuple[int, int] = (0, 0)):
        conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        super().__init__(conv.weight, conv.bias, 0)
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


def init_normal_(module: nn.Module, std: float = 0.01) -> None:
    """HiFi-GAN's init: N(0, std) on conv weights (``weight_v`` here), norm ``g`` reset to match."""
    for m in module.modules():
        if isinstance(m, _WeightNormed):
            with torch.no_grad():
                m.weight_v.normal_(0.0, std)
                m.weight_g.copy_(_norm_except(m.weight_v, m.dim))
