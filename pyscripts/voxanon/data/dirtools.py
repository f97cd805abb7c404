"""Operations on whole Kaldi data dirs behind utils/*.sh: fix, split, select, combine, relocate.

All of them keep the optional tables consistent (per-utterance tables, ``spk2gender``/``spk2fold``
by speaker, ``enrolls`` and ``trials`` by utterance; see :meth:`DataDir.subset`) and keep wav.scp
paths that are relative to the source dir resolvable from wherever the result is written
(:func:`relocate`).
"""
from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import replace
from pathlib import Path

from voxanon.data.kaldi import (SPK_TABLES, UTT_TABLES, DataDir, DataDirError, Trial, _few, resolve_wav,
                                write_data_dir)

FIX_LOG = "fix_data_dir.log"
_REQUIRED_VALUE = ("wav.scp", "utt2spk", "spk2utt", "utt2emo", "utt2dur", "spk2gender", "spk2fold")


def relocate(data: DataDir, dst: str | Path) -> DataDir:
    """``data`` as it will be written to ``dst``: wav.scp paths relative to the source dir are
    rewritten relative to ``dst`` when ``dst`` lies inside the source dir (splits), else absolute.
    Absolute paths, paths relative to the working dir, and pipes are kept as they are."""
    if data.path is None:
        return data
    src, dst = data.path.resolve(), Path(dst).resolve()
    inside = src == dst or src in dst.parents
    wav = {}
    for utt, entry in data.wav_scp.items():
        resolved = resolve_wav(data, utt)
        if resolved != entry and inside:
            resolved = os.path.relpath(resolved, dst)
        wav[utt] = resolved
    return replace(data, wav_scp=wav, path=dst)


def write_relocated(data: DataDir, dst: str | Path) -> None:
    write_data_dir(relocate(data, dst), dst)


# --- fix -------------------------------------------------------------------------------------

def _read_tolerant(path: Path, dropped: list[str]) -> dict[str, str]:
    """Like read_table, but records bad lines (duplicates, missing values) instead of failing."""
    table: dict[str, str] = {}
    first: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            key, _, value = line.strip().partition(" ")
            value = value.strip()
            if not key:
                continue
            if not value and path.name in _REQUIRED_VALUE:
                dropped.append(f"{path.name}:{lineno}: {key}: no value")
            elif path.name == "utt2spk" and " " in value:
                dropped.append(f"utt2spk:{lineno}: {key}: speaker id with spaces {value!r}")
            elif key in table:
                dropped.append(f"{path.name}:{lineno}: {key}: duplicate id (first on line {first[key]})")
            else:
                table[key], first[key] = value, lineno
    return table


def _read_trials_tolerant(path: Path, dropped: list[str]) -> list[Trial]:
    trials, seen = [], set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[2] not in ("target", "nontarget"):
            dropped.append(f"trials:{lineno}: malformed line {line.strip()!r}")
        elif (parts[0], parts[1]) in seen:
            dropped.append(f"trials:{lineno}: duplicate trial {parts[0]} {parts[1]}")
        else:
            seen.add((parts[0], parts[1]))
            trials.append(Trial(parts[0], parts[1], parts[2] == "target"))
    return trials


def line_problems(path: str | Path) -> list[str]:
    """Problems within single files that stop a dir from loading (duplicate ids, lines without a
    value, speaker ids with spaces, malformed trials), every file and line of them."""
    path, problems = Path(path), []
    for name in ("wav.scp", "utt2spk", "spk2utt") + UTT_TABLES + SPK_TABLES:
        if (path / name).is_file():
            _read_tolerant(path / name, problems)
    if (path / "trials").is_file():
        _read_trials_tolerant(path / "trials", problems)
    return problems


