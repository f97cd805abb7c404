"""The anonymization runner behind steps/anonymize.sh: claim and check an output dir, anonymize
one shard of the input, assemble the output data dir (``python -m voxanon.bin.anonymize``).

Each utterance becomes ``OUT/wav/<utt>.wav`` (16 kHz mono) with a stamp of the config and its input
in ``OUT/.done/<utt>`` (see voxanon.anonymize.outdir); finished utterances are skipped, so a killed
job resumes and a changed input re-does only the utterances whose input changed. The per-utterance
record (targets, chosen system) is written to the record dir (owner-only) before the wav is
published. A failing utterance is logged and listed in ``OUT/log/failed.J``; the job exits non-zero
after finishing the rest. A full disk stops the job at once.

Throughput: loader threads decode the next utterances' audio while the system converts, and a
writer thread publishes finished ones; a system that batches (``batch_size`` > 1 in its params)
gets batches sorted by length out of a window of ``bucket`` x ``batch_size`` utterances read ahead.
"""
from __future__ import annotations

import errno
import io
import json
import logging
import os
import queue
import threading
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf

from voxanon.anonymize import outdir
from voxanon.anonymize.base import BuildContext, BuildError, Converted, Utterance, build_system, convert_all
from voxanon.anonymize.config import AnonymizerConfig
from voxanon.audio import SAMPLE_RATE, Audio, AudioError, load_16k, resample
from voxanon.config import ConfigError, fingerprint
from voxanon.data.ids import id_problems
from voxanon.data.kaldi import DataDir, load_data_dir, shard, validate_data_dir, write_data_dir
from voxanon.device import resolve_device
from voxanon.features.config import FeaturesConfig
from voxanon.fileio import atomic_write_bytes, atomic_write_text
from voxanon.progress import Progress
from voxanon.registry import ModelError

log = logging.getLogger("voxanon.anonymize")
LOADERS = 2  # threads decoding input audio ahead of the system
SPEED_ONLY = ("batch_size", "bucket", "device_sets")  # params that change how fast, not what comes out


class DiskFull(OSError):
    """No space left: every further utterance would fail the same way."""


def disk_full(err: OSError, what: str) -> OSError:
    """``err`` as a DiskFull naming ``what`` (the file being written and its utterance) when it is
    ENOSPC; other errors as they are."""
    if err.errno != errno.ENOSPC:
        return err
    return DiskFull(err.errno, f"disk full writing {what}; free space there and re-run: finished utterances "
                               "are kept")


def config_key(conf: AnonymizerConfig, record_dir: Path) -> str:
    """What stamps the outputs: the config without the system's ``SPEED_ONLY`` params (an
    admixture's parts' too), so a job re-run with other batching keeps its finished utterances
    (nested settings, a cascade's ``asr.batch_size``, stay in); sealed with the record dir's key,
    for the config holds the secret seed."""
    def strip(params: dict) -> dict:
        out = {k: v for k, v in params.items() if k not in SPEED_ONLY}
        if isinstance(out.get("systems"), list):
            out["systems"] = [{**part, "params": strip(part["params"])} if isinstance(part, dict)
                              and isinstance(part.get("params"), dict) else part for part in out["systems"]]
        return out

    return outdir.seal(fingerprint(replace(conf, params=strip(conf.params))), record_dir)


def load_input(path: str) -> DataDir:
    """The input dir, refused when an id is unsafe as a file name (ids become output paths)."""
    data = load_data_dir(path)
    bad = id_problems(data.utt2spk, "utterance") + id_problems(data.utt2spk.values(), "speaker")
    if bad:
        raise ConfigError(f"{path}/utt2spk: {bad[0]}{f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''}; "
                          "rename it (ids become file names)")
    return data


def check_input(path: str, allow_pipes: bool) -> None:
    """The validator's checks (tables agree, ids safe, audio opens), before any job starts."""
    problems = validate_data_dir(path, check_audio=True, allow_pipes=allow_pipes, scan_samples=False)
    if problems:
        for p in problems:
            log.error("%s: %s", path, p)
        raise ConfigError(f"input {path} is not valid ({len(problems)} problem(s) above); fix it "
                          "(utils/fix_data_dir.sh drops inconsistent entries) and re-run")


