"""WavLM (Large) to an intermediate transformer layer, as kNN-VC uses it.

The model follows the original WavLM code's ``extract_features(wav, output_layer=L)``: conv
feature extractor (per-layer LayerNorm, "layer_norm" mode), LayerNorm, projection, convolutional
positional embedding, transformer layers with gated relative position bias (pre-LN); the output is
taken right after layer ``L``, without the encoder's final LayerNorm. The raw 16 kHz waveform goes
in unnormalized (kNN-VC's reference ignores the checkpoint's ``normalize`` flag).

Parameter names are those of the original ``WavLM-Large.pt`` (``{"cfg": ..., "model": ...}``), so
that file loads as is; torchaudio's WavLM state dict (``torchaudio.models.wavlm_large()``) is
converted on load. Shapes: waveform (batch, samples) -> features (batch, frames, 1024), one frame
per 320 samples (20 ms).

Long audio is cut into overlapping chunks aligned to the 320-sample frame grid; each chunk keeps
only its centre frames, so every output frame saw ``context_seconds`` of audio on both sides.
"""
from __future__ import annotations

import ast
import logging
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voxanon.audio import SAMPLE_RATE, Audio, AudioError
from voxanon.batching import run_halving
from voxanon.weight_norm import WNConv1d

log = logging.getLogger("voxanon.wavlm")

HOP = 320  # samples per output frame at 16 kHz
LARGE_CONV = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"


@dataclass(frozen=True)
class WavLMConfig:
    """The architecture fields of the original ``cfg`` (other cfg keys are training settings)."""

    extractor_mode: str = "layer_norm"
    conv_feature_layers: str = LARGE_CONV
    conv_bias: bool = False
    encoder_layers: int = 24
    encoder_embed_dim: int = 1024
    encoder_ffn_embed_dim: int = 4096
    encoder_attention_heads: int = 16
    activation_fn: str = "gelu"
    layer_norm_first: bool = True
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = True
    num_buckets: int = 320
    max_distance: int = 800
    gru_rel_pos: bool = True
    # The input is layer-normalized before the model where a user honours this flag (asv_ssl,
    # as the VPC 2026 scorer); kNN-VC's reference ignores it.
    normalize: bool = False

    @classmethod
    def from_cfg(cls, cfg: dict[str, Any]) -> "WavLMConfig":
        known = {f.name for f in fields(cls)}
        conf = cls(**{k: v for k, v in cfg.items() if k in known})
        unsupported = {
            "extractor_mode": (conf.extractor_mode, "layer_norm"), "layer_norm_first": (conf.layer_norm_first, True),
            "relative_position_embedding": (conf.relative_position_embedding, True),
            "gru_rel_pos": (conf.gru_rel_pos, True), "activation_fn": (conf.activation_fn, "gelu"),
        }
        bad = [f"{k}={v!r} (need {want!r})" for k, (v, want) in unsupported.items() if v != want]
        if bad:
            raise ValueError(f"unsupported WavLM variant: {', '.join(bad)}; only the WavLM-Large architecture is built")
        return conf

    @property
    def conv_layers(self) -> list[tuple[int, int, int]]:
        return _parse_conv_layers(self.conv_feature_layers)


