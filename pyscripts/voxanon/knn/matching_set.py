"""Matching sets: per target speaker, the WavLM frames of all their speech (run.sh stage 3).

Built once from a target-pool data dir and its WavLM features (stage 2), then reused by every
set and run. The pool's audio was trimmed of leading and trailing silence before WavLM, as the
kNN-VC reference does (``voxanon.audio.trim_silence``, applied by stage 2 to ``data.target_pool`` only), so a
matching set is the concatenation of the speaker's utterance features. They are not copied:
the dir indexes the stage-2 features, which must stay where they are. Layout::

    spk2utt          speaker -> the utterances of its matching set, in order
    speakers.tsv     speaker, gender, minutes of speech, utterances used, frames used
    .targets.json    what it was built from: the pool, the features dir and its ``.wavlm.json``
                     (WavLM ``checkpoint`` and ``layer``, storage ``dtype``, the VAD level), the
                     settings; written last, so its presence means the dir is complete

Targets with less than ``min_minutes`` of speech are left out (a count is logged).
"""
from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voxanon.config import fingerprint, to_dict
from voxanon.data.features import load_scp
from voxanon.data.kaldi import load_data_dir, read_table, write_table
from voxanon.features.config import FEATS_STAMP
from voxanon.features.wavlm import HOP
from voxanon.fileio import atomic_write_text
from voxanon.knn.config import TargetsConfig

log = logging.getLogger("voxanon.targets")
FRAMES_PER_MINUTE = 60 * 16000 // HOP  # 3000
STAMP = ".targets.json"


@dataclass(frozen=True)
class TargetInfo:
    speaker: str
    gender: str
    minutes: float
    utts: int
    frames: int


def build_matching_sets(pool_dir: str | Path, feat_dir: str | Path, out_dir: str | Path, cfg: TargetsConfig,
                        overwrite: bool = False) -> list[TargetInfo]:
    """Index the matching sets of every speaker of ``pool_dir`` (features in ``feat_dir/feats.scp``)
    in ``out_dir``; a complete dir built from the same inputs is reused as it is."""
    pool_dir, feat_dir, out_dir = Path(pool_dir), Path(feat_dir), Path(out_dir)
    if not all((feat_dir / f).is_file() for f in ("feats.scp", "utt2num_frames", FEATS_STAMP)):
        raise FileNotFoundError(f"{feat_dir}/feats.scp: no WavLM features of the target pool; run stage 2 "
                                f"(local/make_features.sh <conf>) first")
    stamp = {"pool": str(pool_dir.resolve()), "features": str(feat_dir.resolve()),
             "wavlm": json.loads((feat_dir / FEATS_STAMP).read_text()), "targets": to_dict(cfg),
             "pool_key": fingerprint((pool_dir / "wav.scp").read_text()),
             "feats_key": fingerprint((feat_dir / "feats.scp").read_text())}
    if (out_dir / STAMP).is_file():
        old = json.loads((out_dir / STAMP).read_text())
        if old == stamp:
            log.info("%s: matching sets are complete and up to date; reused", out_dir)
            return MatchingSets(out_dir).info
        settings = lambda st: {k: v for k, v in st.items() if k not in ("pool_key", "feats_key")}  # noqa: E731
        if settings(old) != settings(stamp) and not overwrite:
            raise ValueError(f"{out_dir} holds matching sets built differently ({out_dir / STAMP}); "
                             "remove it or re-run with --overwrite true")
        # same settings, pool or features re-made: the old index is stale, an index is cheap to redo
    (out_dir / STAMP).unlink(missing_ok=True)
    data = load_data_dir(pool_dir)
    num_frames = {utt: int(n) for utt, n in read_table(feat_dir / "utt2num_frames").items()}
    genders = data.table("spk2gender") or {}
    spk2utt = data.spk2utt
    unknown = sorted(set(cfg.speakers) - set(spk2utt))
    if unknown:
        raise ValueError(f"targets.speakers: not in {pool_dir}: {', '.join(unknown)}")
    speakers = [s for s in sorted(spk2utt) if not cfg.speakers or s in cfg.speakers]
    cap = int(cfg.max_minutes * FRAMES_PER_MINUTE) or None
    infos: list[TargetInfo] = []
    chosen: dict[str, list[str]] = {}
    no_feats, short = 0, []
    for spk in speakers:
        utts, frames = [], 0
        for utt in spk2utt[spk]:
            if utt not in num_frames:  # silence only after the VAD, or failed at stage 2 (its log says which)
                no_feats += 1
                continue
            utts.append(utt)
            frames += num_frames[utt]
            if cap and frames >= cap:
                frames = cap
                break
        minutes = frames / FRAMES_PER_MINUTE
        if minutes < cfg.min_minutes or not frames:
            short.append(f"{spk} ({minutes:.2f} min)")
            continue
        chosen[spk] = utts
        infos.append(TargetInfo(spk, genders.get(spk, ""), round(minutes, 3), len(utts), frames))
    if no_feats:
        log.warning("%d pool utterance(s) have no features (silence only after the VAD, or failed at stage 2: "
                    "see %s/log); left out", no_feats, feat_dir)
    if short:
        log.warning("%d of %d target speaker(s) have less than targets.min_minutes=%.2f min of speech and were "
                    "left out: %s", len(short), len(speakers), cfg.min_minutes, ", ".join(short[:20])
                    + (", ..." if len(short) > 20 else ""))
    if not infos:
        raise ValueError(f"{pool_dir}: no target speaker has {cfg.min_minutes} min of usable speech")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(out_dir / "spk2utt", {spk: " ".join(utts) for spk, utts in chosen.items()})
    atomic_write_text(out_dir / "speakers.tsv", "".join(
        f"{i.speaker}\t{i.gender or '-'}\t{i.minutes:.3f}\t{i.utts}\t{i.frames}\n" for i in infos))
    atomic_write_text(out_dir / STAMP, json.dumps(stamp, indent=1, sort_keys=True) + "\n")
    mins = np.array([i.minutes for i in infos])
    log.info("%s: %d target speakers, %.1f min of speech (per speaker min %.2f, median %.2f, max %.2f)",
             out_dir, len(infos), mins.sum(), mins.min(), np.median(mins), mins.max())
    return infos


