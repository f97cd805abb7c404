"""Discrete objective: k-means units of the target speaker and a CTC loss over them.

The target speaker's WavLM frames are clustered with scikit-learn k-means. Each training target
sequence is discretized (nearest centroid) and runs of the same unit are collapsed, so the unit
sequence says *what* comes next but not for how long. The converter output is scored against it
with CTC, the logits of frame t for unit j being cos(y_t, c_j) / temperature (plus a learned
"blank" direction), which lets the model warp time within the utterance.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class UnitsError(ValueError):
    """The target speaker cannot support the requested number of units."""


def fit_units(frames: np.ndarray, n_units: int, max_frames: int, seed: int, target: str) -> np.ndarray:
    """k-means centroids (n_units, D) over at most ``max_frames`` frames sampled from (N, D)."""
    if len(frames) < n_units:
        raise UnitsError(f"target {target!r}: {len(frames)} frames, fewer than the {n_units} k-means units "
                         "requested (train.objectives.discrete.units); give it more speech or ask for fewer units")
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    if len(frames) > max_frames:
        frames = frames[np.sort(rng.choice(len(frames), max_frames, replace=False))]
    km = KMeans(n_clusters=n_units, n_init=1, max_iter=100, random_state=seed).fit(frames.astype(np.float32))
    return km.cluster_centers_.astype(np.float32)


def collapse(units: torch.Tensor) -> torch.Tensor:
    """(T,) unit ids -> ids with consecutive repeats merged ("a a b b a" -> "a b a")."""
    if units.numel() == 0:
        return units
    keep = torch.ones_like(units, dtype=torch.bool)
    keep[1:] = units[1:] != units[:-1]
    return units[keep]


class UnitCTC(nn.Module):
    """CTC head with fixed centroids (K, D); class 0 is the blank, unit j is class j + 1."""

    def __init__(self, centroids: torch.Tensor, temperature: float):
        super().__init__()
        self.register_buffer("centroids", centroids.float())
        self.blank = nn.Parameter(torch.randn(centroids.size(1)) / centroids.size(1) ** 0.5)
        self.temperature = temperature

    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, K + 1) cosine similarities / temperature."""
        classes = torch.cat([self.blank[None], self.centroids], 0)
        return F.normalize(frames.float(), dim=-1) @ F.normalize(classes, dim=-1).T / self.temperature

    @torch.no_grad()
    def unit_targets(self, targets: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets (B, T, D) -> collapsed unit sequences, concatenated (sum U,) with +1 offset, and (B,) lengths."""
        nearest = torch.cdist(targets.float(), self.centroids[None]).argmin(-1)  # (B, T)
        seqs = [collapse(nearest[i, : int(n)]) + 1 for i, n in enumerate(lengths)]
        return torch.cat(seqs), torch.tensor([len(s) for s in seqs], device=targets.device)

    def forward(self, converted: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean CTC loss per unit of the converter output (B, T, D) against the targets' units."""
        units, unit_lengths = self.unit_targets(targets, lengths)
        log_probs = self.logits(converted).log_softmax(-1).transpose(0, 1)  # (T, B, K + 1)
        return F.ctc_loss(log_probs, units, lengths, unit_lengths, blank=0, reduction="mean", zero_infinity=True)