def _parse_conv_layers(spec: str) -> list[tuple[int, int, int]]:
    """Evaluate the cfg's conv spec (list/tuple literals with + and *) without ``eval``."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = ev(node.left), ev(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"conv_feature_layers: unsupported expression {spec!r}")

    layers = ev(ast.parse(spec, mode="eval"))
    return [tuple(layer) for layer in layers]


class _Transpose(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(-2, -1)


class FeatureExtractor(nn.Module):
    """Waveform (B, S) -> (B, C, T). Each block: conv, (dropout slot), LayerNorm over channels, GELU."""

    def __init__(self, layers: list[tuple[int, int, int]], bias: bool):
        super().__init__()
        blocks, cin = [], 1
        for dim, kernel, stride in layers:
            norm = nn.Sequential(_Transpose(), nn.LayerNorm(dim), _Transpose())
            # Index 1 held dropout in the original; keeping the slot keeps its parameter names.
            blocks.append(nn.Sequential(nn.Conv1d(cin, dim, kernel, stride, bias=bias), nn.Identity(), norm, nn.GELU()))
            cin = dim
        self.conv_layers = nn.ModuleList(blocks)
        self.specs = layers

    def forward(self, wav: Tensor) -> Tensor:
        x = wav.unsqueeze(1)
        for block in self.conv_layers:
            x = block(x)
        return x

    def num_frames(self, num_samples: Tensor) -> Tensor:
        n = num_samples
        for _, kernel, stride in self.specs:
            n = torch.div(n - kernel, stride, rounding_mode="floor") + 1
        return n.clamp(min=0)


class RelPosSelfAttention(nn.Module):
    """Multi-head self-attention with WavLM's gated relative position bias.

    The bias table (num_buckets, heads) lives in layer 0 only; the bucketed bias is passed on to
    later layers, each of which gates it with a gate computed from its own input."""

    def __init__(self, dim: int, heads: int, has_bias_table: bool, num_buckets: int, max_distance: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))
        self.grep_linear = nn.Linear(self.head_dim, 8)
        self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))
        if has_bias_table:
            self.relative_attention_bias = nn.Embedding(num_buckets, heads)

    def _buckets(self, rel: Tensor) -> Tensor:
        """T5-style bidirectional log buckets of relative positions (key - query)."""
        half = self.num_buckets // 2
        out = (rel > 0).long() * half
        rel = rel.abs()
        exact = half // 2
        large = exact + (torch.log(rel.float() / exact) / math.log(self.max_distance / exact) * (half - exact)).long()
        large = large.clamp(max=half - 1)
        return out + torch.where(rel < exact, rel, large)

    def position_bias(self, length: int) -> Tensor:
        pos = torch.arange(length, device=self.relative_attention_bias.weight.device)
        values = self.relative_attention_bias(self._buckets(pos[None, :] - pos[:, None]))  # (T, T, H)
        return values.permute(2, 0, 1)  # (H, T, T)

    def forward(self, x: Tensor, pad_bias: Tensor | None, pos_bias: Tensor | None) -> tuple[Tensor, Tensor]:
        """x (B, T, D); pad_bias (B, 1, 1, T) with -inf at padded keys; pos_bias (H, T, T)."""
        b, t, _ = x.shape
        if pos_bias is None:
            pos_bias = self.position_bias(t)
        heads_in = x.view(b, t, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        gate_a, gate_b = torch.sigmoid(self.grep_linear(heads_in).view(b, self.heads, t, 2, 4).sum(-1)).chunk(2, dim=-1)
        gate = gate_a * (gate_b * self.grep_a - 1.0) + 2.0  # (B, H, T, 1)
        bias = gate * pos_bias.unsqueeze(0)
        if pad_bias is not None:
            bias = bias + pad_bias
        q, k, v = (proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, -1)), pos_bias


class EncoderLayer(nn.Module):
    def __init__(self, cfg: WavLMConfig, index: int):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.self_attn = RelPosSelfAttention(dim, cfg.encoder_attention_heads, index == 0, cfg.num_buckets,
                                             cfg.max_distance)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, pad_bias: Tensor | None, pos_bias: Tensor | None) -> tuple[Tensor, Tensor]:
        attn, pos_bias = self.self_attn(self.self_attn_layer_norm(x), pad_bias, pos_bias)
        x = x + attn
        x = x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        return x, pos_bias


class Encoder(nn.Module):
    def __init__(self, cfg: WavLMConfig):
        super().__init__()
        dim = cfg.encoder_embed_dim
        # weight_norm over dim 2 as in the original; index 0 is the conv (SamePad and GELU follow).
        self.pos_conv = nn.Sequential(WNConv1d(dim, dim, cfg.conv_pos, padding=cfg.conv_pos // 2,
                                               groups=cfg.conv_pos_groups, dim=2))
        self.trim_pos = 1 if cfg.conv_pos % 2 == 0 else 0
        self.layers = nn.ModuleList(EncoderLayer(cfg, i) for i in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(dim)  # applied after the last layer only: unused to layer L

    def forward(self, x: Tensor, pad: Tensor | None, layer: int, every: bool = False) -> Tensor:
        """x (B, T, D), pad (B, T) True at padded frames -> output of transformer layer ``layer``
        (``every``: the outputs of layers 1..``layer`` stacked, (layer, B, T, D))."""
        if pad is not None:
            x = x.masked_fill(pad.unsqueeze(-1), 0.0)
        conv = self.pos_conv(x.transpose(1, 2))
        if self.trim_pos:
            conv = conv[..., :-self.trim_pos]
        x = x + F.gelu(conv).transpose(1, 2)
        pad_bias = None
        if pad is not None and pad.any():
            pad_bias = torch.zeros(pad.shape, dtype=x.dtype, device=x.device).masked_fill(pad, float("-inf"))
            pad_bias = pad_bias[:, None, None, :]
        pos_bias, outs = None, []
        for block in self.layers[:layer]:
            x, pos_bias = block(x, pad_bias, pos_bias)
            outs.append(x)
        return torch.stack(outs) if every else x


class WavLM(nn.Module):
    def __init__(self, cfg: WavLMConfig = WavLMConfig()):
        super().__init__()
        self.cfg = cfg
        layers = cfg.conv_layers
        self.feature_extractor = FeatureExtractor(layers, cfg.conv_bias)
        conv_dim = layers[-1][0]
        self.layer_norm = nn.LayerNorm(conv_dim)
        self.post_extract_proj = nn.Linear(conv_dim, cfg.encoder_embed_dim)
        self.mask_emb = nn.Parameter(torch.zeros(cfg.encoder_embed_dim))  # pre-training only; kept for the layout
        self.encoder = Encoder(cfg)

    def forward(self, wav: Tensor, lengths: Tensor | None = None, layer: int = 6) -> tuple[Tensor, Tensor]:
        """wav (B, S) float, lengths (B,) samples -> (features (B, T, D), frames (B,)): the output of
        transformer layer ``layer`` (1-based, as ``output_layer`` in the original)."""
        if not 1 <= layer <= len(self.encoder.layers):
            raise ValueError(f"layer {layer} outside 1..{len(self.encoder.layers)}")
        if lengths is None:
            lengths = torch.full((wav.shape[0],), wav.shape[1], device=wav.device)
        feats = self.layer_norm(self.feature_extractor(wav).transpose(1, 2))
        frames = self.feature_extractor.num_frames(lengths)
        pad = torch.arange(feats.shape[1], device=wav.device)[None, :] >= frames[:, None]
        x = self.encoder(self.post_extract_proj(feats), pad if pad.any() else None, layer)
        return x, frames

    def all_layers(self, wav: Tensor) -> Tensor:
        """wav (B, S) without padding -> (layers, B, T, D): every transformer layer's output, as the
        original's ``extract_features(ret_layer_results=True)`` results after their input entry."""
        feats = self.layer_norm(self.feature_extractor(wav).transpose(1, 2))
        return self.encoder(self.post_extract_proj(feats), None, len(self.encoder.layers), every=True)


