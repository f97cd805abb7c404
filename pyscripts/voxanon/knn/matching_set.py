"""Matching sets: per target speaker, the WavLM frames of all their speech (run.sh stage 3).

Built once from a target-pool data dir and its WavLM features (stage 2), then reused by every
set and run. Layout of a matching-set dir::

    sets.1.ark / sets.1.scp   speaker -> (frames, D) float32, silence trimmed at both ends of each utt
    speakers.tsv              speaker, gender, minutes of speech, utterances used
    .targets.json             what it was built from (pool, WavLM checkpoint and layer, settings);
                              written last, so its presence means the dir is complete

Silence: a frame's energy is that of the 400 samples WavLM frame ``t`` sees (from sample 320 t);
leading and trailing frames more than ``trim_db`` below the loudest frame, or below
``trim_floor_dbfs``, are dropped (the kNN-VC reference trims target audio the same way).
"""
from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voxanon.audio import AudioError, load_16k
from voxanon.config import fingerprint, to_dict
from voxanon.data.features import load_scp, shard_paths, write_shard
from voxanon.data.kaldi import atomic_write_text, load_data_dir, resolve_wav
from voxanon.features.wavlm import HOP
from voxanon.knn.config import TargetsConfig

log = logging.getLogger("voxanon.targets")
FRAMES_PER_MINUTE = 60 * 16000 // HOP  # 3000
STAMP = ".targets.json"
WINDOW = 400  # samples one WavLM frame sees


def speech_range(samples: np.ndarray, n_frames: int, trim_db: float = 40.0,
                 floor_dbfs: float = -60.0) -> tuple[int, int]:
    """Frames [start, stop) left after trimming leading/trailing silence; (0, 0) if all silent."""
    if n_frames <= 0:
        return 0, 0
    x = np.asarray(samples, dtype=np.float64)
    need = (n_frames - 1) * HOP + WINDOW
    if len(x) < need:
        x = np.pad(x, (0, need - len(x)))
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(n_frames) * HOP
    energy = (csum[starts + WINDOW] - csum[starts]) / WINDOW
    db = 10.0 * np.log10(energy + 1e-12)
    voiced = np.flatnonzero(db >= max(db.max() - trim_db, floor_dbfs))
    if voiced.size == 0:
        return 0, 0
    return int(voiced[0]), int(voiced[-1]) + 1


@dataclass(frozen=True)
class TargetInfo:
    speaker: str
    gender: str
    minutes: float
    utts: int


