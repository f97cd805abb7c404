"""WavLM layer features of a data dir, in shards (stage 2; ``python -m voxanon.bin.make_wavlm``).

Shard J writes ``FEATDIR/wavlm.J.ark/.scp`` (one (frames, 1024) matrix per utterance, stored as
``dtype``, see voxanon.data.features) and ``utt2num_frames.J``; a finished shard is skipped on
re-run. An utterance that cannot be read or is shorter than one frame is logged, listed in
``FEATDIR/log/failed.J`` and left out; the job then exits 1 and the shard is redone on the next
run. With ``vad_trigger_level`` > 0 (the target pool) leading and trailing silence is cut from the
audio first, as the kNN-VC reference does (voxanon.audio.trim_silence); an utterance that is
silence only is left out and counted, not a failure. ``finalize`` joins the shards into
``feats.scp`` and ``utt2num_frames``. ``FEATDIR/.wavlm.json`` records the checkpoint, layer, dtype
and VAD level: features made otherwise are not mixed into the same dir.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from voxanon.audio import Audio, AudioError, trim_silence
from voxanon.config import ConfigError
from voxanon.data.features import combine_scps, shard_paths, write_shard
from voxanon.data.kaldi import load_data_dir, read_table, shard, write_table
from voxanon.device import resolve_device
from voxanon.features.config import FEATS_STAMP
from voxanon.features.wavlm import extract_batch, load_wavlm
from voxanon.fileio import atomic_write_text
from voxanon.progress import Progress
from voxanon.registry import resolve_model

log = logging.getLogger("voxanon.make_wavlm")
WINDOW = 400  # samples one WavLM frame sees: less than this after the VAD counts as silence


@dataclass(frozen=True)
class Extraction:
    checkpoint: str = "wavlm-large"  # registry name or local file
    layer: int = 6
    dtype: str = "float32"  # storage of the features (voxanon.data.features.DTYPES)
    vad_trigger_level: float = 0.0  # > 0: trim leading/trailing silence first (the target pool)
    device: str = "auto"
    chunk_seconds: float = 30.0
    context_seconds: float = 4.0
    batch_seconds: float = 120.0
    allow_pipes: bool = False

    @property
    def stamp(self) -> dict:
        """What the features depend on (not how fast they were made)."""
        return {"checkpoint": self.checkpoint, "layer": self.layer, "dtype": self.dtype,
                "vad_trigger_level": self.vad_trigger_level}


def check_stamp(feat_dir: Path, stamp: dict, overwrite: bool) -> None:
    """Refuse to mix features made with different settings in one dir."""
    path = feat_dir / FEATS_STAMP
    if path.is_file() and json.loads(path.read_text()) != stamp:
        if not overwrite:
            raise ConfigError(f"{feat_dir} holds features of another checkpoint, layer, dtype or VAD level "
                              f"({path}); remove it or re-run with --overwrite true")
        for old in [*feat_dir.glob("wavlm.*.ark"), *feat_dir.glob("wavlm.*.scp"), *feat_dir.glob("utt2num_frames*"),
                    feat_dir / "feats.scp"]:
            old.unlink(missing_ok=True)
    atomic_write_text(path, json.dumps(stamp, indent=1, sort_keys=True) + "\n")


def run_shard(opts: Extraction, data_dir: str | Path, feat_dir: Path, job: int, nj: int) -> int:
    """Shard ``job`` of ``nj``: ``FEATDIR/wavlm.J.ark/.scp`` and ``utt2num_frames.J``; 1 when an
    utterance failed (listed in ``log/failed.J``; the shard is redone on the next run)."""
    data = load_data_dir(data_dir)
    utts = shard(data.utts, job, nj)
    _, scp = shard_paths(feat_dir, "wavlm", job)
    num_frames_file = feat_dir / f"utt2num_frames.{job}"
    failed_file = feat_dir / "log" / f"failed.{job}"
    if scp.is_file() and num_frames_file.is_file() and not failed_file.is_file():
        log.info("job %d: shard %s is complete; skipped", job, scp)
        return 0
    device = resolve_device(opts.device)
    model = load_wavlm(resolve_model(opts.checkpoint), device, max_layer=opts.layer)
    log.info("job %d/%d: %d utterances, layer %d, %s", job, nj, len(utts), opts.layer, device)
    failed: list[str] = []
    silent: list[str] = []
    num_frames: dict[str, str] = {}
    progress = Progress(len(utts), f"wavlm job {job}")

    def load(utt: str) -> Audio:
        audio = data.audio(utt, opts.allow_pipes)
        return trim_silence(audio, opts.vad_trigger_level) if opts.vad_trigger_level > 0 else audio

    def items():
        # Utterances go through the model in groups (batched with padding masks).
        group: list[tuple[str, object]] = []
        for i, utt in enumerate(utts):
            try:
                audio = load(utt)
            except AudioError as err:
                failed.append(utt)
                log.error("utterance %s: %s", utt, err)
                progress.step()
            else:
                if len(audio.samples) >= WINDOW:
                    group.append((utt, audio))
                else:
                    silent.append(utt)
                    progress.step()
            if group and (i == len(utts) - 1 or sum(a.duration for _, a in group) >= opts.batch_seconds):
                yield from extract_group(group)
                progress.step(len(group))
                group = []

    def extract_group(group):
        try:
            mats = extract_batch(model, [a for _, a in group], opts.layer, opts.chunk_seconds,
                                 opts.context_seconds, opts.batch_seconds, [u for u, _ in group])
            for (u, _), m in zip(group, mats):
                num_frames[u] = str(len(m))
                yield u, m
        except AudioError:  # a too-short utterance in the group: do them one by one
            for utt, audio in group:
                try:
                    mat = extract_batch(model, [audio], opts.layer, opts.chunk_seconds,
                                        opts.context_seconds, opts.batch_seconds, [utt])[0]
                except AudioError as err:
                    failed.append(utt)
                    log.error("utterance %s: %s", utt, err)
                    continue
                num_frames[utt] = str(len(mat))
                yield utt, mat

    write_shard(feat_dir, "wavlm", job, items(), opts.dtype)
    write_table(num_frames_file, num_frames)
    if silent:
        log.warning("job %d: %d utterance(s) are silence only after the VAD (trigger level %g) and were left "
                    "out, e.g. %s", job, len(silent), opts.vad_trigger_level, " ".join(silent[:5]))
    if failed:
        atomic_write_text(failed_file, "".join(f"{u}\n" for u in failed))
        log.error("job %d: %d utterance(s) failed, listed in %s", job, len(failed), failed_file)
        return 1
    failed_file.unlink(missing_ok=True)
    return 0


def finalize(feat_dir: Path, nj: int) -> int:
    """The shards joined into ``feats.scp`` and ``utt2num_frames``."""
    scps = [shard_paths(feat_dir, "wavlm", j)[1] for j in range(1, nj + 1)]
    counts = [feat_dir / f"utt2num_frames.{j}" for j in range(1, nj + 1)]
    missing = [str(s) for s in scps + counts if not s.is_file()]
    if missing:
        log.error("shard(s) not finished: %s", " ".join(missing))
        return 1
    combine_scps(scps, feat_dir / "feats.scp")
    write_table(feat_dir / "utt2num_frames", {k: v for c in counts for k, v in read_table(c).items()})
    n = sum(1 for _ in open(feat_dir / "feats.scp", encoding="utf-8"))
    log.info("wrote %s (%d utterances)", feat_dir / "feats.scp", n)
    return 0
