"""HiFi-GAN V1 generator on WavLM features (kNN-VC's vocoder), 16 kHz.

Features (B, T, 1024) -> ``lin_pre`` Linear(1024, 512) -> weight-normed ``conv_pre`` (512, k 7)
-> four ``ups`` transposed convs (rates 10, 8, 2, 2; kernels 20, 16, 4, 4; channels halving from
512), each followed by the mean of three type-1 ``resblocks`` (kernels 3, 7, 11; dilations 1, 3, 5)
-> ``conv_post`` -> tanh -> waveform (B, 1, T * 320). A padded batch passes ``lengths``: every
conv then sees zeros past each item's end, as that item alone would, so the first
``lengths[i] * 320`` samples of item i equal its unbatched output.

Parameter names match the published ``prematch_g_02500000.pt`` / ``g_02500000.pt``
(``{"generator": state_dict}``; weight-normed layers as ``weight_g`` / ``weight_v``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voxanon.audio import SAMPLE_RATE, Audio, loudness_normalize, peak_normalize
from voxanon.batching import run_halving
from voxanon.weight_norm import WNConv1d, WNConvTranspose1d, init_normal_

LRELU = 0.1


@dataclass(frozen=True)
class HiFiGANConfig:
    in_dim: int = 1024
    initial_channels: int = 512
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2)
    upsample_kernels: tuple[int, ...] = (20, 16, 4, 4)
    resblock_kernels: tuple[int, ...] = (3, 7, 11)
    resblock_dilations: tuple[int, ...] = (1, 3, 5)

    @property
    def hop(self) -> int:
        return int(np.prod(self.upsample_rates))


class ResBlock(nn.Module):
    """HiFi-GAN type-1 residual block: (dilated conv, conv) pairs with leaky ReLU, residual adds."""

    def __init__(self, ch: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(WNConv1d(ch, ch, kernel, 1, d * (kernel - 1) // 2, d) for d in dilations)
        self.convs2 = nn.ModuleList(WNConv1d(ch, ch, kernel, 1, (kernel - 1) // 2) for _ in dilations)

    def forward(self, x: Tensor, pad: Tensor | None = None) -> Tensor:
        # in place on fresh conv outputs only (x itself is shared by the sibling blocks): fewer
        # passes and fresh buffers over activations of up to 512 channels x 16k samples/s
        for c1, c2 in zip(self.convs1, self.convs2):
            h = c1(_masked(F.leaky_relu(x, LRELU), pad))
            h = c2(_masked(F.leaky_relu(h, LRELU, inplace=True), pad))
            x = h.add_(x)
        return x


def _masked(x: Tensor, pad: Tensor | None) -> Tensor:
    """Zero past each item's end (pad (B, 1, T), True there), so convs see only real input."""
    return x if pad is None else x.masked_fill(pad, 0.0)


