"""Shared helpers for the converter tests: tiny configs and a synthetic pairs dir.

The features are random but structured (a per-speaker offset on shared "phone" vectors), so the
kNN targets are learnable and the source speaker is identifiable from the features.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from voxanon.config import from_dict
from voxanon.data.features import write_shard
from voxanon.knn.matcher import knn_average
from voxanon.models.config import TrainConfig
from voxanon.models.pairs import finalize, make_shard

DIM = 32


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and do not stall when the machine is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(**objectives) -> TrainConfig:
    return from_dict(TrainConfig, {
        "pairs": {"target": "tgt", "valid_utts": 4, "recon_share": 0.25},
        "model": {"feat_dim": DIM, "hidden": 32, "heads": 2, "ffn_dim": 64, "encoder_layers": 1,
                  "decoder_layers": 1, "dropout": 0.0},
        "objectives": objectives,
        "optim": {"batch_size": 8, "lr": 3e-3, "warmup_steps": 10, "max_steps": 200, "checkpoint_every": 50,
                  "valid_every": 50, "log_every": 50, "num_workers": 0, "grad_clip": 5.0},
    })


def synthetic_features(rng: np.random.Generator, n_spk: int = 4, utts_per_spk: int = 6,
                       segments: tuple[int, int] = (4, 10)):
    """{utt: (T, DIM)}, utt2spk, target-speaker frames (400, DIM); each utterance has ``segments``
    (low, high) phone segments of 3-6 frames."""
    phones = rng.normal(size=(12, DIM)).astype(np.float32)
    feats, utt2spk = {}, {}
    for s in range(n_spk):
        offset = rng.normal(scale=1.5, size=DIM).astype(np.float32)
        for u in range(utts_per_spk):
            seq = phones[rng.integers(0, len(phones), rng.integers(*segments))].repeat(rng.integers(3, 7), 0)
            utt = f"spk{s}-utt{u}"
            feats[utt] = seq + offset + 0.1 * rng.normal(size=seq.shape).astype(np.float32)
            utt2spk[utt] = f"spk{s}"
    target_offset = rng.normal(scale=1.5, size=DIM).astype(np.float32)
    target = phones[rng.integers(0, len(phones), 400)] + target_offset + 0.1 * rng.normal(size=(400, DIM))
    return feats, utt2spk, target.astype(np.float32)


FEATURES = {"wavlm": "synthetic", "layer": 6}  # the feature identity of the synthetic pairs


def make_pairs_dir(root: Path, seed: int = 0, extra: dict[str, np.ndarray] | None = None,
                   centroids: np.ndarray | None = None, data: tuple | None = None) -> Path:
    """feats.scp + a finished pairs dir (2 shards) under ``root``; ``extra`` adds raw utterances;
    ``data`` = synthetic_features(...) output to use instead of the default set."""
    rng = np.random.default_rng(seed)
    feats, utt2spk, target = data or synthetic_features(rng)
    for utt, mat in (extra or {}).items():
        feats[utt], utt2spk[utt] = mat, "spk0"
    scp = write_shard(root / "feats", "feats", 1, sorted(feats.items()))
    utts = sorted(feats)
    pairs = root / "pairs"
    pool = torch.from_numpy(target)
    for job, part in ((1, utts[: len(utts) // 2]), (2, utts[len(utts) // 2:])):
        make_shard(scp, part, pool, 4, knn_average, pairs, job)
    finalize(pairs, 2, scp, utt2spk, target, centroids, FEATURES)
    return pairs
