"""Training batches for the converter: whole utterances, length-bucketed, drawn as a pure
function of (seed, step).

Inference converts whole utterances (up to ~35 s), so training and validation do too: no crops.
Training utterances sorted by length are cut into buckets of ``BUCKET_BATCHES`` batches'
worth; each step draws one bucket (in proportion to its size) and ``batch_size`` items from it
with replacement, so a batch holds utterances of similar length and little padding.

Each step's global batch is chosen by a generator seeded with (seed, step), the same on every
rank; rank r of N takes its share of the items. So the batch does not depend on the number of
GPUs, and a run resumed at step S sees exactly the batches it would have seen without the kill,
on any number of data-loader workers, with no sampler state to save.

Target reconstruction: each item is, with probability ``recon_share``, replaced by a window of
the target speaker's own frames as both input and output (speaker -100), as long as the
utterance it replaces. The count per batch is rounded at random, so small batches get their share
on average (``round(0.1 * 4)`` would be 0 every time).
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

NO_SPEAKER = -100
BUCKET_BATCHES = 32  # batches per length bucket: many speakers per bucket, little padding


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

    def by_length(self, utts: list[str]) -> list[str]:
        return sorted(utts, key=lambda u: (self.frames[u], u))


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
    """Index ``step - first_step`` -> this rank's share of that step's batch (``batch_size=None``)."""

    def __init__(self, index: PairIndex, utts: list[str], recon: np.ndarray | None, recon_share: float,
                 batch_size: int, seed: int, rank: int, world: int, first_step: int, last_step: int):
        if batch_size % world:
            raise ValueError(f"train.optim.batch_size {batch_size} is the batch over all {world} processes: "
                             f"make it a multiple of {world}")
        self.index, self.recon, self.recon_share = index, recon, recon_share if recon is not None else 0.0
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world
        self.first_step, self.last_step = first_step, last_step
        self.spk_ids = {s: i for i, s in enumerate(index.speakers)}
        ranked, size = index.by_length(utts), BUCKET_BATCHES * batch_size
        self.buckets = [ranked[i:i + size] for i in range(0, len(ranked), size)]
        self._sources = self._targets = None

    def __len__(self) -> int:
        return max(0, self.last_step - self.first_step)

    def plan(self, step: int) -> list[tuple[str, bool, float]]:
        """The step's global batch: (utterance, replaced by reconstruction?, window start in [0, 1))."""
        rng = np.random.default_rng([self.seed, step])
        sizes = np.array([len(b) for b in self.buckets], dtype=float)
        bucket = self.buckets[int(rng.choice(len(self.buckets), p=sizes / sizes.sum()))]
        picks = rng.integers(0, len(bucket), self.batch_size)
        recon = rng.random(self.batch_size) < self.recon_share
        starts = rng.random(self.batch_size)
        return [(bucket[p], bool(r), float(s)) for p, r, s in zip(picks, recon, starts)]

    def __getitem__(self, i: int) -> dict:
        if self._sources is None:  # opened lazily, once per worker process
            self._sources, self._targets = load_scp(self.index.feats_scp), load_scp(self.index.targets_scp)
        step = self.first_step + i
        items = []
        for slot, (utt, recon, start) in enumerate(self.plan(step)):
            if slot % self.world != self.rank:
                continue
            if recon:
                n = min(self.index.frames[utt], len(self.recon))
                a = int(start * (len(self.recon) - n + 1))
                items.append((f"recon-{step}-{slot}", self.recon[a:a + n], self.recon[a:a + n], NO_SPEAKER))
            else:
                items.append((utt, self._sources[utt], self._targets[utt], self.spk_ids[self.index.utt2spk[utt]]))
        batch = collate(items)
        batch["step"] = step
        return batch


def valid_batches(index: PairIndex, utts: list[str], batch_size: int) -> Iterator[tuple[str, dict]]:
    """The fixed validation set, whole utterances, as ("short" | "long", batch): the shorter and
    the longer half by frames, length-sorted; read batch by batch (not kept in memory)."""
    sources, targets = load_scp(index.feats_scp), load_scp(index.targets_scp)
    spk_ids = {s: i for i, s in enumerate(index.speakers)}
    ranked = index.by_length(utts)
    half = len(ranked) // 2
    for group, part in (("short", ranked[:half]), ("long", ranked[half:])):
        for i in range(0, len(part), batch_size):
            yield group, collate([(u, sources[u], targets[u], spk_ids[index.utt2spk[u]])
                                  for u in part[i:i + batch_size]])