class Generator(nn.Module):
    def __init__(self, cfg: HiFiGANConfig = HiFiGANConfig()):
        super().__init__()
        self.cfg = cfg
        ch = cfg.initial_channels
        self.lin_pre = nn.Linear(cfg.in_dim, ch)
        self.conv_pre = WNConv1d(ch, ch, 7, 1, 3)
        self.ups = nn.ModuleList(
            WNConvTranspose1d(ch // 2**i, ch // 2**(i + 1), k, u, (k - u) // 2)
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernels)))
        self.resblocks = nn.ModuleList(
            ResBlock(ch // 2**(i + 1), k, cfg.resblock_dilations)
            for i in range(len(self.ups)) for k in cfg.resblock_kernels)
        self.conv_post = WNConv1d(ch // 2**len(self.ups), 1, 7, 1, 3)
        init_normal_(self)

    def forward(self, feats: Tensor, lengths: Tensor | None = None) -> Tensor:
        """feats (B, T, in_dim), lengths (B,) frames of a padded batch (None: all T) -> waveform
        (B, 1, T * hop) in [-1, 1]; past ``lengths[i] * hop`` item i holds padding output."""
        def padding(scale: int) -> Tensor | None:
            if lengths is None:
                return None
            positions = torch.arange(feats.shape[1] * scale, device=feats.device)
            return (positions[None, :] >= lengths[:, None] * scale).unsqueeze(1)

        x = self.conv_pre(_masked(self.lin_pre(feats).transpose(1, 2), padding(1)))
        n, scale = len(self.cfg.resblock_kernels), 1
        for i, up in enumerate(self.ups):
            x = up(_masked(F.leaky_relu(x, LRELU, inplace=True), padding(scale)))
            scale *= self.cfg.upsample_rates[i]
            pad = padding(scale)
            blocks = [self.resblocks[i * n + j] for j in range(n)]
            total = blocks[0](x, pad)  # a fresh tensor: the others add into it
            for block in blocks[1:]:
                total.add_(block(x, pad))
            x = total.div_(n)
        return torch.tanh(self.conv_post(_masked(F.leaky_relu(x, inplace=True), pad)))


def load_generator(path: str | Path | None, device: str = "cpu") -> Generator:
    """The generator of a published checkpoint (``{"generator": ...}``), or random weights for None."""
    if path is None:
        return Generator().eval().to(device)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("generator"), dict):
        found = ", ".join(sorted(map(str, ckpt))[:6]) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: not a HiFi-GAN checkpoint: expected a dict with key 'generator', found {found}")
    sd = ckpt["generator"]
    if "lin_pre.weight" not in sd:
        raise ValueError(f"{path}: generator layout differs; missing keys: lin_pre.weight")
    # Widths follow lin_pre (512 x 1024 in the published V1 vocoder); the rest is V1's layout.
    channels, in_dim = sd["lin_pre.weight"].shape
    model = Generator(HiFiGANConfig(in_dim=in_dim, initial_channels=channels))
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if missing or unexpected:
        raise ValueError(f"{path}: generator layout differs; missing keys: {', '.join(missing[:8]) or 'none'}; "
                         f"unexpected keys: {', '.join(unexpected[:8]) or 'none'}")
    model.load_state_dict(sd)
    return model.eval().to(device)


def save_generator(model: Generator, path: str | Path, **extra) -> None:
    """Write the published layout ``{"generator": state_dict, ...extra}``."""
    torch.save({"generator": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}, path)


@dataclass(frozen=True)
class _Chunk:
    item: int  # index of the utterance
    start: int  # first feature frame fed to the generator
    stop: int  # one past the last
    keep: tuple[int, int]  # frames of this chunk whose samples go to the output


def _chunks(total: int, item: int, chunk_frames: int, context_frames: int) -> list[_Chunk]:
    out = []
    for c in range(0, total, chunk_frames):
        s0, e0 = max(c - context_frames, 0), min(c + chunk_frames + context_frames, total)
        out.append(_Chunk(item, s0, e0, (c - s0, min(c + chunk_frames, total) - s0)))
    return out


def _generate(model: Generator, feats: list[Tensor], group: list[_Chunk]) -> list[Tensor]:
    """One padded pass over ``group``; each chunk's kept samples (on the CPU, float32)."""
    device, hop = next(model.parameters()).device, model.cfg.hop
    lengths = torch.tensor([c.stop - c.start for c in group], device=device)
    batch = torch.zeros(len(group), int(lengths.max()), feats[0].shape[1], device=device)
    for i, c in enumerate(group):
        batch[i, :c.stop - c.start] = feats[c.item][c.start:c.stop]
    wav = model(batch, lengths if len(group) > 1 and bool((lengths < lengths.max()).any()) else None)[:, 0]
    return [wav[i, c.keep[0] * hop:c.keep[1] * hop].float().cpu() for i, c in enumerate(group)]


@torch.inference_mode()
def vocode_batch(model: Generator, feats: list[Tensor], target_lufs: float | None = -16.0, chunk_frames: int = 1500,
                 context_frames: int = 32, batch_frames: int = 1500) -> list[Audio]:
    """Each (T_i, D) feature sequence -> 16 kHz audio of T_i * 320 samples, loudness-normalized
    to ``target_lufs`` (None: left as is) unless that would clip, then peak-normalized to 0.99.

    Each sequence is cut into chunks of ``chunk_frames`` with ``context_frames`` of overlap on
    each side, trimmed off again: the generator sees about 12 frames either way, so the seams are
    exact and memory stays bounded. Chunks, sorted by length, go through the generator in padded
    passes of at most ``batch_frames`` frames (a long chunk alone); on CUDA out-of-memory a pass
    is split. The output does not depend on how chunks are grouped (padding is masked)."""
    device = next(model.parameters()).device
    feats = [f.to(device, torch.float32) for f in feats]
    chunks = [c for i, f in enumerate(feats) for c in _chunks(f.shape[0], i, chunk_frames, context_frames)]
    queue: list[list[_Chunk]] = []
    for c in sorted(chunks, key=lambda c: c.stop - c.start):
        if queue and (len(queue[-1]) + 1) * (c.stop - c.start) <= batch_frames:
            queue[-1].append(c)
        else:
            queue.append([c])
    pieces: list[dict[int, Tensor]] = [{} for _ in feats]
    for group, wavs in run_halving(queue, lambda g: _generate(model, feats, g)):
        for c, w in zip(group, wavs):
            pieces[c.item][c.start + c.keep[0]] = w
    return [_normalized(Audio(torch.cat([p[s] for s in sorted(p)]).numpy(), SAMPLE_RATE), target_lufs)
            for p in pieces]


def _normalized(audio: Audio, target_lufs: float | None) -> Audio:
    if target_lufs is None:
        return audio
    audio = loudness_normalize(audio, target_lufs)
    # Reaching the target must not clip the wav: scale down to a 0.99 peak instead.
    return peak_normalize(audio, 0.99) if np.abs(audio.samples).max(initial=0.0) > 1.0 else audio


def vocode(model: Generator, feats: Tensor, target_lufs: float | None = -16.0, chunk_frames: int = 1500,
           context_frames: int = 32) -> Audio:
    """(T, D) features -> 16 kHz audio of T * 320 samples; see :func:`vocode_batch`."""
    return vocode_batch(model, [feats], target_lufs, chunk_frames, context_frames, chunk_frames)[0]