def prepare_output(data: DataDir, out: Path, config: str, system: str, overwrite: bool, record_dir: Path) -> None:
    """Run once before the jobs, under the step's lock: claim the dir, refuse to mix configs, and
    with ``overwrite`` forget our own finished outputs (they are redone, nothing else is touched)."""
    previous = outdir.check_output(data.path, out)
    outdir.claim_record_dir(record_dir, out)
    if previous is not None and previous.get("config") != config and not overwrite:
        raise ConfigError(f"{out} holds output of another anonymizer config ({outdir.STAMP_FILE}); "
                          "re-run with --overwrite true to redo it")
    if overwrite:
        stale = [*(out / outdir.DONE_DIR).glob("*"), *(out / "log").glob("failed.*"),
                 *record_dir.glob("records.*.jsonl")]
        for f in stale:
            f.unlink(missing_ok=True)
    # The stamp first: from now on the dir is recognizably ours (a second run is told it is busy).
    atomic_write_text(out / outdir.STAMP_FILE,
                      json.dumps({"owner": outdir.OWNER, "config": config, "system": system}, indent=1) + "\n")
    outdir.make_subdirs(out)
    todo = [u for u in data.utts if not outdir.is_done(out, u, outdir.utt_stamp(config, data, u))]
    if todo:
        (out / "wav.scp").unlink(missing_ok=True)  # no longer a complete dir until finalize
    log.info("%s: %d of %d utterance(s) to do", out, len(todo), len(data.utts))


def within_full_scale(audio: Audio) -> tuple[Audio, float]:
    """Scale output above full scale down to it (clipping would distort it); the factor used."""
    peak = float(np.max(np.abs(audio.samples))) if len(audio.samples) else 0.0
    if not np.isfinite(peak):
        raise AudioError("anonymizer returned NaN or inf samples")
    if peak <= 1.0:
        return audio, 1.0
    return Audio((audio.samples / peak).astype(np.float32), audio.sample_rate), 1.0 / peak


def wav_bytes(audio: Audio) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio.samples, audio.sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def append_record(records, line: str) -> None:
    """Durably, before the wav is published: a published wav always has its record."""
    records.write(line)
    records.flush()
    os.fsync(records.fileno())


def publish(data: DataDir, utt: str, result: Converted, out: Path, stamp: str, records) -> float:
    """Record, publish, stamp (in this order); the scale factor applied (1.0: none)."""
    out_audio, scale = within_full_scale(resample(result.audio, SAMPLE_RATE))
    if len(out_audio.samples) == 0:
        raise AudioError("anonymizer returned empty audio")
    record = {"utt": utt, **result.record, **({"scaled": round(scale, 4)} if scale != 1.0 else {})}
    try:
        append_record(records, json.dumps(record, sort_keys=True) + "\n")
    except OSError as err:
        raise disk_full(err, f"the record of {utt} to {records.name}") from None
    try:
        atomic_write_bytes(outdir.wav_path(out, utt), wav_bytes(out_audio))
        outdir.mark_done(out, utt, stamp)
    except OSError as err:
        raise disk_full(err, f"the output of {utt} ({err.filename or out})") from None
    return scale


