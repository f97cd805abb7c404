"""Training data for the converter: pairs (w(u), k(w(u), a)) and the target speaker's own frames.

For every training utterance u with WavLM features w(u) (feats.scp of steps/make_wavlm.sh) the
kNN-VC matcher gives the target k(w(u), a) against target a's matching set. Shards
``targets.J.{ark,scp}`` (+ ``utt2num_frames.J``, ``skipped.J``) are written per job, atomically;
a shard whose files exist is finished and is not redone, so a killed job resumes. ``finalize``
then writes the files training reads from the pairs dir:

  targets.scp      k(w(u), a) per utterance         utt2num_frames   frames per kept utterance
  feats_scp        path of the w(u) feats.scp        utt2spk          source speakers (adversary labels)
  recon.npy        a's matching-set frames (N, D)   units.npy        k-means centroids (discrete objective)
  features.json    the WavLM identity of w(u) (voxanon.models.feature_id), kept in every checkpoint

Utterances with fewer than 2 frames or non-finite features are skipped, listed with the reason
in ``skipped.J`` and counted in the log.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from voxanon.data.features import combine_scps, load_scp, shard_paths, write_shard
from voxanon.config import ConfigError, fingerprint
from voxanon.data.kaldi import read_table, write_table
from voxanon.fileio import atomic_write_text
from voxanon.progress import Progress

log = logging.getLogger("voxanon.pairs")
Matcher = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]  # (query, pool, k) -> (T, D)
MIN_FRAMES = 2


def check_settings(pairs_dir: Path, settings: dict) -> None:
    """Refuse to add to pairs made with other settings (target, k, features, matching sets,
    k-means); stamp the dir with these."""
    key = fingerprint(settings)
    stamp = Path(pairs_dir) / ".pairs.key"
    if stamp.is_file() and stamp.read_text().strip() != key:
        raise ConfigError(f"{pairs_dir} holds pairs made with other settings (train.pairs target/k, "
                          "train.objectives.discrete, features or matching sets); remove it or re-run the stage "
                          "with --overwrite true (run.sh --force true)")
    atomic_write_text(stamp, key + "\n")


def shard_done(pairs_dir: Path, job: int) -> bool:
    _, scp = shard_paths(pairs_dir, "targets", job)
    return scp.is_file() and (pairs_dir / f"utt2num_frames.{job}").is_file()


def make_shard(feats_scp: Path, utts: list[str], pool: torch.Tensor, k: int, match: Matcher,
               pairs_dir: Path, job: int, dtype: str = "float32") -> None:
    """kNN-VC targets for ``utts`` (query and pool on ``pool.device``) -> shard ``job``, stored as ``dtype``."""
    if shard_done(pairs_dir, job):
        log.info("job %d: shard exists, skipped", job)
        return
    feats = load_scp(feats_scp)
    frames: dict[str, str] = {}
    skipped: dict[str, str] = {}
    progress = Progress(len(utts), f"pairs job {job}", log=log)

    def items():
        for utt in utts:
            progress.step()
            if utt not in feats:
                skipped[utt] = "no features in feats.scp"
                continue
            w = np.array(feats[utt], dtype=np.float32)
            if w.ndim != 2 or w.shape[0] < MIN_FRAMES:
                skipped[utt] = f"{w.shape[0] if w.ndim == 2 else 0} frame(s), need at least {MIN_FRAMES}"
                continue
            if not np.isfinite(w).all():
                skipped[utt] = "non-finite features"
                continue
            with torch.no_grad():
                target = match(torch.from_numpy(w).to(pool.device), pool, k)
            frames[utt] = str(w.shape[0])
            yield utt, target.float().cpu().numpy()

    write_shard(pairs_dir, "targets", job, items(), dtype)
    write_table(pairs_dir / f"skipped.{job}", skipped)
    write_table(pairs_dir / f"utt2num_frames.{job}", frames)
    log.info("job %d: %d pairs written, %d utterance(s) skipped (see %s)", job, len(frames), len(skipped),
             pairs_dir / f"skipped.{job}")


def finalize(pairs_dir: Path, nj: int, feats_scp: Path, utt2spk: dict[str, str], target_frames: np.ndarray,
             centroids: np.ndarray | None, features: dict) -> None:
    """Join the ``nj`` shards and write what training reads (see the module docstring)."""
    missing = [j for j in range(1, nj + 1) if not shard_done(pairs_dir, j)]
    if missing:
        raise RuntimeError(f"{pairs_dir}: pair shard(s) {missing} not finished; re-run the pairs jobs")
    combine_scps([shard_paths(pairs_dir, "targets", j)[1] for j in range(1, nj + 1)], pairs_dir / "targets.scp")
    frames, skipped = {}, {}
    for j in range(1, nj + 1):
        frames.update(read_table(pairs_dir / f"utt2num_frames.{j}"))
        skipped.update(read_table(pairs_dir / f"skipped.{j}"))
    if not frames:
        raise RuntimeError(f"{pairs_dir}: no usable training utterances ({len(skipped)} skipped)")
    write_table(pairs_dir / "utt2num_frames", frames)
    write_table(pairs_dir / "utt2spk", {u: utt2spk[u] for u in frames})
    atomic_write_text(pairs_dir / "feats_scp", f"{Path(feats_scp).resolve()}\n")
    atomic_write_text(pairs_dir / "features.json", json.dumps(features, sort_keys=True) + "\n")
    _save_npy(pairs_dir / "recon.npy", target_frames.astype(np.float32))
    if centroids is not None:
        _save_npy(pairs_dir / "units.npy", centroids)
    log.info("pairs: %d utterances from %d speakers, %d skipped (empty, one-frame or broken); "
             "target: %d frames (%.1f min)", len(frames), len(set(utt2spk[u] for u in frames)), len(skipped),
             len(target_frames), len(target_frames) * 0.02 / 60)


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)
