"""VPC 2026 Track 1's ``asv_ssl``: an ECAPA-TDNN fused with every layer of a frozen WavLM-Large.

Two branches meet before the multi-layer aggregation (the 2026 repository's
``ecapa_model_wavlm_24layer.py``, written anew here):

- fbank branch: speechbrain's ECAPA-TDNN blocks on the mean-normalized 80-d fbank of the scoring
  signal (-30 LUFS, peak-normalized, leading/trailing zeros trimmed);
- WavLM branch: the outputs of all transformer layers (24 in WavLM-Large) of the *whole file*
  (layer-normalized when the checkpoint's cfg says ``normalize``), a softmax-weighted sum of them,
  then four SE-Res2Net blocks of the same sizes;
- the concatenated outputs of blocks 2-4 of each branch are multiplied element-wise (the WavLM
  frames first averaged or tiled to the fbank frame count, ``resample_frames``), then MFA,
  attentive statistics pooling, BatchNorm and the 192-d linear layer, as ECAPA-TDNN.

Release layout (``asv_ssl.zip`` -> ``exp/asv_ssl``): ``embedding_model.ckpt`` (the state dict,
possibly under ``state_dict`` and with ``module.`` prefixes) and ``WavLM-Large.pt`` beside it.
Sizes (1024 channels, 3072 MFA, attention 128, 192-d, 24 layers) are read from the weights.
Embeddings are returned unnormalized; scoring applies ``eval.embedding_norm``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN, SERes2NetBlock
from torch import nn

from voxanon.eval.asv_model import DILATIONS, KERNEL_SIZES, EcapaShape, Frontend, shape_from_state
from voxanon.features.wavlm import WavLM, load_wavlm

WAVLM_FILE = "WavLM-Large.pt"
DROPOUT = 0.3  # the 2026 model's TDNN / SE-Res2Net dropout (active when fine-tuning)


def resample_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, D, T) -> (B, D, frames): fewer frames by averaging consecutive runs (the first runs
    ``T // frames`` long, the last ``T % frames`` one longer); more by tiling the sequence."""
    t = x.shape[-1]
    if t == frames:
        return x
    if t < frames:
        return x.repeat(1, 1, -(-frames // t))[..., :frames]
    base, extra = divmod(t, frames)
    split = (frames - extra) * base
    short = x[..., :split].reshape(*x.shape[:2], frames - extra, base).mean(-1)
    long = x[..., split:].reshape(*x.shape[:2], extra, base + 1).mean(-1)
    return torch.cat([short, long], dim=-1)


@dataclass(frozen=True)
class SslShape(EcapaShape):
    layers: int = 24


class SslEcapa(ECAPA_TDNN):
    """ECAPA-TDNN (``blocks``, ``mfa``, ``asp``, ``asp_bn``, ``fc``) + ``blocks_features`` and
    ``weighted_sum.layer_weights`` for the WavLM branch; the 2026 checkpoint's parameter names."""

    def __init__(self, shape: SslShape):
        c = shape.channels
        super().__init__(input_size=shape.n_mels, lin_neurons=shape.emb_dim, channels=[c, c, c, c, 3 * c],
                         kernel_sizes=KERNEL_SIZES, dilations=DILATIONS,
                         attention_channels=shape.attention_channels, dropout=DROPOUT)
        self.blocks_features = nn.ModuleList(
            SERes2NetBlock(c, c, res2net_scale=8, se_channels=128, kernel_size=k, dilation=d, dropout=DROPOUT)
            for k, d in zip(KERNEL_SIZES[:4], DILATIONS[:4]))
        self.weighted_sum = nn.Module()
        self.weighted_sum.layer_weights = nn.Parameter(torch.ones(shape.layers))

    def forward(self, fbank: torch.Tensor, layers: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """fbank (B, frames, n_mels), layers (L, B, T, C) -> embeddings (B, 1, emb_dim)."""
        w = torch.softmax(self.weighted_sum.layer_weights, dim=0)
        x, f = fbank.transpose(1, 2), (layers * w[:, None, None, None]).sum(0).transpose(1, 2)
        xs, fs = [], []
        for block in self.blocks:
            x = block(x)
            xs.append(x)
        for block in self.blocks_features:
            f = block(f)
            fs.append(f)
        x = torch.cat(xs[1:], dim=1)
        x = self.mfa(x * resample_frames(torch.cat(fs[1:], dim=1), x.shape[-1]))
        return self.fc(self.asp_bn(self.asp(x))).transpose(1, 2)


class AsvSslModel(nn.Module):
    """``embed(samples, raw)`` -> (emb_dim,): ``samples`` the scoring signal, ``raw`` the file's."""

    def __init__(self, shape: SslShape, wavlm: WavLM):
        super().__init__()
        self.shape = shape
        self.frontend = Frontend(shape.n_mels)
        self.ecapa = SslEcapa(shape)
        self.wavlm = wavlm.eval().requires_grad_(False)  # frozen, also when fine-tuning

    def train(self, mode: bool = True) -> AsvSslModel:
        super().train(mode)
        self.wavlm.eval()  # frozen: its dropout stays off while the ECAPA part fine-tunes
        return self

    def wavlm_layers(self, raw: torch.Tensor) -> torch.Tensor:
        """raw (B, S) equal-length signals -> (L, B, T, C), no gradient."""
        if self.wavlm.cfg.normalize:
            raw = F.layer_norm(raw, raw.shape[-1:])
        with torch.no_grad():
            return self.wavlm.all_layers(raw)

    def forward(self, wavs: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """wavs (B, S) for the fbank branch, raw (B, S') for WavLM -> (B, emb_dim)."""
        return self.ecapa(self.frontend(wavs), self.wavlm_layers(raw)).squeeze(1)

    @torch.no_grad()
    def embed(self, samples: np.ndarray, raw: np.ndarray | None = None) -> np.ndarray:
        samples = np.trim_zeros(np.asarray(samples, dtype=np.float32))
        if len(samples) < 400:  # shorter than one 25 ms frame: pad with silence
            samples = np.pad(samples, (0, 400 - len(samples)))
        device = next(self.ecapa.parameters()).device
        wav = torch.from_numpy(samples).to(device).unsqueeze(0)
        whole = torch.from_numpy(np.asarray(samples if raw is None else raw, dtype=np.float32)).to(device)
        return self.forward(wav, whole.unsqueeze(0))[0].float().cpu().numpy()


def is_ssl_state(state: dict) -> bool:
    return "weighted_sum.layer_weights" in state


def release_state(ckpt: dict) -> dict:
    """The state dict of a 2026 ``embedding_model.ckpt`` (``state_dict`` wrapper, ``module.`` prefixes)."""
    state = ckpt.get("state_dict", ckpt)
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_asv_ssl(ckpt: Path, state: dict, device: str | torch.device = "cpu") -> AsvSslModel:
    """The model of ``state`` (from ``ckpt``) with the ``WavLM-Large.pt`` beside it, eval mode."""
    wavlm_path = ckpt.parent / WAVLM_FILE
    if not wavlm_path.is_file():
        raise FileNotFoundError(f"{ckpt}: an asv_ssl model needs {WAVLM_FILE} beside it (the release's exp/asv_ssl)")
    shape = SslShape(**vars(shape_from_state(state, str(ckpt))), layers=state["weighted_sum.layer_weights"].shape[0])
    model = AsvSslModel(shape, load_wavlm(wavlm_path))
    if model.wavlm.num_layers != shape.layers:
        raise ValueError(f"{ckpt}: weights fuse {shape.layers} WavLM layers, {wavlm_path} has "
                         f"{model.wavlm.num_layers}")
    model.ecapa.load_state_dict(state)
    return model.to(device).eval()