# ---------------------------------------------------------------------------- checkpoints

# torchaudio name -> original name, as prefixes: top-level keys, then the parts after
# "feature_extractor.conv_layers.<i>." and after "encoder.transformer.layers.<i>." / "encoder.layers.<i>.".
_TOP = [("encoder.feature_projection.layer_norm.", "layer_norm."),
        ("encoder.feature_projection.projection.", "post_extract_proj."),
        ("encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original0", "encoder.pos_conv.0.weight_g"),
        ("encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original1", "encoder.pos_conv.0.weight_v"),
        ("encoder.transformer.pos_conv_embed.conv.", "encoder.pos_conv.0."),  # bias; weight_g/v of older torchaudio
        ("encoder.transformer.layer_norm.", "encoder.layer_norm.")]
_CONV = [("conv.", "0."), ("layer_norm.", "2.1.")]
_LAYER = [("attention.attention.out_proj.", "self_attn.out_proj."),
          ("attention.rel_attn_embed.", "self_attn.relative_attention_bias."),
          ("attention.gru_rel_pos_linear.", "self_attn.grep_linear."),
          ("attention.gru_rel_pos_const", "self_attn.grep_a"),
          ("layer_norm.", "self_attn_layer_norm."), ("final_layer_norm.", "final_layer_norm."),
          ("feed_forward.intermediate_dense.", "fc1."), ("feed_forward.output_dense.", "fc2.")]
_PREFIXES = {"conv": ("feature_extractor.conv_layers.", "feature_extractor.conv_layers."),
             "layer": ("encoder.transformer.layers.", "encoder.layers.")}