def _load_tolerant(path: Path, dropped: list[str]) -> DataDir:
    """The dir as far as it can be read; bad lines and invalid genders go to ``dropped``."""
    for name in ("wav.scp", "utt2spk"):
        if not (path / name).is_file():
            raise DataDirError(f"{path}: missing {name} (not a Kaldi data dir?)")
    wav = _read_tolerant(path / "wav.scp", dropped)
    utt2spk = _read_tolerant(path / "utt2spk", dropped)
    tables = {n: _read_tolerant(path / n, dropped) for n in UTT_TABLES + SPK_TABLES if (path / n).is_file()}
    if "spk2gender" in tables:
        bad = {s: g for s, g in tables["spk2gender"].items() if g not in ("m", "f")}
        dropped += [f"spk2gender: {s}: gender {g!r} is not m or f" for s, g in bad.items()]
        tables["spk2gender"] = {s: g for s, g in tables["spk2gender"].items() if s not in bad}
    enrolls = None
    if (path / "enrolls").is_file():
        enrolls = tuple(dict.fromkeys(line.strip() for line in (path / "enrolls").read_text().splitlines()
                                      if line.strip()))
    trials = tuple(_read_trials_tolerant(path / "trials", dropped)) if (path / "trials").is_file() else None
    return DataDir(wav, utt2spk, tables, enrolls, trials, path)


def _complete_utts(data: DataDir, dropped: list[str]) -> list[str]:
    """Utterances in wav.scp, utt2spk and every per-utterance table, with a spk2gender entry."""
    tables = [("wav.scp", data.wav_scp), ("utt2spk", data.utt2spk)]
    tables += [(n, data.tables[n]) for n in UTT_TABLES if n in data.tables]
    genders = data.tables.get("spk2gender")
    keep = []
    for utt in sorted(set(data.wav_scp) | set(data.utt2spk)):
        missing = [n for n, t in tables if utt not in t]
        if not missing and genders is not None and data.utt2spk[utt] not in genders:
            missing = [f"spk2gender (speaker {data.utt2spk[utt]})"]
        if missing:
            dropped.append(f"utterance {utt}: not in {', '.join(missing)}")
        else:
            keep.append(utt)
    return keep


def fix_data_dir(path: str | Path) -> list[str]:
    """Make a data dir consistent in place; the list of what was dropped and why.

    Keeps the utterances present in wav.scp, utt2spk and every per-utterance table, whose speaker
    has a valid spk2gender entry (when there is a spk2gender); filters the other tables, enrolls
    and trials to them; sorts everything and regenerates spk2utt. The original files go to
    ``<dir>/.backup/``, and the record is appended to ``<dir>/fix_data_dir.log``.
    """
    path, dropped = Path(path), []
    data = _load_tolerant(path, dropped)
    keep = _complete_utts(data, dropped)
    fixed = data.subset(keep)
    for name, tab in data.tables.items():
        extra = sorted(set(tab) - set(fixed.tables[name]))
        if extra:
            what = "speaker(s) without utterances" if name in SPK_TABLES else "entries of utterance(s) not kept"
            dropped.append(f"{name}: {what}: {_few(extra)}")
    if data.enrolls is not None and len(fixed.enrolls) < len(data.enrolls):
        gone = sorted(set(data.enrolls) - set(fixed.enrolls))
        dropped.append(f"enrolls: utterance(s) not in the data dir: {_few(gone)}")
    if data.trials is not None and len(fixed.trials) < len(data.trials):
        gone = sorted({t.utt for t in data.trials} - set(keep))
        dropped.append(f"trials: {len(data.trials) - len(fixed.trials)} trial(s) of utterance(s) not in the "
                       f"data dir: {_few(gone)}")

    backup = path / ".backup"
    backup.mkdir(exist_ok=True)
    for name in ("wav.scp", "utt2spk", "spk2utt", *data.tables, "enrolls", "trials"):
        if (path / name).is_file():
            shutil.copy2(path / name, backup / name)
    write_data_dir(replace(fixed, enrolls=tuple(sorted(fixed.enrolls)) if fixed.enrolls is not None else None), path)
    total = len(set(data.wav_scp) | set(data.utt2spk))
    record = [f"# fix_data_dir {time.strftime('%Y-%m-%d %H:%M:%S')}: kept {len(keep)} of {total} utterance(s), "
              f"{len(fixed.spk2utt)} speaker(s); originals in .backup/"]
    record += dropped or ["nothing dropped (files sorted, spk2utt regenerated)"]
    with open(path / FIX_LOG, "a", encoding="utf-8") as f:
        f.write("\n".join(record) + "\n")
    return dropped


