"""Training batches for the converter, drawn as a pure function of (seed, rank, step).

Each step's batch is chosen by a generator seeded with the step number, so a run resumed from a
checkpoint at step S sees exactly the batches it would have seen without the kill, on any number
of data-loader workers, with no sampler state to save. Items are drawn with replacement.

A batch of ``batch_size`` items holds ``round(recon_share * batch_size)`` target-reconstruction
items (a chunk of the target speaker's own frames as both input and output, speaker -100) and
conversion pairs (w(u), k(w(u), a)) for the rest, each cropped at random to ``max_frames``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from voxanon.data.features import load_scp
from voxanon.data.kaldi import read_table
from voxanon.models.config import PairsConfig

NO_SPEAKER = -100


@dataclass(frozen=True)
class PairIndex:
    """What the pairs stage wrote: utterances with their frame counts and speakers."""
    feats_scp: Path  # w(u)
    targets_scp: Path  # k(w(u), a)
    utts: tuple[str, ...]
    frames: dict[str, int]
    utt2spk: dict[str, str]

    @classmethod
    def load(cls, pairs_dir: str | Path) -> "PairIndex":
        pairs_dir = Path(pairs_dir)
        frames = {u: int(n) for u, n in read_table(pairs_dir / "utt2num_frames").items()}
        utt2spk = read_table(pairs_dir / "utt2spk")
        feats_scp = Path((pairs_dir / "feats_scp").read_text(encoding="utf-8").strip())
        return cls(feats_scp, pairs_dir / "targets.scp", tuple(sorted(frames)), frames, utt2spk)

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.utt2spk[u] for u in self.utts)))

    def split(self, valid_utts: int) -> tuple[list[str], list[str]]:
        """(train, valid): the valid utterances are those with the smallest id hash (stable)."""
        ranked = sorted(self.utts, key=lambda u: hashlib.sha256(u.encode()).hexdigest())
        valid = sorted(ranked[:valid_utts]) if valid_utts < len(ranked) else []
        held = set(valid)
        return [u for u in self.utts if u not in held], valid


def recon_chunks(frames: np.ndarray, chunk: int) -> list[np.ndarray]:
    """Target-speaker frames (N, D) cut into chunks of ``chunk`` frames (the tail joins the last)."""
    if len(frames) < 2:
        return []
    n = max(1, len(frames) // chunk)
    bounds = [i * chunk for i in range(n)] + [len(frames)]
    return [frames[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def collate(items: list[tuple[str, np.ndarray, np.ndarray, int]]) -> dict:
    """[(id, source (T, D), target (T, D), speaker)] -> padded batch tensors."""
    lengths = torch.tensor([len(s) for _, s, _, _ in items])
    dim = items[0][1].shape[1]
    source = torch.zeros(len(items), int(lengths.max()), dim)
    target = torch.zeros_like(source)
    for i, (_, s, t, _) in enumerate(items):
        source[i, : len(s)] = torch.from_numpy(np.array(s, dtype=np.float32))
        target[i, : len(t)] = torch.from_numpy(np.array(t, dtype=np.float32))
    return {"ids": [u for u, _, _, _ in items], "source": source, "target": target, "lengths": lengths,
            "speakers": torch.tensor([spk for _, _, _, spk in items])}


class StepBatches(torch.utils.data.Dataset):
    """Index ``step`` -> the collated batch of that step (use with ``batch_size=None``)."""

    def __init__(self, index: PairIndex, utts: list[str], recon: list[np.ndarray], cfg: PairsConfig,
                 batch_size: int, seed: int, rank: int, first_step: int, last_step: int):
        self.index, self.utts, self.recon, self.cfg = index, utts, recon, cfg
        self.batch_size, self.seed, self.rank = batch_size, seed, rank
        self.first_step, self.last_step = first_step, last_step
        self.spk_ids = {s: i for i, s in enumerate(index.speakers)}
        self.n_recon = round(cfg.recon_share * batch_size) if recon else 0
        self._sources = self._targets = None

    def __len__(self) -> int:
        return max(0, self.last_step - self.first_step)

    def _crop(self, rng: np.random.Generator, n: int) -> slice:
        start = int(rng.integers(0, n - self.cfg.max_frames + 1)) if n > self.cfg.max_frames else 0
        return slice(start, start + self.cfg.max_frames)

    def __getitem__(self, i: int) -> dict:
        if self._sources is None:  # opened lazily, once per worker process
            self._sources, self._targets = load_scp(self.index.feats_scp), load_scp(self.index.targets_scp)
        step = self.first_step + i
        rng = np.random.default_rng([self.seed, self.rank, step])
        items = []
        for j in range(self.n_recon):
            chunk = self.recon[int(rng.integers(len(self.recon)))]
            cut = self._crop(rng, len(chunk))
            items.append((f"recon-{step}-{j}", chunk[cut], chunk[cut], NO_SPEAKER))
        for pick in rng.integers(0, len(self.utts), self.batch_size - self.n_recon):
            utt = self.utts[pick]
            cut = self._crop(rng, self.index.frames[utt])
            items.append((str(utt), self._sources[utt][cut], self._targets[utt][cut],
                          self.spk_ids[self.index.utt2spk[utt]]))
        batch = collate(items)
        batch["step"] = step
        return batch


def valid_batches(index: PairIndex, utts: list[str], cfg: PairsConfig, batch_size: int) -> Iterator[dict]:
    """The fixed validation set: whole utterances (first ``max_frames`` frames), in id order, read
    batch by batch (so they need not stay in memory between validations)."""
    sources, targets = load_scp(index.feats_scp), load_scp(index.targets_scp)
    spk_ids = {s: i for i, s in enumerate(index.speakers)}
    cut = slice(0, cfg.max_frames)
    for i in range(0, len(utts), batch_size):
        yield collate([(u, sources[u][cut], targets[u][cut], spk_ids[index.utt2spk[u]])
                       for u in utts[i:i + batch_size]])