_QKV = ("q_proj", "k_proj", "v_proj")


def _rename(key: str, to_original: bool) -> str:
    src, dst = (0, 1) if to_original else (1, 0)
    for kind, table in (("conv", _CONV), ("layer", _LAYER)):
        prefix = _PREFIXES[kind][src]
        if key.startswith(prefix):
            index, rest = key[len(prefix):].split(".", 1)
            for pair in table:
                if rest.startswith(pair[src]):
                    return f"{_PREFIXES[kind][dst]}{index}.{pair[dst]}{rest[len(pair[src]):]}"
    for pair in _TOP:
        if key.startswith(pair[src]):
            return pair[dst] + key[len(pair[src]):]
    return key


def _torchaudio_to_original(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """torchaudio's WavLM keys -> the original's (the fused in_proj split into q/k/v)."""
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        if key.startswith("aux."):
            continue  # an ASR head, not part of the encoder
        if ".attention.attention.in_proj_" in key:
            head, kind = key.split(".attention.attention.in_proj_")
            base = head.replace(*_PREFIXES["layer"])
            for name, part in zip(_QKV, value.chunk(3, dim=0)):
                out[f"{base}.self_attn.{name}.{kind}"] = part.clone()
        else:
            out[_rename(key, to_original=True)] = value
    return out


def _original_to_torchaudio(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The original keys -> torchaudio's (for writing checkpoints in its layout)."""
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        if key == "mask_emb":
            continue  # torchaudio's encoder-only model has no mask embedding
        if ".self_attn.q_proj." in key:
            base, kind = key.split(".self_attn.q_proj.")
            fused = torch.cat([sd[f"{base}.self_attn.{name}.{kind}"] for name in _QKV])
            out[f"{base.replace(*reversed(_PREFIXES['layer']))}.attention.attention.in_proj_{kind}"] = fused
        elif ".self_attn.k_proj." not in key and ".self_attn.v_proj." not in key:
            out[_rename(key, to_original=False)] = value
    return out


def _cfg_from_torchaudio(sd: dict[str, Tensor], max_distance: int) -> WavLMConfig:
    """Sizes from the tensor shapes; strides follow the standard WavLM conv stack."""
    try:
        convs = sorted((int(k.split(".")[2]), v.shape) for k, v in sd.items()
                       if k.startswith("feature_extractor.conv_layers.") and k.endswith(".conv.weight"))
        strides = {10: 5, 3: 2, 2: 2}
        conv = "[" + ", ".join(f"({s[0]},{s[2]},{strides[s[2]]})" for _, s in convs) + "]"
        proj = sd["encoder.feature_projection.projection.weight"]
        pos = sd.get("encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original1",
                     sd.get("encoder.transformer.pos_conv_embed.conv.weight_v"))
        table = sd["encoder.transformer.layers.0.attention.rel_attn_embed.weight"]
        layers = {int(k.split(".")[3]) for k in sd if k.startswith("encoder.transformer.layers.")}
        return WavLMConfig(
            conv_feature_layers=conv, conv_bias=any(k.startswith("feature_extractor.") and k.endswith(".conv.bias") for k in sd),
            encoder_layers=len(layers), encoder_embed_dim=proj.shape[0],
            encoder_ffn_embed_dim=sd["encoder.transformer.layers.0.feed_forward.intermediate_dense.weight"].shape[0],
            encoder_attention_heads=table.shape[1], conv_pos=pos.shape[2], conv_pos_groups=proj.shape[0] // pos.shape[1],
            num_buckets=table.shape[0], max_distance=max_distance)
    except (KeyError, AttributeError, IndexError) as err:
        raise ValueError(f"not a torchaudio WavLM state dict: missing or malformed {err}") from None


def _check_keys(model: nn.Module, sd: dict[str, Tensor], path: str, layout: str) -> None:
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if missing or unexpected:
        raise ValueError(f"{path}: not a loadable WavLM checkpoint ({layout} layout); "
                         f"missing keys: {', '.join(missing[:8]) or 'none'}{' ...' if len(missing) > 8 else ''}; "
                         f"unexpected keys: {', '.join(unexpected[:8]) or 'none'}{' ...' if len(unexpected) > 8 else ''}")


def load_wavlm(path: str | Path | None, device: str = "cpu", max_layer: int | None = None,
               max_distance: int = 800) -> WavLM:
    """A WavLM in eval mode. ``path``: the original ``WavLM-Large.pt`` (``cfg`` + ``model``), a
    torchaudio WavLM state dict, or None for a randomly initialized WavLM-Large. ``max_layer``
    drops the layers above it (saves memory; outputs up to it are unchanged). ``max_distance`` is
    needed only for torchaudio state dicts, which do not record it (800 in WavLM-Large)."""
    if path is None:
        model = WavLM()
    else:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict):
            raise ValueError(f"{path}: not a WavLM checkpoint (a {type(ckpt).__name__}, expected a dict)")
        if "cfg" in ckpt and "model" in ckpt:
            cfg, sd, layout = WavLMConfig.from_cfg(dict(ckpt["cfg"])), ckpt["model"], "original"
        elif any(k.startswith("encoder.transformer.") for k in ckpt):
            cfg, layout = _cfg_from_torchaudio(ckpt, max_distance), "torchaudio"
            sd = _torchaudio_to_original(ckpt)
            sd.setdefault("mask_emb", torch.zeros(cfg.encoder_embed_dim))
        else:
            raise ValueError(f"{path}: not a WavLM checkpoint: expected keys 'cfg' and 'model' (WavLM-Large.pt) "
                             f"or torchaudio's 'encoder.transformer.*'; found {', '.join(sorted(ckpt)[:6])}")
        model = WavLM(cfg)
        _check_keys(model, sd, str(path), layout)
        model.load_state_dict(sd)
    if max_layer is not None:
        if not 1 <= max_layer <= len(model.encoder.layers):
            raise ValueError(f"{path or 'WavLM'}: layer {max_layer} requested, the model has layers 1..{len(model.encoder.layers)}")
        model.encoder.layers = model.encoder.layers[:max_layer]
    return model.eval().to(device)


def save_wavlm(model: WavLM, path: str | Path, layout: str = "original") -> None:
    """Write ``model`` in a published layout: ``original`` (WavLM-Large.pt) or ``torchaudio``."""
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if layout == "original":
        cfg = {f.name: getattr(model.cfg, f.name) for f in fields(model.cfg)}
        torch.save({"cfg": {**cfg, "normalize": True}, "model": sd}, path)
    elif layout == "torchaudio":
        torch.save(_original_to_torchaudio(sd), path)
    else:
        raise ValueError(f"unknown layout {layout!r}; known: original, torchaudio")


# ---------------------------------------------------------------------------- extraction

@dataclass(frozen=True)
class _Segment:
    item: int  # index of the utterance
    start: int  # first sample
    stop: int  # one past the last sample
    keep: tuple[int, int]  # frames of this segment that go to the output
    out: int  # their position in the utterance's frames


def num_frames(num_samples: int, model: WavLM) -> int:
    return int(model.feature_extractor.num_frames(torch.tensor(num_samples)))


def _receptive_field(model: WavLM) -> int:
    rf, jump = 1, 1
    for _, kernel, stride in model.feature_extractor.specs:
        rf, jump = rf + (kernel - 1) * jump, jump * stride
    return rf  # 400 samples for WavLM, with a jump of HOP = 320


def _plan(n_samples: int, item: int, model: WavLM, chunk_s: float, context_s: float) -> list[_Segment]:
    """Overlapping segments on the frame grid: cores of ``chunk - 2*context`` seconds, each with
    up to ``context`` seconds of audio on both sides."""
    total = num_frames(n_samples, model)
    chunk, ctx = int(chunk_s * SAMPLE_RATE) // HOP, int(context_s * SAMPLE_RATE) // HOP
    if total <= chunk:
        return [_Segment(item, 0, n_samples, (0, total), 0)]
    core, rf = max(chunk - 2 * ctx, 1), _receptive_field(model)
    segs = []
    for c in range(0, total, core):
        s0, e0 = max(c - ctx, 0), min(c + core + ctx, total)
        stop = n_samples if e0 == total else (e0 - 1) * HOP + rf  # exactly frames s0..e0-1
        segs.append(_Segment(item, s0 * HOP, stop, (c - s0, min(c + core, total) - s0), c))
    return segs


@torch.inference_mode()
def _run(model: WavLM, audios: list[np.ndarray], segs: list[_Segment], layer: int, device: str) -> list[Tensor]:
    wavs = [torch.from_numpy(audios[s.item][s.start:s.stop]) for s in segs]
    lengths = torch.tensor([len(w) for w in wavs])
    batch = torch.zeros(len(wavs), int(lengths.max()))
    for i, w in enumerate(wavs):
        batch[i, :len(w)] = w
    feats, _ = model(batch.to(device), lengths.to(device), layer)
    return [feats[i, s.keep[0]:s.keep[1]].float() for i, s in enumerate(segs)]


def _batches(segs: list[_Segment], limit: int) -> list[list[_Segment]]:
    """Group length-sorted segments so that (count x longest) stays under ``limit`` samples."""
    batches: list[list[_Segment]] = []
    for s in sorted(segs, key=lambda s: s.stop - s.start):
        if batches and (len(batches[-1]) + 1) * (s.stop - s.start) <= limit:
            batches[-1].append(s)
        else:
            batches.append([s])
    return batches


def extract_tensors(model: WavLM, audios: list[Audio], layer: int = 6, chunk_seconds: float = 30.0,
                    context_seconds: float = 4.0, batch_seconds: float = 120.0,
                    names: list[str] | None = None) -> list[Tensor]:
    """Layer-``layer`` features (frames, D), float32 on the model's device, of each 16 kHz audio,
    batched with padding masks.

    Segments are grouped by length so a batch holds at most ``batch_seconds`` of padded audio.
    On CUDA out-of-memory a batch is split; a single segment that still does not fit is retried
    with chunks half as long (both logged)."""
    device = str(next(model.parameters()).device)
    names = names or [f"item {i}" for i in range(len(audios))]
    for audio, name in zip(audios, names):
        if audio.sample_rate != SAMPLE_RATE:
            raise AudioError(f"{name}: WavLM needs {SAMPLE_RATE} Hz audio, got {audio.sample_rate}")
        if num_frames(len(audio.samples), model) < 1:
            raise AudioError(f"{name}: {len(audio.samples)} samples is shorter than one WavLM frame (400 samples, 25 ms)")
    samples = [np.ascontiguousarray(a.samples, dtype=np.float32) for a in audios]
    segs = [s for i, x in enumerate(samples) for s in _plan(len(x), i, model, chunk_seconds, context_seconds)]
    queue = _batches(segs, int(batch_seconds * SAMPLE_RATE))
    pieces: dict[int, list[tuple[int, Tensor]]] = {i: [] for i in range(len(audios))}
    retry: set[int] = set()

    def shorter_chunks(seg) -> bool:  # a segment that does not fit alone: its audio again, chunks halved
        if chunk_seconds / 2 <= 2 * context_seconds:
            return False
        retry.add(seg.item)
        return True

    for group, results in run_halving(queue, lambda g: _run(model, samples, g, layer, device), shorter_chunks):
        for s, r in zip(group, results):
            pieces[s.item].append((s.out, r))
    outs = [torch.cat([p for _, p in sorted(pieces[i], key=lambda p: p[0])]) if i not in retry else None
            for i in range(len(audios))]
    for i in sorted(retry):
        log.warning("GPU out of memory on %s; retrying with %.1f s chunks", names[i], chunk_seconds / 2)
        outs[i] = extract_tensors(model, [audios[i]], layer, chunk_seconds / 2, context_seconds, batch_seconds,
                                  [names[i]])[0]
    return outs


def extract_batch(model: WavLM, audios: list[Audio], layer: int = 6, chunk_seconds: float = 30.0,
                  context_seconds: float = 4.0, batch_seconds: float = 120.0,
                  names: list[str] | None = None) -> list[np.ndarray]:
    """:func:`extract_tensors` as float32 arrays on the CPU."""
    return [f.cpu().numpy() for f in extract_tensors(model, audios, layer, chunk_seconds, context_seconds,
                                                     batch_seconds, names)]


def extract_layer(model: WavLM, audio: Audio, layer: int = 6, chunk_seconds: float = 30.0,
                  context_seconds: float = 4.0) -> np.ndarray:
    """Features (frames, D) of one 16 kHz audio; see :func:`extract_batch`."""
    return extract_batch(model, [audio], layer, chunk_seconds, context_seconds)[0]
