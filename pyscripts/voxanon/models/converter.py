"""The WavLM conversion model: WavLM features of any speaker -> features of the target speaker.

FastSpeech2's encoder and decoder as in ming024/FastSpeech2 (the implementation the paper
adapted): a linear input layer (in place of the phoneme embedding) plus sinusoidal positions,
4 FFT blocks, sinusoidal positions again, 6 FFT blocks, and a linear projection back to the WavLM
size (in place of the mel projection). An FFT block is multi-head self-attention then a two-conv
position-wise feed-forward (kernels 9 and 1), each with dropout, a residual and a post-LayerNorm.
Dropped from FastSpeech2: the variance adaptor (duration / pitch / energy, length regulator) and
the PostNet; the targets are kNN-VC outputs, frame-aligned with the input, so output length =
input length (the CTC objective re-times content only within that length).

``block: transformer`` keeps this project's first setting, the pre-LN block of ESPnet's
FastSpeech2 (normalize first, a final LayerNorm after each stack).

Padding: padded frames are zeroed after every sublayer, and the convolutions see zeros past the
last real frame, as they do for the utterance alone, so a padded item converts like the same
utterance on its own (up to float rounding).

Shapes: features (B, T, 1024) with lengths (B,) -> (B, T, 1024); padded frames come out zero.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from voxanon.config import from_dict
from voxanon.models.checkpoint import load_state, read_checkpoint
from voxanon.models.config import ModelConfig


def pad_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on real frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def sinusoids(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(T, dim) sinusoidal positions (sin on even, cos on odd channels), for any length: no table
    limit, so inference on utterances longer than any seen in training stays defined."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(pos * rate)
    table[:, 1::2] = torch.cos(pos * rate[: dim // 2])
    return table


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(hidden, hidden) for _ in range(3))
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, H), mask (B, T) True on real frames: padded keys get no attention."""
        b, t, h = x.shape
        split = lambda y: y.view(b, t, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731
        att = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)),
                                             attn_mask=mask[:, None, None, :])
        return self.out(att.transpose(1, 2).reshape(b, t, h))


class ConvFeedForward(nn.Module):
    def __init__(self, hidden: int, units: int, kernels: tuple[int, int]):
        super().__init__()
        self.w1 = nn.Conv1d(hidden, units, kernels[0], padding=kernels[0] // 2)
        self.w2 = nn.Conv1d(units, hidden, kernels[1], padding=kernels[1] // 2)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        # Each conv sees zeros past the last real frame, as its own padding gives a lone
        # utterance (there a pre-LN input is the LayerNorm bias, relu(w1) is relu(bias)).
        keep = keep.transpose(1, 2)
        y = F.relu(self.w1(x.transpose(1, 2) * keep)) * keep
        return self.w2(y).transpose(1, 2)


class FFTBlock(nn.Module):
    """Self-attention + conv feed-forward; post-LN (ming024) or pre-LN (ESPnet)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pre_norm = cfg.block == "transformer"
        self.attention = SelfAttention(cfg.hidden, cfg.heads)
        self.ffn = ConvFeedForward(cfg.hidden, cfg.ffn_dim, cfg.ffn_kernels)
        self.norm1, self.norm2 = nn.LayerNorm(cfg.hidden), nn.LayerNorm(cfg.hidden)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = (x + self.dropout(self.attention(self.norm1(x), mask))) * keep
            return (x + self.dropout(self.ffn(self.norm2(x), keep))) * keep
        x = self.norm1(x + self.dropout(self.attention(x, mask))) * keep
        return self.norm2(x + self.dropout(self.ffn(x, keep))) * keep


class Stack(nn.Module):
    """Positions added, then ``layers`` FFT blocks (and a final LayerNorm for pre-LN blocks)."""

    def __init__(self, cfg: ModelConfig, layers: int):
        super().__init__()
        self.blocks = nn.ModuleList(FFTBlock(cfg) for _ in range(layers))
        self.final_norm = nn.LayerNorm(cfg.hidden) if cfg.block == "transformer" else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = (x + sinusoids(x.size(1), x.size(2), x.device).to(x.dtype)) * keep
        for block in self.blocks:
            x = block(x, mask, keep)
        return x if self.final_norm is None else self.final_norm(x) * keep


class Converter(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Linear(cfg.feat_dim, cfg.hidden)
        self.encoder = Stack(cfg, cfg.encoder_layers)
        self.decoder = Stack(cfg, cfg.decoder_layers)
        self.out = nn.Linear(cfg.hidden, cfg.feat_dim)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, D), lengths (B,) -> (converted (B, T, D), decoder states (B, T, hidden)),
        both zero beyond each length; the states give the CTC blank logit (voxanon.models.units)."""
        mask = pad_mask(lengths, feats.size(1))
        keep = mask.unsqueeze(-1).to(feats.dtype)
        states = self.decoder(self.encoder(self.inp(feats) * keep, mask, keep), mask, keep)
        return self.out(states) * keep, states

    @torch.no_grad()
    def convert(self, feats: torch.Tensor) -> torch.Tensor:
        """One utterance: (T, D) -> (T, D), every frame kept (nothing is dropped for the CTC blank)."""
        lengths = torch.tensor([feats.size(0)], device=feats.device)
        return self(feats.unsqueeze(0), lengths)[0][0]


def load_converter(path: str | Path, device: str = "cpu") -> tuple[Converter, dict]:
    """(converter in eval mode, its checkpoint's metadata: ``target`` and ``features``, the WavLM
    identity its training features came from) from a checkpoint of stage 4 (``final.pt`` or
    ``checkpoints/step_N.pt``: ``model_config`` + ``converter`` state dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: converter checkpoint not found (train it with run.sh stage 4)")
    ckpt = read_checkpoint(path)
    missing = [key for key in ("model_config", "converter") if key not in ckpt]
    if missing:
        raise ValueError(f"{path}: not a converter checkpoint (missing {', '.join(missing)})")
    model = Converter(from_dict(ModelConfig, ckpt["model_config"], f"{path}:model_config"))
    load_state(model, ckpt["converter"], path, "converter state")
    return model.to(device).eval(), {"target": str(ckpt.get("target", "")), "features": ckpt.get("features")}
