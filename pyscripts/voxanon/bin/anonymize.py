"""Anonymize one shard of a data dir, or assemble the output data dir from finished shards.

  python -m voxanon.bin.anonymize --conf C --prepare [--overwrite true] IN OUT  # once, first
  python -m voxanon.bin.anonymize --conf C --job J --nj N IN OUT    # one shard
  python -m voxanon.bin.anonymize --conf C --finalize IN OUT        # write OUT's Kaldi files

Each utterance becomes ``OUT/wav/<utt>.wav`` (16 kHz mono), written atomically; existing wavs
are skipped, so a killed job resumes. A failing utterance is logged and listed in
``OUT/log/failed.J`` and the job exits non-zero after finishing the rest. The per-utterance
record (targets, chosen system) goes to ``--record-dir`` with owner-only permissions.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from dataclasses import replace
from pathlib import Path

from voxanon.anonymize.base import BuildContext, Utterance, build_system, resolve_device
from voxanon.anonymize.config import AnonymizerConfig
from voxanon.audio import SAMPLE_RATE, AudioError, load_16k, resample, write_wav
from voxanon.config import ConfigError, fingerprint, load_section
from voxanon.data.kaldi import DataDir, atomic_write_text, load_data_dir, resolve_wav, write_data_dir
from voxanon.progress import Progress, setup_logging
from voxanon.registry import ModelError

log = logging.getLogger("voxanon.anonymize")
PARAMS_FILE = ".anonymizer.json"


def shard(utts: list[str], job: int, nj: int) -> list[str]:
    """Contiguous split of sorted ids into ``nj`` near-equal parts; ``job`` counts from 1."""
    n = len(utts)
    return utts[(job - 1) * n // nj: job * n // nj]


def output_stamp(conf: AnonymizerConfig, data: DataDir) -> dict:
    """What the output dir was made from: a hash of the config and of the input audio (entries,
    sizes, mtimes), so new audio behind the same ids is not mistaken for finished work. Only a
    hash: the seed in the config would let anyone holding the data recompute every random choice."""
    audio = []
    for utt in data.utts:
        entry = resolve_wav(data, utt)
        path = Path(entry)
        st = path.stat() if not entry.rstrip().endswith("|") and path.is_file() else None
        audio.append((utt, entry, st.st_size if st else None, st.st_mtime_ns if st else None))
    return {"fingerprint": fingerprint({"anonymizer": conf, "audio": audio}), "system": conf.system}


def prepare_output(out: Path, stamp: dict, overwrite: bool, record_dir: Path) -> None:
    """Run once before the jobs: refuse to mix outputs of another config or input in one dir;
    with ``overwrite`` start the dir (and its records) afresh."""
    path = out / PARAMS_FILE
    previous = json.loads(path.read_text()) if path.is_file() else None
    if previous is not None and previous != stamp and not overwrite:
        raise ConfigError(f"{out} holds output of another anonymizer config or input audio ({path}); "
                          "remove it or re-run with --overwrite true (run.sh --force true)")
    if overwrite or previous != stamp:
        stale = [*(out / "wav").glob("*.wav"), *(out / "log").glob("failed.*"), out / "wav.scp",
                 *record_dir.glob("records.*.jsonl")]
        for f in stale:
            f.unlink(missing_ok=True)
    (out / "log").mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(stamp, indent=1, sort_keys=True) + "\n")


def run_shard(conf: AnonymizerConfig, data: DataDir, out: Path, job: int, nj: int, record_dir: Path,
              allow_pipes: bool) -> int:
    utts = shard(data.utts, job, nj)
    todo = [u for u in utts if not (out / "wav" / f"{u}.wav").is_file()]
    log.info("job %d/%d: %d utterances, %d already done, system %s", job, nj, len(utts), len(utts) - len(todo), conf.system)
    failed_file = out / "log" / f"failed.{job}"
    if not todo:
        failed_file.unlink(missing_ok=True)
        return 0
    device = resolve_device(conf.device)
    work_dir = record_dir / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    anonymizer = build_system(conf.system, conf.params, BuildContext(conf.seed, device, work_dir))
    genders = data.table("spk2gender") or {}
    record_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(record_dir, 0o700)
    record_path = record_dir / f"records.{job}.jsonl"
    failed = []
    progress = Progress(len(todo), f"anonymize job {job}")
    with open(record_path, "a", encoding="utf-8") as records:
        os.chmod(record_path, 0o600)
        for utt in todo:
            spk = data.utt2spk[utt]
            try:
                audio = load_16k(resolve_wav(data, utt), data.path, allow_pipes)
                result = anonymizer(Utterance(utt, spk, audio, genders.get(spk)))
                out_audio = resample(result.audio, SAMPLE_RATE)
                if len(out_audio.samples) == 0:
                    raise AudioError("anonymizer returned empty audio")
                write_wav(out / "wav" / f"{utt}.wav", out_audio)
                records.write(json.dumps({"utt": utt, **result.record}, sort_keys=True) + "\n")
                records.flush()
            except Exception as err:  # one bad utterance must not sink the job
                failed.append(utt)
                log.error("utterance %s failed: %s", utt, err)
                log.debug("%s", traceback.format_exc())
            progress.step()
    if failed:
        atomic_write_text(failed_file, "".join(f"{u}\n" for u in failed))
        log.error("job %d: %d of %d utterances failed (listed in %s)", job, len(failed), len(todo), failed_file)
        return 1
    failed_file.unlink(missing_ok=True)
    return 0


def finalize(data: DataDir, out: Path) -> int:
    missing = [u for u in data.utts if not (out / "wav" / f"{u}.wav").is_file()]
    if missing:
        log.error("%d utterance(s) have no anonymized audio yet (first: %s); see %s/log/failed.*",
                  len(missing), " ".join(missing[:10]), out)
        return 1
    wav_scp = {u: str((out / "wav" / f"{u}.wav").resolve()) for u in data.utts}
    write_data_dir(replace(data, wav_scp=wav_scp, path=out), out)
    log.info("wrote %s (%d utterances)", out, len(wav_scp))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conf", required=True)
    p.add_argument("--job", type=int, default=1)
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--prepare", action="store_true", help="once before the jobs: check or (--overwrite true) reset OUT")
    p.add_argument("--finalize", action="store_true")
    p.add_argument("--record-dir", default=None, help="owner-only dir for per-utterance records (default exp/anon_records/<out name>)")
    p.add_argument("--allow-pipes", default="false", choices=("true", "false"))
    p.add_argument("--overwrite", default="false", choices=("true", "false"), help="with --prepare: start OUT afresh")
    p.add_argument("in_dir")
    p.add_argument("out_dir")
    args = p.parse_args(argv)
    setup_logging()
    try:
        conf = load_section(args.conf, "anonymizer", AnonymizerConfig)
        data = load_data_dir(args.in_dir)
        out = Path(args.out_dir)
        if args.finalize:
            return finalize(data, out)
        record_dir = Path(args.record_dir or Path("exp") / "anon_records" / out.name)
        stamp = output_stamp(conf, data)
        if args.prepare:
            prepare_output(out, stamp, args.overwrite == "true", record_dir)
            return 0
        if not 1 <= args.job <= args.nj:
            raise ValueError(f"--job {args.job} is outside 1..{args.nj}")
        if not (out / PARAMS_FILE).is_file():
            prepare_output(out, stamp, False, record_dir)
        elif json.loads((out / PARAMS_FILE).read_text()) != stamp:
            raise ConfigError(f"{out} was prepared for another anonymizer config or input audio; "
                              "run steps/anonymize.sh (with --overwrite true to start afresh)")
        return run_shard(conf, data, out, args.job, args.nj, record_dir, args.allow_pipes == "true")
    except (ConfigError, ValueError, OSError, ModelError) as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