def loaded(data: DataDir, utts: list[str], allow_pipes: bool, ahead: int) -> Iterator[tuple[str, Utterance | Exception]]:
    """Each utterance with its audio (or the error reading it), in order, read by ``LOADERS``
    threads up to ``ahead`` utterances in advance."""
    genders = data.table("spk2gender") or {}

    def load(utt: str) -> Utterance:
        spk = data.utt2spk[utt]
        return Utterance(utt, spk, load_16k(data.wav_scp[utt], data.path, allow_pipes), genders.get(spk))

    pool = ThreadPoolExecutor(LOADERS, thread_name_prefix="load")
    try:
        todo = iter(utts)
        pending = deque((u, pool.submit(load, u)) for u in islice(todo, ahead))
        while pending:
            utt, future = pending.popleft()
            pending.extend((u, pool.submit(load, u)) for u in islice(todo, 1))
            err = future.exception()
            yield utt, err if err is not None else future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def batches(items: Iterable[tuple[str, Utterance | Exception]], size: int,
            window: int) -> Iterator[list[tuple[str, Utterance | Exception]]]:
    """Batches of ``size``, sorted by length within windows of ``window`` items (less padding);
    unreadable utterances come first, alone."""
    items = iter(items)
    while chunk := list(islice(items, window)):
        bad = [x for x in chunk if isinstance(x[1], Exception)]
        good = sorted((x for x in chunk if not isinstance(x[1], Exception)), key=lambda x: len(x[1].audio.samples))
        yield from ([x] for x in bad)
        yield from (good[i:i + size] for i in range(0, len(good), size))


class Writer:
    """Publishes results on its own thread, in the order given, and keeps the tally: failures
    (logged and listed), outputs scaled down, progress. A full disk stops it; ``put`` and
    ``close`` then raise DiskFull in the caller."""

    def __init__(self, data: DataDir, out: Path, stamps: dict[str, str], records, job: int, total: int):
        self.data, self.out, self.stamps, self.records = data, out, stamps, records
        self.failed: list[str] = []
        self.scaled = 0
        self.fatal: BaseException | None = None
        self.progress = Progress(total, f"anonymize job {job}")
        self.queue: queue.Queue = queue.Queue(maxsize=64)
        self.thread = threading.Thread(target=self._run, name="write", daemon=True)
        self.thread.start()

    def put(self, utt: str, result: Converted | Exception) -> None:
        if self.fatal is not None:
            raise self.fatal
        self.queue.put((utt, result))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.fatal is not None:
            raise self.fatal

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.fatal is not None:
                continue  # drain: the job is ending
            utt, result = item
            try:
                if isinstance(result, Exception):
                    raise result
                self.scaled += publish(self.data, utt, result, self.out, self.stamps[utt], self.records) != 1.0
            except (DiskFull, BuildError) as err:  # every further utterance would fail the same way
                self.fatal = err
            except Exception as err:  # one bad utterance must not sink the job
                self.failed.append(utt)
                log.error("utterance %s failed: %s", utt, err)
                log.debug("%s", "".join(traceback.format_exception(err)))
            self.progress.step()


def run_shard(conf: AnonymizerConfig, data: DataDir, out: Path, job: int, nj: int, record_dir: Path,
              allow_pipes: bool, features: FeaturesConfig) -> int:
    config = config_key(conf, record_dir)
    stamps = {u: outdir.utt_stamp(config, data, u) for u in shard(data.utts, job, nj)}
    todo = [u for u, s in stamps.items() if not outdir.is_done(out, u, s)]
    log.info("job %d/%d: %d utterances, %d already done, system %s", job, nj, len(stamps), len(stamps) - len(todo),
             conf.system)
    failed_file = out / "log" / f"failed.{job}"
    if not todo:
        failed_file.unlink(missing_ok=True)
        return 0
    outdir.check_subdirs(out)
    outdir.claim_record_dir(record_dir, out)
    work_dir = record_dir / "work"
    work_dir.mkdir(exist_ok=True)
    try:
        ctx = BuildContext(conf.seed, resolve_device(conf.device), work_dir, features)
        anonymizer = build_system(conf.system, conf.params, ctx)
    except RuntimeError as err:  # e.g. torch's state-dict errors: one line, not a traceback
        raise ModelError(f"cannot build the {conf.system} system: {str(err).splitlines()[0]}") from None
    size = getattr(anonymizer, "batch_size", 1) if hasattr(anonymizer, "convert_batch") else 1
    window = size * getattr(anonymizer, "bucket", 1)
    try:
        records = outdir.open_records(record_dir, job)
    except OSError as err:
        raise disk_full(err, f"the records of job {job} to {record_dir} (first utterance {todo[0]})") from None
    with records:
        writer = Writer(data, out, stamps, records, job, len(todo))
        try:
            for batch in batches(loaded(data, todo, allow_pipes, window + LOADERS), size, window):
                readable = [x for _, x in batch if isinstance(x, Utterance)]
                results = dict(zip((u.id for u in readable), convert_all(anonymizer, readable)))
                for utt, x in batch:
                    writer.put(utt, results.get(utt, x))
        finally:
            writer.close()
    if writer.scaled:
        log.warning("job %d: %d of %d output(s) went above full scale and were scaled down (not clipped); "
                    "their records say by how much", job, writer.scaled, len(todo))
    if writer.failed:
        atomic_write_text(failed_file, "".join(f"{u}\n" for u in writer.failed))
        log.error("job %d: %d of %d utterances failed (listed in %s)", job, len(writer.failed), len(todo), failed_file)
        return 1
    failed_file.unlink(missing_ok=True)
    return 0


