"""The WavLM conversion model: WavLM features of any speaker -> features of the target speaker.

FastSpeech2-derived and non-autoregressive: a linear input layer with positional encoding, an
encoder stack (4 blocks), a second positional encoding and a decoder stack (6 blocks), then a
linear projection back to the WavLM size. Both stacks are ESPnet encoder modules (transformer or
conformer blocks with a conv1d position-wise feed-forward, as in ESPnet's FastSpeech2). The
length regulator and variance adaptor of FastSpeech2 are left out: the training targets are
kNN-VC outputs, frame-aligned with the input, so output length = input length (the CTC objective
lets the model shift content in time within that length).

Shapes: features (B, T, 1024) with lengths (B,) -> (B, T, 1024); padded frames come out zero.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from voxanon.config import from_dict
from voxanon.models.checkpoint import load_state, read_checkpoint
from voxanon.models.config import ModelConfig


def pad_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on real frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def _stack(cfg: ModelConfig, layers: int, input_dim: int | None) -> nn.Module:
    """One ESPnet encoder stack; ``input_dim`` set = linear input layer, else positional encoding only."""
    common = dict(
        attention_dim=cfg.hidden, attention_heads=cfg.heads, linear_units=cfg.ffn_dim, num_blocks=layers,
        dropout_rate=cfg.dropout, positional_dropout_rate=cfg.dropout, attention_dropout_rate=cfg.dropout,
        input_layer="linear" if input_dim else None, normalize_before=True,
        positionwise_layer_type="conv1d", positionwise_conv_kernel_size=cfg.ffn_kernel,
    )
    if cfg.block == "transformer":
        from espnet.nets.pytorch_backend.transformer.embedding import ScaledPositionalEncoding
        from espnet.nets.pytorch_backend.transformer.encoder import Encoder

        return Encoder(idim=input_dim or 0, pos_enc_class=ScaledPositionalEncoding, **common)
    from espnet.nets.pytorch_backend.conformer.encoder import Encoder as ConformerEncoder

    return ConformerEncoder(idim=input_dim or 0, pos_enc_layer_type="rel_pos", selfattention_layer_type="rel_selfattn",
                            macaron_style=True, use_cnn_module=True, cnn_module_kernel=31, **common)


def _run_stack(stack: nn.Module, x: torch.Tensor, att_mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """An ESPnet encoder stack, layer by layer, zeroing padded frames after each layer, so whatever
    the padding holds never reaches real frames. With ``ffn_kernel`` 1 (and transformer blocks) a
    padded utterance converts exactly as it does alone; a wider conv1d feed-forward or the
    conformer's conv module still sees the layer-normed zeros next to the last real frames, as in
    ESPnet's FastSpeech2 (inference converts one utterance at a time, without padding)."""
    x = stack.embed(x)  # a tensor, or (tensor, relative positions) for the conformer
    for layer in stack.encoders:
        x, _ = layer(x, att_mask)
        x = (x[0] * keep, x[1]) if isinstance(x, tuple) else x * keep
    x = x[0] if isinstance(x, tuple) else x
    return stack.after_norm(x) if stack.normalize_before else x


class Converter(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = _stack(cfg, cfg.encoder_layers, cfg.feat_dim)
        self.decoder = _stack(cfg, cfg.decoder_layers, None)
        self.out = nn.Linear(cfg.hidden, cfg.feat_dim)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feats (B, T, D), lengths (B,) -> converted (B, T, D), zero beyond each length."""
        mask = pad_mask(lengths, feats.size(1))
        keep = mask.unsqueeze(-1).to(feats.dtype)
        att_mask = mask.unsqueeze(1)  # ESPnet's (B, 1, T) attention mask
        hidden = _run_stack(self.encoder, feats * keep, att_mask, keep)
        hidden = _run_stack(self.decoder, hidden, att_mask, keep)
        return self.out(hidden) * keep

    @torch.no_grad()
    def convert(self, feats: torch.Tensor) -> torch.Tensor:
        """One utterance: (T, D) -> (T, D), in eval mode."""
        lengths = torch.tensor([feats.size(0)], device=feats.device)
        return self(feats.unsqueeze(0), lengths)[0]


def load_converter(path: str | Path, device: str = "cpu") -> tuple[Converter, str]:
    """(converter in eval mode, its target speaker) from a checkpoint of stage 4 (``final.pt`` or
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
    return model.to(device).eval(), str(ckpt.get("target", ""))