# --- split, select, combine --------------------------------------------------------------------

def split_data_dir(data: DataDir, n: int, per_spk: bool = False) -> list[DataDir]:
    """``n`` parts of about equal utterance counts, in sorted-id order; ``per_spk``: whole
    speakers per part (disjoint speaker sets)."""
    utts = data.utts
    if per_spk:
        spk2utt = data.spk2utt
        if n > len(spk2utt):
            raise DataDirError(f"cannot split {len(spk2utt)} speaker(s) into {n} parts")
        groups, parts = list(spk2utt.values()), [[] for _ in range(n)]
        done, j = 0, 0
        for i, group in enumerate(groups):
            # The part whose share of the utterances holds this speaker's middle, but never skipping a
            # part and always leaving one speaker for each part still to fill.
            j = max(j, min((2 * done + len(group)) * n // (2 * len(utts)), j + 1), n - (len(groups) - i))
            parts[j].extend(group)
            done += len(group)
    else:
        if n > len(utts):
            raise DataDirError(f"cannot split {len(utts)} utterance(s) into {n} parts")
        parts = [utts[i * len(utts) // n:(i + 1) * len(utts) // n] for i in range(n)]
    return [data.subset(p) for p in parts]


def select_utts(data: DataDir, utt_list: list[str] | None = None, spk_list: list[str] | None = None,
                first: int | None = None, random_n: int | None = None, seed: int = 0) -> list[str]:
    """Utterance ids chosen by exactly one criterion; unknown ids in the lists are an error."""
    if utt_list is not None:
        unknown = [u for u in utt_list if u not in data.utt2spk]
        if unknown:
            raise DataDirError(f"utterance list: id(s) not in {data.path}: {_few(unknown)}")
        return utt_list
    if spk_list is not None:
        spk2utt = data.spk2utt
        unknown = [s for s in spk_list if s not in spk2utt]
        if unknown:
            raise DataDirError(f"speaker list: id(s) not in {data.path}: {_few(unknown)}")
        return [u for s in spk_list for u in spk2utt[s]]
    count = first if first is not None else random_n
    if count is None or count > len(data.utts):
        raise DataDirError(f"asked for {count} of {len(data.utts)} utterance(s)")
    return data.utts[:count] if first is not None else random.Random(seed).sample(data.utts, count)


def combine_data_dirs(dirs: list[DataDir]) -> tuple[DataDir, list[str]]:
    """One dir holding every input (relocate them to the output first); and warnings.

    Duplicate utterance ids, or a speaker with different values in two inputs' speaker tables,
    are errors. A table only some inputs have is left out (warned); enrolls/trials are merged.
    """
    wav, utt2spk, seen = {}, {}, {}
    for d in dirs:
        dup = sorted(set(d.utt2spk) & set(utt2spk))
        if dup:
            raise DataDirError(f"utterance id(s) in both {seen[dup[0]]} and {d.path}: {_few(dup)}")
        seen.update(dict.fromkeys(d.utt2spk, d.path))
        wav.update(d.wav_scp)
        utt2spk.update(d.utt2spk)
    warnings, tables = [], {}
    for name in UTT_TABLES + SPK_TABLES:
        having = [d for d in dirs if name in d.tables]
        if having and len(having) < len(dirs):
            lacking = [str(d.path) for d in dirs if name not in d.tables]
            warnings.append(f"{name} left out: missing in {', '.join(lacking)}")
            continue
        merged: dict[str, str] = {}
        for d in having:
            clash = sorted(k for k, v in d.tables[name].items() if merged.get(k, v) != v)
            if clash:
                raise DataDirError(f"{name}: different values for {_few(clash)} in {d.path} and an earlier input")
            merged.update(d.tables[name])
        if having:
            tables[name] = merged
    enrolls = [u for d in dirs for u in (d.enrolls or ())]
    trials = list(dict.fromkeys(t for d in dirs for t in (d.trials or ())))
    has = lambda attr: any(getattr(d, attr) is not None for d in dirs)  # noqa: E731
    out = DataDir(wav, utt2spk, tables, tuple(sorted(set(enrolls))) if has("enrolls") else None,
                  tuple(trials) if has("trials") else None)
    return out, warnings