def finalize(conf: AnonymizerConfig, data: DataDir, out: Path, record_dir: Path) -> int:
    config = config_key(conf, record_dir)
    missing = [u for u in data.utts if not outdir.is_done(out, u, outdir.utt_stamp(config, data, u))]
    if missing:
        log.error("%d utterance(s) have no anonymized audio yet (first: %s); see %s/log/anonymize.*.log",
                  len(missing), " ".join(missing[:10]), out)
        return 1
    wav_scp = {u: str(outdir.wav_path(out, u).resolve()) for u in data.utts}
    write_data_dir(replace(data, wav_scp=wav_scp, path=out), out)
    log.info("wrote %s (%d utterances)", out, len(wav_scp))
    return 0


def paths(in_dir: str, out_dir: str, record_dir: str) -> tuple[Path, Path]:
    """The output dir and a record dir that may be used (yours, outside OUT, not the input)."""
    out = Path(out_dir)
    records = Path(record_dir) if record_dir else outdir.default_record_dir(out)
    outdir.check_record_dir(records, Path(in_dir), out)
    return out, records


def check(in_dir: str, out_dir: str, record_dir: str) -> int:
    """Before the lock, read-only: the output dir and the ids (unsafe ones named)."""
    out, _ = paths(in_dir, out_dir, record_dir)
    outdir.check_output(Path(in_dir), out)
    load_input(in_dir)
    return 0


def prepare(conf: AnonymizerConfig, in_dir: str, out_dir: str, record_dir: str, allow_pipes: bool,
            overwrite: bool) -> int:
    """Once, under the lock: validate the input, claim the output dir (``overwrite``: forget its
    finished outputs)."""
    out, records = paths(in_dir, out_dir, record_dir)
    check_input(in_dir, allow_pipes)
    prepare_output(load_input(in_dir), out, config_key(conf, records), conf.system, overwrite, records)
    return 0


def job(conf: AnonymizerConfig, features: FeaturesConfig, in_dir: str, out_dir: str, record_dir: str, job: int,
        nj: int, allow_pipes: bool) -> int:
    """One shard; a job started by hand (tests) prepares an unclaimed output dir itself."""
    if not 1 <= job <= nj:
        raise ValueError(f"--job {job} is outside 1..{nj}")
    out, records = paths(in_dir, out_dir, record_dir)
    data = load_input(in_dir)
    stamp = outdir.read_stamp(out) if out.is_dir() else None
    if stamp is None:
        prepare_output(data, out, config_key(conf, records), conf.system, False, records)
    elif stamp.get("config") != config_key(conf, records):
        raise ConfigError(f"{out} was prepared for another anonymizer config; "
                          "run steps/anonymize.sh (with --overwrite true to redo it)")
    return run_shard(conf, data, out, job, nj, records, allow_pipes, features)


def assemble(conf: AnonymizerConfig, in_dir: str, out_dir: str, record_dir: str) -> int:
    """After the jobs: OUT's Kaldi files, once every utterance has its audio."""
    out, records = paths(in_dir, out_dir, record_dir)
    return finalize(conf, load_input(in_dir), out, records)
