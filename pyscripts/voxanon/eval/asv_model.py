"""The ASV model: speechbrain's Fbank + sentence mean normalization + ECAPA-TDNN, as in VPC 2024.

A model directory holds ``embedding_model.ckpt`` (the ECAPA-TDNN state dict, speechbrain's own
layout) and optionally ``classifier.ckpt`` and ``asv.json`` (our training settings). That is also
the layout of the VPC 2024 release's ``asv_orig`` and of a speechbrain training output
(``CKPT+<time>/embedding_model.ckpt``), at any depth below the given dir (the shallowest; among
siblings the newest by name), so all of them load the same way: the state dict goes into the same
architecture, whose sizes are read from the weights' shapes (input mels, channels, attention
channels, embedding size). Embeddings are what speechbrain's ``EncoderClassifier.encode_batch``
gives, as the VPC calls it (no global embedding normalization). Nothing in the model dir is
executed; ``torch.load(..., weights_only=True)``. A VPC 2026 ``asv_ssl`` dir (its weights fuse
WavLM layers) loads as ``voxanon.eval.asv_ssl.AsvSslModel``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

from voxanon.audio import SAMPLE_RATE

KERNEL_SIZES = [5, 3, 3, 3, 1]
DILATIONS = [1, 2, 3, 4, 1]
EMBEDDING_FILE = "embedding_model.ckpt"
CLASSIFIER_FILE = "classifier.ckpt"
INFO_FILE = "asv.json"


class AsvModelError(RuntimeError):
    """An ASV model dir is missing or its weights do not fit the architecture."""


@dataclass(frozen=True)
class EcapaShape:
    n_mels: int = 80
    channels: int = 512
    attention_channels: int = 128
    emb_dim: int = 192


def build_ecapa(shape: EcapaShape) -> ECAPA_TDNN:
    c = shape.channels
    return ECAPA_TDNN(
        input_size=shape.n_mels,
        channels=[c, c, c, c, 3 * c],
        kernel_sizes=KERNEL_SIZES,
        dilations=DILATIONS,
        attention_channels=shape.attention_channels,
        lin_neurons=shape.emb_dim,
    )


def shape_from_state(state: dict[str, torch.Tensor], where: str) -> EcapaShape:
    """Architecture sizes from an ECAPA-TDNN state dict (speechbrain key names)."""
    try:
        first = state["blocks.0.conv.conv.weight"]  # (channels, n_mels, 5)
        att = state["asp.tdnn.conv.conv.weight"]  # (attention, 3·3·channels, 1)
        fc = state["fc.conv.weight"]  # (emb_dim, 2·3·channels, 1)
    except KeyError as err:
        raise AsvModelError(f"{where}: not a speechbrain ECAPA-TDNN state dict (no {err.args[0]})") from None
    return EcapaShape(n_mels=first.shape[1], channels=first.shape[0], attention_channels=att.shape[0],
                      emb_dim=fc.shape[0])


class Frontend(torch.nn.Module):
    """wav (batch, samples) at 16 kHz -> mean-normalized log-mel fbank (batch, frames, n_mels).

    speechbrain Fbank defaults (25 ms window, 10 ms hop, 0-8 kHz) as in the VPC recipe; the
    per-utterance mean over time is subtracted (InputNormalization 'sentence', no std norm).
    """

    def __init__(self, n_mels: int):
        super().__init__()
        self.fbank = Fbank(n_mels=n_mels, sample_rate=SAMPLE_RATE)

    def forward(self, wavs: torch.Tensor) -> torch.Tensor:
        return normalize_feats(self.fbank(wavs))


def normalize_feats(feats: torch.Tensor) -> torch.Tensor:
    """Subtract each utterance's mean over time; feats (batch, frames, n_mels), all frames valid."""
    return feats - feats.mean(dim=1, keepdim=True)


class AsvModel(torch.nn.Module):
    """Embedding extractor: ``embed(wav)`` -> (emb_dim,) for one 16 kHz utterance."""

    def __init__(self, shape: EcapaShape):
        super().__init__()
        self.shape = shape
        self.frontend = Frontend(shape.n_mels)
        self.ecapa = build_ecapa(shape)

    def forward(self, wavs: torch.Tensor) -> torch.Tensor:
        """wavs (batch, samples) of equal length -> embeddings (batch, emb_dim)."""
        return self.ecapa(self.frontend(wavs)).squeeze(1)

    @torch.no_grad()
    def embed(self, samples: np.ndarray, raw: np.ndarray | None = None) -> np.ndarray:
        """One utterance (samples,) float32 at 16 kHz -> embedding (emb_dim,) float32.

        Leading and trailing exact zeros are trimmed first (as the VPC scorer does). ``raw`` (the
        file's own signal) is for models with a WavLM branch; ECAPA-TDNN does not use it."""
        samples = np.trim_zeros(np.asarray(samples, dtype=np.float32))
        if len(samples) < 400:  # shorter than one 25 ms frame: pad with silence
            samples = np.pad(samples, (0, 400 - len(samples)))
        device = next(self.parameters()).device
        wav = torch.from_numpy(samples).to(device).unsqueeze(0)
        return self.forward(wav)[0].float().cpu().numpy()


def find_embedding_ckpt(model_dir: Path) -> Path:
    ckpts = sorted(model_dir.rglob(EMBEDDING_FILE), key=lambda p: (len(p.parts), str(p)))
    if ckpts:
        return [p for p in ckpts if len(p.parts) == len(ckpts[0].parts)][-1]
    raise AsvModelError(f"{model_dir}: no {EMBEDDING_FILE} (expected an ASV model dir: ours from stage 6, "
                        "or the VPC 2024 asv_orig release)")


def load_asv(model_dir: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """An ASV model dir (ours, VPC release, or speechbrain training output) -> eval-mode model
    (``AsvModel``, or ``AsvSslModel`` for the VPC 2026 asv_ssl)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise AsvModelError(f"{model_dir}: ASV model dir not found")
    ckpt = find_embedding_ckpt(model_dir)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise AsvModelError(f"{ckpt}: expected a state dict, got {type(state).__name__}")
    from voxanon.eval.asv_ssl import is_ssl_state, load_asv_ssl, release_state

    if is_ssl_state(release_state(state)):
        try:
            return load_asv_ssl(ckpt, release_state(state), device)
        except (OSError, ValueError, RuntimeError) as err:
            raise AsvModelError(str(err).splitlines()[0]) from None
    model = AsvModel(shape_from_state(state, str(ckpt)))
    try:
        model.ecapa.load_state_dict(state)
    except RuntimeError as err:
        raise AsvModelError(f"{ckpt}: weights do not fit ECAPA-TDNN: {str(err).splitlines()[0]}") from None
    return model.to(device).eval()


def model_tag(model_dir: str | Path) -> str:
    """A short stable id of a model's weights (for caching embeddings): size + mtime of the file."""
    ckpt = find_embedding_ckpt(Path(model_dir))
    st = ckpt.stat()
    return f"{st.st_size:x}-{int(st.st_mtime_ns):x}"


def read_info(model_dir: str | Path) -> dict:
    path = Path(model_dir) / INFO_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
