"""WavLM layer features of one shard of a data dir, or the combined ``feats.scp``.

  python -m voxanon.bin.make_wavlm --job J --nj N [--checkpoint wavlm-large] [--layer 6] \
      [--dtype float32] [--vad-trigger-level 0] DATA FEATDIR
  python -m voxanon.bin.make_wavlm --finalize --nj N DATA FEATDIR

Shard J writes ``FEATDIR/wavlm.J.ark/.scp`` (one (frames, 1024) matrix per utterance, stored as
``--dtype``, see voxanon.data.features) and ``utt2num_frames.J``; a finished shard is skipped on
re-run. An utterance that cannot be read or is shorter than one frame is logged, listed in
``FEATDIR/log/failed.J`` and left out; the job then exits 1 and the shard is redone on the next
run. With ``--vad-trigger-level L`` > 0 (the target pool) leading and trailing silence is cut from
the audio first, as the kNN-VC reference does (voxanon.knn.matching_set.trim_silence); an
utterance that is silence only is left out and counted, not a failure. ``--finalize`` joins the
shards into ``feats.scp`` and ``utt2num_frames``. ``FEATDIR/.wavlm.json`` records the
checkpoint, layer, dtype and VAD level: features made otherwise are not mixed into the same dir.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from voxanon.audio import Audio, AudioError
from voxanon.config import ConfigError
from voxanon.data.features import DTYPES, combine_scps, shard_paths, write_shard
from voxanon.data.kaldi import load_data_dir, read_table, write_table
from voxanon.device import resolve_device
from voxanon.features.config import FEATS_STAMP
from voxanon.features.wavlm import extract_batch, load_wavlm
from voxanon.fileio import atomic_write_text
from voxanon.knn.matching_set import trim_silence
from voxanon.progress import Progress, setup_logging
from voxanon.registry import ModelError, resolve_model

log = logging.getLogger("voxanon.make_wavlm")
WINDOW = 400  # samples one WavLM frame sees: less than this after the VAD counts as silence


def shard(utts: list[str], job: int, nj: int) -> list[str]:
    n = len(utts)
    return utts[(job - 1) * n // nj: job * n // nj]


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


def run_shard(args: argparse.Namespace, feat_dir: Path) -> int:
    data = load_data_dir(args.data)
    utts = shard(data.utts, args.job, args.nj)
    _, scp = shard_paths(feat_dir, "wavlm", args.job)
    num_frames_file = feat_dir / f"utt2num_frames.{args.job}"
    failed_file = feat_dir / "log" / f"failed.{args.job}"
    if scp.is_file() and num_frames_file.is_file() and not failed_file.is_file():
        log.info("job %d: shard %s is complete; skipped", args.job, scp)
        return 0
    device = resolve_device(args.device)
    model = load_wavlm(resolve_model(args.checkpoint), device, max_layer=args.layer)
    log.info("job %d/%d: %d utterances, layer %d, %s", args.job, args.nj, len(utts), args.layer, device)
    failed: list[str] = []
    silent: list[str] = []
    num_frames: dict[str, str] = {}
    progress = Progress(len(utts), f"wavlm job {args.job}")

    def load(utt: str) -> Audio:
        audio = data.audio(utt, args.allow_pipes == "true")
        return trim_silence(audio, args.vad_trigger_level) if args.vad_trigger_level > 0 else audio

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
            if group and (i == len(utts) - 1 or sum(a.duration for _, a in group) >= args.batch_seconds):
                yield from extract_group(group)
                progress.step(len(group))
                group = []

    def extract_group(group):
        try:
            mats = extract_batch(model, [a for _, a in group], args.layer, args.chunk_seconds,
                                 args.context_seconds, args.batch_seconds, [u for u, _ in group])
            for (u, _), m in zip(group, mats):
                num_frames[u] = str(len(m))
                yield u, m
        except AudioError:  # a too-short utterance in the group: do them one by one
            for utt, audio in group:
                try:
                    mat = extract_batch(model, [audio], args.layer, args.chunk_seconds,
                                        args.context_seconds, args.batch_seconds, [utt])[0]
                except AudioError as err:
                    failed.append(utt)
                    log.error("utterance %s: %s", utt, err)
                    continue
                num_frames[utt] = str(len(mat))
                yield utt, mat

    write_shard(feat_dir, "wavlm", args.job, items(), args.dtype)
    write_table(num_frames_file, num_frames)
    if silent:
        log.warning("job %d: %d utterance(s) are silence only after the VAD (trigger level %g) and were left "
                    "out, e.g. %s", args.job, len(silent), args.vad_trigger_level, " ".join(silent[:5]))
    if failed:
        atomic_write_text(failed_file, "".join(f"{u}\n" for u in failed))
        log.error("job %d: %d utterance(s) failed, listed in %s", args.job, len(failed), failed_file)
        return 1
    failed_file.unlink(missing_ok=True)
    return 0


def finalize(args: argparse.Namespace, feat_dir: Path) -> int:
    scps = [shard_paths(feat_dir, "wavlm", j)[1] for j in range(1, args.nj + 1)]
    counts = [feat_dir / f"utt2num_frames.{j}" for j in range(1, args.nj + 1)]
    missing = [str(s) for s in scps + counts if not s.is_file()]
    if missing:
        log.error("shard(s) not finished: %s", " ".join(missing))
        return 1
    combine_scps(scps, feat_dir / "feats.scp")
    write_table(feat_dir / "utt2num_frames", {k: v for c in counts for k, v in read_table(c).items()})
    n = sum(1 for _ in open(feat_dir / "feats.scp", encoding="utf-8"))
    log.info("wrote %s (%d utterances)", feat_dir / "feats.scp", n)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="wavlm-large", help="registry name or local file")
    p.add_argument("--layer", type=int, default=6)
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="storage of the features")
    p.add_argument("--vad-trigger-level", type=float, default=0.0,
                   help="trim leading/trailing silence with sox's VAD at this level first (0 = no)")
    p.add_argument("--job", type=int, default=1)
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--finalize", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--chunk-seconds", type=float, default=30.0)
    p.add_argument("--context-seconds", type=float, default=4.0)
    p.add_argument("--batch-seconds", type=float, default=120.0)
    p.add_argument("--allow-pipes", default="false", choices=("true", "false"))
    p.add_argument("--overwrite", default="false", choices=("true", "false"))
    p.add_argument("data")
    p.add_argument("feat_dir")
    args = p.parse_args(argv)
    setup_logging()
    feat_dir = Path(args.feat_dir)
    try:
        if args.finalize:
            return finalize(args, feat_dir)
        if not 1 <= args.job <= args.nj:
            raise ValueError(f"--job {args.job} is outside 1..{args.nj}")
        (feat_dir / "log").mkdir(parents=True, exist_ok=True)
        check_stamp(feat_dir, {"checkpoint": args.checkpoint, "layer": args.layer, "dtype": args.dtype,
                               "vad_trigger_level": args.vad_trigger_level}, args.overwrite == "true")
        return run_shard(args, feat_dir)
    except (ConfigError, ValueError, OSError, ModelError) as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