class MatchingSets:
    """Read access to a matching-set dir; recently used speakers' frames are kept in memory.

    ``checkpoint`` and ``layer`` are the WavLM the features were extracted with (from the
    features' ``.wavlm.json``, recorded in ``.targets.json`` under ``wavlm``)."""

    def __init__(self, path: str | Path, cache_items: int = 8):
        self.path = Path(path)
        if not (self.path / STAMP).is_file():
            raise FileNotFoundError(f"{self.path}: no complete matching sets here; run stage 3 "
                                    "(local/make_targets.sh <conf>) first")
        self.stamp = json.loads((self.path / STAMP).read_text())
        feat_dir = Path(self.stamp["features"])
        now = feat_dir / FEATS_STAMP
        if not now.is_file() or json.loads(now.read_text()) != self.stamp["wavlm"] \
                or fingerprint((feat_dir / "feats.scp").read_text()) != self.stamp["feats_key"]:
            raise FileNotFoundError(f"{self.path}: the stage-2 features it indexes ({feat_dir}) are gone or were "
                                    "re-made since; re-run stage 3 (local/make_targets.sh <conf>)")
        self.info = []
        for line in (self.path / "speakers.tsv").read_text(encoding="utf-8").splitlines():
            spk, gender, minutes, utts, frames = line.split("\t")
            self.info.append(TargetInfo(spk, "" if gender == "-" else gender, float(minutes), int(utts), int(frames)))
        self.speakers = [i.speaker for i in self.info]
        self._frames = {i.speaker: i.frames for i in self.info}
        self._utts = {spk: utts.split() for spk, utts in read_table(self.path / "spk2utt").items()}
        self._feats = load_scp(feat_dir / "feats.scp")
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
        mats = [np.asarray(self._feats[u]) for u in self._utts[speaker]]
        frames = torch.from_numpy(np.concatenate(mats)[: self._frames[speaker]].astype(np.float32)).to(device)
        self._cache[speaker] = frames
        if len(self._cache) > self.cache_items:
            self._cache.popitem(last=False)
        return frames
