"""The output dir of steps/anonymize.sh: what is ours, what is finished, where each file goes.

  <out>/.anonymizer.json   ownership stamp: who wrote the dir and a sealed hash of the anonymizer config
  <out>/wav/<utt>.wav      anonymized audio
  <out>/.done/<utt>        per-utterance stamp: a hash of the sealed config and of that utterance's input
  <out>/.lock              flock'ed by the step for its whole run (steps/anonymize.sh)
  <record dir>/.stamp_key  the random key that seals the config hash (owner-only, with the records)
  <record dir>/records.<job>.jsonl  what each utterance was made with (targets, factors): secret

The record dir is the caller's own (never another user's, whose key and files could be planted),
never the input dir and never in the output dir (it would be published with it). The key and the
records are created exclusively and never through a symlink; the output's ``wav``, ``.done`` and
``log`` must be real dirs.

The config holds the seed, which must stay secret, and a plain hash of it would let anyone holding the
published output and the (public) conf try every seed against the stamp. So the stamps carry an
HMAC of the config under a random key kept in the owner-only record dir: without the record dir
the stamps say nothing, and with another key (a lost record dir) every utterance is redone.

An utterance is finished when its wav exists *and* its stamp matches: a file that merely exists
(planted, half-published, made from other input audio) is never taken for anonymized speech.
The tool deletes only files it wrote, and only in a dir carrying its stamp.
"""
from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import TextIO

from voxanon.config import REPO_ROOT, ConfigError, fingerprint
from voxanon.data.ids import child_path
from voxanon.data.kaldi import DataDir, resolve_wav
from voxanon.fileio import atomic_write_text

STAMP_FILE = ".anonymizer.json"
STAMP_KEY = ".stamp_key"  # in the record dir
DONE_DIR = ".done"
LOCK_FILE = ".lock"
OWNER = "voxanon steps/anonymize.sh"
RECORD_OWNER = ".output"  # in the record dir: the output dir its records belong to
SUBDIRS = ("log", "wav", DONE_DIR)


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
    check_subdirs(out)
    return stamp


def check_subdirs(out: Path) -> None:
    """Refuse a symlinked ``wav``, ``.done`` or ``log``: the step would write through it elsewhere."""
    for name in SUBDIRS:
        if (out / name).is_symlink():
            raise ConfigError(f"{out / name} is a symlink (to {os.readlink(out / name)}); the step writes only "
                              "into dirs of its own: remove the link")


def make_subdirs(out: Path) -> None:
    check_subdirs(out)
    for name in SUBDIRS:
        (out / name).mkdir(parents=True, exist_ok=True)


def check_record_dir(record_dir: Path, in_dir: Path, out: Path) -> None:
    """Refuse a record dir that would leak or damage data: the input dir, the output dir or a dir
    inside it (the records and key would be published with it), another user's dir."""
    where, output = record_dir.resolve(), out.resolve()
    if where == in_dir.resolve():
        raise ConfigError(f"record dir {record_dir} is the input dir; give another --record-dir "
                          "(the step would make the input owner-only and write its secrets there)")
    if where == output or output in where.parents:
        raise ConfigError(f"record dir {record_dir} lies in the output dir {out}: the secret records and key "
                          "would be published with the data; give a --record-dir outside it")
    if record_dir.exists():
        _check_own_dir(record_dir)


def _check_own_dir(record_dir: Path) -> None:
    st = record_dir.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"record dir {record_dir} exists and is not a directory; give another --record-dir")
    if st.st_uid != os.geteuid():
        raise ConfigError(f"record dir {record_dir} belongs to another user (uid {st.st_uid}); its key and "
                          "records could be planted: give a --record-dir of your own")


def make_record_dir(record_dir: Path) -> None:
    """The (checked) record dir, created if need be, owner-only."""
    record_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_own_dir(record_dir)  # again: it may have been made by another user since the check
    os.chmod(record_dir, 0o700)


def claim_record_dir(record_dir: Path, out: Path) -> None:
    """The record dir belongs to one output (resolved path); refuse one that holds another's."""
    make_record_dir(record_dir)
    owner, here = record_dir / RECORD_OWNER, str(out.resolve())
    if owner.is_file() and owner.read_text().strip() != here:
        raise ConfigError(f"record dir {record_dir} holds the records of {owner.read_text().strip()}, "
                          f"not of {here}; give another --record-dir")
    if not owner.is_file():
        atomic_write_text(owner, here + "\n")
        os.chmod(owner, 0o600)


def open_private(path: Path, flags: int) -> int:
    """An fd of ``path``, never through a symlink, refused unless a regular file of ours that only
    we can read (a planted or exposed key or record)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)  # a FIFO must not block the open
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ConfigError(f"{path} is a symlink; remove it (the record dir holds only files of its own)") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        raise ConfigError(f"{path} is not a private file of yours (mode {stat.filemode(st.st_mode)}, uid "
                          f"{st.st_uid}); it may have been planted: remove it or give another --record-dir")
    return fd


def open_records(record_dir: Path, job: int) -> TextIO:
    """Job ``job``'s record file, opened to append (created owner-only)."""
    return open(record_dir / f"records.{job}.jsonl", "a", encoding="utf-8",
                opener=lambda path, flags: open_private(Path(path), flags))


def _create_key(path: Path) -> None:
    """A new random key at ``path`` unless one is there: written whole to a temp file, then
    linked in (like O_EXCL: never over an existing file or link, never half written)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def seal(config: str, record_dir: Path) -> str:
    """``config`` (a hash of the anonymizer config, seed included) keyed by the record dir's secret."""
    make_record_dir(record_dir)
    path = record_dir / STAMP_KEY
    if not os.path.lexists(path):
        _create_key(path)
    with os.fdopen(open_private(path, os.O_RDONLY)) as f:
        key = f.read().strip()
    return hmac.new(bytes.fromhex(key), config.encode(), hashlib.sha256).hexdigest()


def default_record_dir(out: Path) -> Path:
    """$VOXANON_EXP/anon_records/<name>-<hash of the full output path>, a relative $VOXANON_EXP
    (default exp) taken from the recipe dir: one output has one record dir (and key) from whatever
    dir the step is run, and two outputs of one name never share one."""
    exp = REPO_ROOT / os.environ.get("VOXANON_EXP", "exp")
    return exp / "anon_records" / f"{out.name}-{fingerprint(str(out.resolve()))[:12]}"
