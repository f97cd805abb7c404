"""WavLM (Large) to an intermediate transformer layer, as kNN-VC uses it.

The model is torchaudio's WavLM (``torchaudio.models.wavlm_model``), which gives what the original
WavLM code's ``extract_features(wav, output_layer=L)`` gives: the output right after transformer
layer ``L``, without the encoder's final LayerNorm. The raw 16 kHz waveform goes in unnormalized
(kNN-VC's reference ignores the checkpoint's ``normalize`` flag).

Checkpoints load in both published layouts: the original ``WavLM-Large.pt`` (``{"cfg": ...,
"model": ...}``, the release format, translated on load and save) and torchaudio's state dict.
Shapes: waveform (batch, samples) -> features (batch, frames, 1024), one frame per 320 samples
(20 ms).

Long audio is cut into overlapping chunks aligned to the 320-sample frame grid; each chunk keeps
only its centre frames, so every output frame saw ``context_seconds`` of audio on both sides.
"""
from __future__ import annotations

import ast
import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchaudio.models import wavlm_model

from voxanon.audio import SAMPLE_RATE, Audio, AudioError
from voxanon.batching import run_halving

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


FEATURE_CHUNK = 100  # output frames (2 s) per pass through the conv stack


def conv_features(blocks: nn.ModuleList, wav: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """torchaudio's ``FeatureExtractor`` forward: wav (B, S), lengths (B,) samples -> (features
    (B, T, C), frames (B,)), computed time-major, FEATURE_CHUNK output frames at a time.

    Why: torchaudio's channel-major convolutions and the transposes around each LayerNorm took
    about 40 % of WavLM's CPU time, much of it below the GEMM rate (bench/results/flops_cpu.md);
    time-major, each convolution is GEMMs on views of its input (``_conv_block``), and a 2 s chunk's
    largest activation (6.4k frames x 512 after the first conv, 13 MB per utterance) is reused by
    the allocator instead of a fresh buffer of the whole input's length per block. Every output
    frame depends only on its own receptive field, so chunks give the same frames. Equal to
    torchaudio's forward to float rounding (tests/test_knnvc_wavlm.py)."""
    field, hop = 1, 1
    for block in reversed(blocks):
        field, hop = (field - 1) * block.stride + block.kernel_size, hop * block.stride
    total = (wav.shape[-1] - field) // hop + 1
    if total < 1:
        raise ValueError(f"{wav.shape[-1]} samples are too short for WavLM's convolutions (need {field})")
    # per block, row j*C + c of its (k*C, out) matrix is tap j of input channel c; once per call
    taps = [block.conv.weight.permute(2, 1, 0).reshape(-1, block.conv.out_channels) for block in blocks]
    parts = []
    for start in range(0, total, FEATURE_CHUNK):
        end = min(total, start + FEATURE_CHUNK)
        x = wav[:, hop * start: hop * (end - 1) + field].unsqueeze(-1)  # (B, samples, 1)
        for block, block_taps in zip(blocks, taps):
            x = _conv_block(block, block_taps, x)
        parts.append(x)
    if lengths is not None:  # the stack's frames of each length: the formula of ``total``
        lengths = torch.clamp(torch.div(lengths - field, hop, rounding_mode="floor") + 1, min=0)
    return torch.cat(parts, dim=1), lengths


def _conv_block(block: nn.Module, taps: Tensor, x: Tensor) -> Tensor:
    """One torchaudio ``ConvLayerBlock`` (conv -> LayerNorm over channels -> GELU) on x (B, T, C),
    its convolution given as ``taps`` (k*C, out)."""
    k, s = block.kernel_size, block.stride
    batch, steps, chans = x.shape
    frames = (steps - k) // s + 1
    y = None
    for rows, first, width in _tap_rows(x, k, s, frames):
        part = taps[first * chans:(first + width) * chans]
        if y is None:
            y = torch.matmul(rows, part)
        else:  # explicit casts: in-place ops are outside autocast
            y.baddbmm_(rows.to(y.dtype), part.to(y.dtype).expand(batch, -1, -1))
    if block.conv.bias is not None:
        y += block.conv.bias
    norm = block.layer_norm
    x = torch.nn.functional.layer_norm(y, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
    return torch.ops.aten.gelu_(x)


def _tap_rows(x: Tensor, k: int, s: int, frames: int):
    """(rows (B, frames, width*C), first tap, width): every tap of a stride-s, kernel-k convolution
    over x (B, T, C) exactly once. Taps [j, j + s) of all output frames are one row each of x viewed
    as (T / s, s*C), a free view: one GEMM; fewer than s taps left (kernel 3, stride 2): a strided
    view each."""
    batch, _, chans = x.shape
    for first in range(0, k, s):
        if first + s <= k:  # input frames first + s*t .. + s-1 are one row of a free view
            yield x[:, first: first + s * frames].reshape(batch, frames, s * chans), first, s
        else:  # fewer taps than the stride are left: a strided view each
            for tap in range(first, k):
                yield x[:, tap: tap + s * (frames - 1) + 1: s], tap, 1


class WavLM(nn.Module):
    """torchaudio's WavLM (``feature_extractor`` and ``encoder``, its state dict in torchaudio's
    layout) run to transformer layer L with padded frames masked: torchaudio's own
    ``extract_features`` takes no padding mask for WavLM."""

    def __init__(self, cfg: WavLMConfig = WavLMConfig()):
        super().__init__()
        self.cfg = cfg
        ta = wavlm_model("layer_norm", cfg.conv_layers, cfg.conv_bias, cfg.encoder_embed_dim, 0.0, cfg.conv_pos,
                         cfg.conv_pos_groups, cfg.encoder_layers, cfg.encoder_attention_heads, cfg.num_buckets,
                         cfg.max_distance, 0.0, cfg.encoder_ffn_embed_dim, 0.0, 0.0, True, 0.0, None)
        self.feature_extractor, self.encoder = ta.feature_extractor, ta.encoder

    @property
    def num_layers(self) -> int:
        return len(self.encoder.transformer.layers)

    def layer_outputs(self, wav: Tensor, lengths: Tensor | None, layer: int,
                      every: bool = False) -> tuple[list[Tensor], Tensor]:
        """wav (B, S), lengths (B,) samples -> (the output of layer ``layer``, or with ``every`` those
        of layers 1..``layer``, each (B, T, D); frames (B,)). Without ``every`` only the last is kept."""
        if not 1 <= layer <= self.num_layers:
            raise ValueError(f"layer {layer} outside 1..{self.num_layers}")
        feats, frames = conv_features(self.feature_extractor.conv_layers, wav, lengths)
        if frames is None:
            frames = torch.full((wav.shape[0],), feats.shape[1], device=wav.device)
        pad = torch.arange(feats.shape[1], device=wav.device)[None, :] >= frames[:, None]
        x, keys = self.encoder.feature_projection(feats), None
        if pad.any():
            x = x.masked_fill(pad.unsqueeze(-1), 0.0)
            # additive, in the position bias's dtype (the weights'), as the attention adds it to that
            dtype = self.encoder.feature_projection.projection.weight.dtype
            keys = torch.zeros(pad.shape, dtype=dtype, device=wav.device).masked_fill(pad, float("-inf"))
        x = x + self.encoder.transformer.pos_conv_embed(x)  # pre-LN: the encoder's LayerNorm comes last, unused
        outs, bias = [], None
        for block in self.encoder.transformer.layers[:layer]:
            x, bias = block(x, position_bias=bias, key_padding_mask=keys)
            if every:
                outs.append(x)
        return (outs if every else [x]), frames

    def forward(self, wav: Tensor, lengths: Tensor | None = None, layer: int = 6) -> tuple[Tensor, Tensor]:
        """wav (B, S) float, lengths (B,) samples -> (features (B, T, D), frames (B,)): the output of
        transformer layer ``layer`` (1-based, as ``output_layer`` in the original)."""
        outs, frames = self.layer_outputs(wav, lengths, layer)
        return outs[-1], frames

    def all_layers(self, wav: Tensor) -> Tensor:
        """wav (B, S) without padding -> (layers, B, T, D): every transformer layer's output, as the
        original's ``extract_features(ret_layer_results=True)`` results after their input entry."""
        return torch.stack(self.layer_outputs(wav, None, self.num_layers, every=True)[0])


# ---------------------------------------------------------------------------- checkpoints

# torchaudio name -> original name, as prefixes: top-level keys, then the parts after
# "feature_extractor.conv_layers.<i>." and after "encoder.transformer.layers.<i>." / "encoder.layers.<i>.".
_TOP = [("encoder.feature_projection.layer_norm.", "layer_norm."),
        ("encoder.feature_projection.projection.", "post_extract_proj."),
        ("encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original0", "encoder.pos_conv.0.weight_g"),
        ("encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original1", "encoder.pos_conv.0.weight_v"),
        ("encoder.transformer.pos_conv_embed.conv.", "encoder.pos_conv.0."),  # the bias
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


def original_state_dict(model: WavLM) -> dict[str, Tensor]:
    """The model's weights under the original's names (the fused in_proj split into q/k/v)."""
    out: dict[str, Tensor] = {}
    for key, value in model.state_dict().items():
        if ".attention.attention.in_proj_" in key:
            head, kind = key.split(".attention.attention.in_proj_")
            base = head.replace(*_PREFIXES["layer"])
            for name, part in zip(_QKV, value.chunk(3, dim=0)):
                out[f"{base}.self_attn.{name}.{kind}"] = part.clone()
        else:
            out[_rename(key, to_original=True)] = value
    return out


def _original_to_torchaudio(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The original keys -> torchaudio's (q/k/v fused into in_proj)."""
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        if key == "mask_emb":
            continue  # pre-training only; torchaudio's encoder-only model has no mask embedding
        if ".self_attn.q_proj." in key:
            base, kind = key.split(".self_attn.q_proj.")
            fused = torch.cat([sd[f"{base}.self_attn.{name}.{kind}"] for name in _QKV])
            out[f"{base.replace(*reversed(_PREFIXES['layer']))}.attention.attention.in_proj_{kind}"] = fused
        elif ".self_attn.k_proj." not in key and ".self_attn.v_proj." not in key:
            out[_rename(key, to_original=False)] = value
    return out


def _new_weight_norm(key: str) -> str:
    """Older torchaudio named the positional conv's weight norm parts weight_g / weight_v."""
    for old, new in (("weight_g", "original0"), ("weight_v", "original1")):
        key = key.replace(f"pos_conv_embed.conv.{old}", f"pos_conv_embed.conv.parametrizations.weight.{new}")
    return key


def _cfg_from_torchaudio(sd: dict[str, Tensor], max_distance: int) -> WavLMConfig:
    """Sizes from the tensor shapes; strides follow the standard WavLM conv stack."""
    try:
        convs = sorted((int(k.split(".")[2]), v.shape) for k, v in sd.items()
                       if k.startswith("feature_extractor.conv_layers.") and k.endswith(".conv.weight"))
        strides = {10: 5, 3: 2, 2: 2}
        conv = "[" + ", ".join(f"({s[0]},{s[2]},{strides[s[2]]})" for _, s in convs) + "]"
        proj = sd["encoder.feature_projection.projection.weight"]
        pos = sd["encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original1"]
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


def _check_keys(expected: set[str], sd: dict[str, Tensor], path: str, layout: str) -> None:
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
            model = WavLM(WavLMConfig.from_cfg(dict(ckpt["cfg"])))
            _check_keys(set(original_state_dict(model)) | {"mask_emb"}, ckpt["model"], str(path), "original")
            sd = _original_to_torchaudio(ckpt["model"])
        elif any(k.startswith("encoder.transformer.") for k in ckpt):
            sd = {_new_weight_norm(k): v for k, v in ckpt.items() if not k.startswith("aux.")}  # aux: an ASR head
            model = WavLM(_cfg_from_torchaudio(sd, max_distance))
            _check_keys(set(model.state_dict()), sd, str(path), "torchaudio")
        else:
            raise ValueError(f"{path}: not a WavLM checkpoint: expected keys 'cfg' and 'model' (WavLM-Large.pt) "
                             f"or torchaudio's 'encoder.transformer.*'; found {', '.join(sorted(ckpt)[:6])}")
        model.load_state_dict(sd)
    if max_layer is not None:
        if not 1 <= max_layer <= model.num_layers:
            raise ValueError(f"{path or 'WavLM'}: layer {max_layer} requested, the model has layers 1..{model.num_layers}")
        model.encoder.transformer.layers = model.encoder.transformer.layers[:max_layer]
    return model.eval().to(device)


def save_wavlm(model: WavLM, path: str | Path, layout: str = "original") -> None:
    """Write ``model`` in a published layout: ``original`` (WavLM-Large.pt) or ``torchaudio``."""
    if layout == "original":
        sd = {k: v.detach().cpu() for k, v in original_state_dict(model).items()}
        sd["mask_emb"] = torch.zeros(model.cfg.encoder_embed_dim)  # pre-training only
        cfg = {f.name: getattr(model.cfg, f.name) for f in fields(model.cfg)}
        torch.save({"cfg": {**cfg, "normalize": True}, "model": sd}, path)
    elif layout == "torchaudio":
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
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
    n = num_samples
    for _, kernel, stride in model.cfg.conv_layers:
        n = (n - kernel) // stride + 1
    return max(n, 0)


def _receptive_field(model: WavLM) -> int:
    rf, jump = 1, 1
    for _, kernel, stride in model.cfg.conv_layers:
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
