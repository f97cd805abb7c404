"""Discrete objective: spherical k-means units of the target speaker and a CTC loss over them.

One geometry throughout, the cosine: the target speaker's WavLM frames are clustered with
spherical k-means (unit-norm centroids, assignment by the largest cosine), each training target
frame is labelled with its most similar centroid, and the logit of output frame t for unit j is
cos(y_t, c_j) / temperature. So a perfect kNN-VC output, labelled frame by frame, is also the
best CTC path. Runs of the same unit are collapsed: the unit sequence says *what* comes next,
not for how long, and CTC lets the model warp time within the utterance.

The blank: CTC needs a class for "no new unit here". It is a class logit, not a direction in
the feature space: a linear read-out of the decoder state (a frame's blank score does not depend
on where its output feature points). Every output frame, blank or not, is a feature vector the
vocoder receives; nothing is dropped, and the output keeps the input's length.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class UnitsError(ValueError):
    """The target speaker cannot support the requested number of units."""


def spherical_kmeans(frames: torch.Tensor, n_units: int, seed: int, iters: int = 100) -> torch.Tensor:
    """(N, D) -> (n_units, D) unit-norm centroids maximizing the summed cosine of each frame to
    its centroid (k-means++ start on cosine distance; empty clusters restart at the worst-fit frame)."""
    x = F.normalize(frames.float(), dim=-1)
    gen = torch.Generator().manual_seed(seed)
    chosen = [x[int(torch.randint(len(x), (1,), generator=gen))]]
    best = x @ chosen[0]  # each frame's cosine to its nearest start so far
    for _ in range(1, n_units):  # k-means++: the next start far (in cosine) from those chosen
        dist = (1 - best).clamp(min=0)
        weights = dist if dist.sum() > 0 else torch.ones_like(dist)
        chosen.append(x[int(torch.multinomial(weights, 1, generator=gen))])
        best = torch.maximum(best, x @ chosen[-1])
    centroids = torch.stack(chosen)
    labels = None
    for _ in range(iters):
        sims = x @ centroids.T
        new = sims.argmax(1)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=n_units)
        for j in torch.nonzero(counts == 0).flatten():  # an empty cluster takes the worst-fit frame
            worst = sims.max(1).values.argmin()
            sums[j], sims[worst] = x[worst], 1.0
        centroids = F.normalize(sums, dim=-1)
    return centroids


def fit_units(frames: np.ndarray, n_units: int, max_frames: int, seed: int, target: str) -> np.ndarray:
    """Spherical k-means centroids (n_units, D) over at most ``max_frames`` frames sampled from (N, D)."""
    if len(frames) < n_units:
        raise UnitsError(f"target {target!r}: {len(frames)} frames, fewer than the {n_units} k-means units "
                         "requested (train.objectives.discrete.units); give it more speech or ask for fewer units")
    rng = np.random.default_rng(seed)
    if len(frames) > max_frames:
        frames = frames[np.sort(rng.choice(len(frames), max_frames, replace=False))]
    return spherical_kmeans(torch.from_numpy(np.asarray(frames, np.float32)), n_units, seed).numpy()


def collapse(units: torch.Tensor) -> torch.Tensor:
    """(T,) unit ids -> ids with consecutive repeats merged ("a a b b a" -> "a b a")."""
    if units.numel() == 0:
        return units
    keep = torch.ones_like(units, dtype=torch.bool)
    keep[1:] = units[1:] != units[:-1]
    return units[keep]


class UnitCTC(nn.Module):
    """CTC head with fixed centroids (K, D); class 0 is the blank, unit j is class j + 1."""

    def __init__(self, centroids: torch.Tensor, temperature: float, hidden: int):
        super().__init__()
        self.register_buffer("centroids", F.normalize(centroids.float(), dim=-1))
        self.blank = nn.Linear(hidden, 1)  # blank logit from the decoder state
        self.temperature = temperature

    def logits(self, frames: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Output frames (B, T, D) and decoder states (B, T, H) -> (B, T, K + 1) float32 logits."""
        # float32 even under autocast: bf16 keeps ~3 significant digits, coarse for cosines / temperature.
        with torch.autocast(frames.device.type, enabled=False):
            units = F.normalize(frames.float(), dim=-1) @ self.centroids.T / self.temperature
            return torch.cat([self.blank(states.float()), units], -1)

    @torch.no_grad()
    def unit_targets(self, targets: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets (B, T, D) -> collapsed unit sequences, concatenated (sum U,) with +1 offset, and (B,) lengths."""
        nearest = (F.normalize(targets.float(), dim=-1) @ self.centroids.T).argmax(-1)  # (B, T), by cosine
        seqs = [collapse(nearest[i, : int(n)]) + 1 for i, n in enumerate(lengths)]
        return torch.cat(seqs), torch.tensor([len(s) for s in seqs], device=targets.device)

    def forward(self, converted: torch.Tensor, states: torch.Tensor, lengths: torch.Tensor,
                targets: torch.Tensor) -> torch.Tensor:
        """Mean CTC loss per unit of the converter output (B, T, D) against the targets' units."""
        units, unit_lengths = self.unit_targets(targets, lengths)
        log_probs = self.logits(converted, states).log_softmax(-1).transpose(0, 1)  # (T, B, K + 1)
        return F.ctc_loss(log_probs, units, lengths, unit_lengths, blank=0, reduction="mean", zero_infinity=True)