def build_matching_sets(pool_dir: str | Path, feat_dir: str | Path, out_dir: str | Path, cfg: TargetsConfig,
                        allow_pipes: bool = False, overwrite: bool = False) -> list[TargetInfo]:
    """Write the matching sets of every speaker of ``pool_dir`` (features in ``feat_dir/feats.scp``)
    to ``out_dir``; a complete dir built from the same inputs is reused as it is."""
    pool_dir, feat_dir, out_dir = Path(pool_dir), Path(feat_dir), Path(out_dir)
    feat_stamp = feat_dir / ".wavlm.json"
    if not (feat_dir / "feats.scp").is_file() or not feat_stamp.is_file():
        raise FileNotFoundError(f"{feat_dir}/feats.scp: no WavLM features of the target pool; run stage 2 "
                                f"(steps/make_wavlm.sh {pool_dir} {feat_dir}) first")
    stamp = {"pool": str(pool_dir.resolve()), "wavlm": json.loads(feat_stamp.read_text()),
             "targets": to_dict(cfg), "pool_key": fingerprint((pool_dir / "wav.scp").read_text())}
    if (out_dir / STAMP).is_file():
        if json.loads((out_dir / STAMP).read_text()) == stamp:
            log.info("%s: matching sets are complete and up to date; reused", out_dir)
            return MatchingSets(out_dir).info
        if not overwrite:
            raise ValueError(f"{out_dir} holds matching sets built differently ({out_dir / STAMP}); "
                             "remove it or re-run with --overwrite true")
    (out_dir / STAMP).unlink(missing_ok=True)
    data = load_data_dir(pool_dir)
    feats = load_scp(feat_dir / "feats.scp")
    genders = data.table("spk2gender") or {}
    spk2utt: dict[str, list[str]] = {}
    for utt in data.utts:
        spk2utt.setdefault(data.utt2spk[utt], []).append(utt)
    speakers = [s for s in sorted(spk2utt) if not cfg.speakers or s in cfg.speakers]
    unknown = sorted(set(cfg.speakers) - set(spk2utt))
    if unknown:
        raise ValueError(f"targets.speakers: not in {pool_dir}: {', '.join(unknown)}")
    cap = int(cfg.max_minutes * FRAMES_PER_MINUTE) or None
    infos: list[TargetInfo] = []

    def items():
        for spk in speakers:
            parts, used = [], 0
            for utt in spk2utt[spk]:
                if utt not in feats:
                    log.warning("target %s: utterance %s has no features; skipped", spk, utt)
                    continue
                mat = np.asarray(feats[utt])
                try:
                    audio = load_16k(resolve_wav(data, utt), data.path, allow_pipes)
                except AudioError as err:
                    log.warning("target %s: %s; skipped", spk, err)
                    continue
                start, stop = speech_range(audio.samples, len(mat), cfg.trim_db, cfg.trim_floor_dbfs)
                if stop <= start:
                    log.warning("target %s: utterance %s is silent; skipped", spk, utt)
                    continue
                parts.append(mat[start:stop])
                used += 1
                if cap and sum(len(p) for p in parts) >= cap:
                    break
            frames = np.concatenate(parts)[:cap] if parts else np.zeros((0, 0), np.float32)
            if len(frames) == 0:
                log.warning("target %s has no usable audio; left out of the pool", spk)
                continue
            minutes = len(frames) / FRAMES_PER_MINUTE
            if minutes < cfg.min_minutes:
                log.warning("target %s has %.2f min of speech, less than targets.min_minutes=%.2f",
                            spk, minutes, cfg.min_minutes)
            infos.append(TargetInfo(spk, genders.get(spk, ""), round(minutes, 3), used))
            yield spk, frames

    write_shard(out_dir, "sets", 1, items())
    if not infos:
        raise ValueError(f"{pool_dir}: no target speaker has usable audio")
    atomic_write_text(out_dir / "speakers.tsv", "".join(
        f"{i.speaker}\t{i.gender or '-'}\t{i.minutes:.3f}\t{i.utts}\n" for i in infos))
    atomic_write_text(out_dir / STAMP, json.dumps(stamp, indent=1, sort_keys=True) + "\n")
    mins = np.array([i.minutes for i in infos])
    log.info("%s: %d target speakers, %.1f min of speech (per speaker min %.2f, median %.2f, max %.2f)",
             out_dir, len(infos), mins.sum(), mins.min(), np.median(mins), mins.max())
    return infos


class MatchingSets:
    """Read access to a matching-set dir; recently used speakers' frames are kept in memory."""

    def __init__(self, path: str | Path, cache_items: int = 8):
        self.path = Path(path)
        if not (self.path / STAMP).is_file():
            raise FileNotFoundError(f"{self.path}: no complete matching sets here; run stage 3 "
                                    "(local/make_targets.sh <conf>) first")
        self.stamp = json.loads((self.path / STAMP).read_text())
        self.info = []
        for line in (self.path / "speakers.tsv").read_text(encoding="utf-8").splitlines():
            spk, gender, minutes, utts = line.split("\t")
            self.info.append(TargetInfo(spk, "" if gender == "-" else gender, float(minutes), int(utts)))
        self.speakers = [i.speaker for i in self.info]
        self._sets = load_scp(shard_paths(self.path, "sets", 1)[1])
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.cache_items = cache_items

    @property
    def checkpoint(self) -> str:
        return self.stamp["wavlm"]["checkpoint"]

    @property
    def layer(self) -> int:
        return int(self.stamp["wavlm"]["layer"])

    def get(self, speaker: str, device: str = "cpu") -> torch.Tensor:
        """(frames, D) float32 on ``device``."""
        if speaker in self._cache:
            self._cache.move_to_end(speaker)
            return self._cache[speaker]
        frames = torch.from_numpy(np.array(self._sets[speaker], dtype=np.float32)).to(device)
        self._cache[speaker] = frames
        if len(self._cache) > self.cache_items:
            self._cache.popitem(last=False)
        return frames
