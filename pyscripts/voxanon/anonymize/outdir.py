"""The output dir of steps/anonymize.sh: what is ours, what is finished, where each file goes.

  <out>/.anonymizer.json   ownership stamp: who wrote the dir and a sealed hash of the anonymizer config
  <out>/wav/<utt>.wav      anonymized audio
  <out>/.done/<utt>        per-utterance stamp: a hash of the sealed config and of that utterance's input
  <out>/.lock              flock'ed by the step for its whole run (steps/anonymize.sh)
  <record dir>/.stamp_key  the random key that seals the config hash (owner-only, with the records)

The config holds the seed, which must stay secret, and a plain hash of it would let anyone holding the
published output and the (public) conf try every seed against the stamp. So the stamps carry an
HMAC of the config under a random key kept in the owner-only record dir: without the record dir
the stamps say nothing, and with another key (a lost record dir) every utterance is redone.

An utterance is finished when its wav exists *and* its stamp matches: a file that merely exists
(planted, half-published, made from other input audio) is never taken for anonymized speech.
The tool deletes only files it wrote, and only in a dir carrying its stamp.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from voxanon.config import ConfigError, fingerprint
from voxanon.data.ids import child_path
from voxanon.data.kaldi import DataDir, resolve_wav
from voxanon.fileio import atomic_write_text

STAMP_FILE = ".anonymizer.json"
STAMP_KEY = ".stamp_key"  # in the record dir
DONE_DIR = ".done"
LOCK_FILE = ".lock"
OWNER = "voxanon steps/anonymize.sh"
RECORD_OWNER = ".output"  # in the record dir: the output dir its records belong to


def wav_path(out: Path, utt: str) -> Path:
    return child_path(out / "wav", utt, ".wav")


def done_path(out: Path, utt: str) -> Path:
    return child_path(out / DONE_DIR, utt)


def utt_stamp(config: str, data: DataDir, utt: str) -> str:
    """What one output was made from: the config hash, the input entry with its file's size and
    mtime, and the speaker and gender (systems choose targets by them)."""
    entry = resolve_wav(data, utt)
    path = Path(entry)
    st = path.stat() if not entry.rstrip().endswith("|") and path.is_file() else None
    spk = data.utt2spk[utt]
    return fingerprint({"config": config, "entry": entry, "size": st and st.st_size, "mtime": st and st.st_mtime_ns,
                        "speaker": spk, "gender": (data.table("spk2gender") or {}).get(spk)})


def is_done(out: Path, utt: str, stamp: str) -> bool:
    done = done_path(out, utt)
    return wav_path(out, utt).is_file() and done.is_file() and done.read_text().strip() == stamp


def mark_done(out: Path, utt: str, stamp: str) -> None:
    atomic_write_text(done_path(out, utt), stamp + "\n")


def read_stamp(out: Path) -> dict | None:
    """The dir's ownership stamp, None when it has none; a stamp of another tool is an error."""
    path = out / STAMP_FILE
    if not path.is_file():
        return None
    try:
        stamp = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        stamp = None
    legacy = isinstance(stamp, dict) and set(stamp) == {"fingerprint", "system"}  # before per-utterance stamps
    if not isinstance(stamp, dict) or not (stamp.get("owner") == OWNER or legacy):
        raise ConfigError(f"{out} carries a {STAMP_FILE} this tool did not write; choose another output dir")
    return stamp


def check_output(in_dir: Path, out: Path) -> dict | None:
    """Refuse an output dir that is the input, or that exists and is not ours; its stamp (None: new)."""
    if out.resolve() == in_dir.resolve():
        raise ConfigError(f"output dir {out} is the input dir; give another one (anonymizing in place would "
                          "destroy the input audio)")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a directory; give another output dir")
    stamp = read_stamp(out) if out.is_dir() else None
    if stamp is None and out.is_dir():
        # A fresh dir may hold only the lock and an empty log dir (made by the step before this check).
        foreign = [p.name for p in out.iterdir()
                   if not (p.name == LOCK_FILE or (p.name == "log" and p.is_dir() and not any(p.iterdir())))]
        if foreign:
            raise ConfigError(f"{out} exists and was not written by steps/anonymize.sh (no {STAMP_FILE}; holds "
                              f"{', '.join(sorted(foreign)[:5])}); give a new output dir, nothing was changed")
    return stamp


def claim_record_dir(record_dir: Path, out: Path) -> None:
    """The record dir belongs to one output (resolved path); refuse one that holds another's."""
    record_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(record_dir, 0o700)
    owner, here = record_dir / RECORD_OWNER, str(out.resolve())
    if owner.is_file() and owner.read_text().strip() != here:
        raise ConfigError(f"record dir {record_dir} holds the records of {owner.read_text().strip()}, "
                          f"not of {here}; give another --record-dir")
    if not owner.is_file():
        atomic_write_text(owner, here + "\n")
        os.chmod(owner, 0o600)


def seal(config: str, record_dir: Path) -> str:
    """``config`` (a hash of the anonymizer config, seed included) keyed by the record dir's secret."""
    record_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = record_dir / STAMP_KEY
    if not path.is_file():
        atomic_write_text(path, secrets.token_hex(32) + "\n")
        os.chmod(path, 0o600)
    return hmac.new(bytes.fromhex(path.read_text().strip()), config.encode(), hashlib.sha256).hexdigest()


def default_record_dir(exp: Path, out: Path) -> Path:
    """exp/anon_records/<name>-<hash of the full output path>: two outputs of one name never share it."""
    return exp / "anon_records" / f"{out.name}-{fingerprint(str(out.resolve()))[:12]}"
