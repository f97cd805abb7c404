"""Kaldi data directories: read, write (atomically), validate.

A data dir holds ``wav.scp``, ``utt2spk``, ``spk2utt`` and optionally ``text``, ``spk2gender``,
``utt2emo``, ``spk2fold``, ``utt2dur``, ``enrolls`` (one utt id a line) and ``trials``
(``<enroll-spk> <utt> target|nontarget``, VPC 2024). Files are sorted by id (C locale), as
Kaldi requires, and written through a temp file + rename so a killed job leaves no half file.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

from voxanon.data.ids import id_problems
from voxanon.fileio import atomic_write_text

# Optional per-utterance / per-speaker tables this project knows about.
UTT_TABLES = ("text", "utt2emo", "utt2dur")
SPK_TABLES = ("spk2gender", "spk2fold")


class DataDirError(ValueError):
    """A data dir is malformed; the message names the file and the offending ids."""


def read_table(path: str | Path) -> dict[str, str]:
    """``<key> <value...>`` lines to an insertion-ordered dict. Duplicate keys are an error."""
    table: dict[str, str] = {}
    dups = []
    for _, line in text_lines(path):
        if not line.strip():
            continue
        key, value = (line.split(None, 1) + [""])[:2]  # any whitespace separates, as in Kaldi
        if key in table:
            dups.append(key)
        table[key] = value.strip()
    if dups:
        raise DataDirError(f"{path}: duplicate id(s): {_few(dups)}")
    return table


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file; other encodings are a one-line DataDirError."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                yield lineno, raw.decode("utf-8").rstrip("\n")
            except UnicodeDecodeError:
                raise DataDirError(f"{path}:{lineno}: not UTF-8 text; convert the file "
                                   f"(e.g. iconv -f latin1 -t utf-8)") from None


def read_list(path: str | Path) -> list[str]:
    return [line.strip() for _, line in text_lines(path) if line.strip()]


def write_table(path: str | Path, table: dict[str, str]) -> None:
    atomic_write_text(path, "".join(f"{k} {v}\n" if v != "" else f"{k}\n" for k, v in sorted(table.items())))


def write_list(path: str | Path, items: Iterable[str]) -> None:
    atomic_write_text(path, "".join(f"{x}\n" for x in items))


@dataclass(frozen=True)
class Trial:
    enroll_spk: str
    utt: str
    target: bool


def read_trials(path: str | Path) -> list[Trial]:
    trials = []
    for lineno, line in text_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[2] not in ("target", "nontarget"):
            raise DataDirError(f"{path}:{lineno}: expected '<enroll-spk> <utt> target|nontarget', got {line.strip()!r}")
        trials.append(Trial(parts[0], parts[1], parts[2] == "target"))
    return trials


def write_trials(path: str | Path, trials: Iterable[Trial]) -> None:
    atomic_write_text(path, "".join(f"{t.enroll_spk} {t.utt} {'target' if t.target else 'nontarget'}\n" for t in trials))


def spk2utt_from_utt2spk(utt2spk: dict[str, str]) -> dict[str, list[str]]:
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return dict(sorted(spk2utt.items()))


@dataclass(frozen=True)
class DataDir:
    """In-memory Kaldi data dir. ``tables`` holds the optional per-utt / per-spk tables."""

    wav_scp: dict[str, str]
    utt2spk: dict[str, str]
    tables: dict[str, dict[str, str]] = field(default_factory=dict)
    enrolls: tuple[str, ...] | None = None
    trials: tuple[Trial, ...] | None = None
    path: Path | None = None  # where it was read from; relative wav paths resolve against it

    @property
    def utts(self) -> list[str]:
        return sorted(self.utt2spk)

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        return spk2utt_from_utt2spk(self.utt2spk)

    def table(self, name: str) -> dict[str, str] | None:
        return self.tables.get(name)

    def audio(self, utt: str, allow_pipes: bool = False):
        """Utterance ``utt`` as 16 kHz mono ``Audio``: its wav.scp entry resolved against the dir
        (a segment reads its stretch; a pipe only with ``allow_pipes``). The one way to read one."""
        from voxanon.audio import load_16k

        return load_16k(resolve_wav(self, utt), self.path, allow_pipes)

    def audio_window(self, utt: str, start: int, frames: int, allow_pipes: bool = False):
        """Samples [start, start + frames) of ``audio(utt)``, decoding only that stretch where the
        entry is a plain 16 kHz file (training crops of long files)."""
        from voxanon.audio import read_window

        window = read_window(resolve_wav(self, utt), self.path, start, frames)
        return window if window is not None else self.audio(utt, allow_pipes).samples[start:start + frames]

    def subset(self, utts: Iterable[str]) -> "DataDir":
        """The dir restricted to ``utts``; speaker tables, enrolls and trials filtered to match."""
        keep = set(utts) & set(self.utt2spk)
        spks = {self.utt2spk[u] for u in keep}
        tables = {}
        for name, tab in self.tables.items():
            ids = spks if name in SPK_TABLES else keep
            tables[name] = {k: v for k, v in tab.items() if k in ids}
        enrolls = tuple(u for u in self.enrolls if u in keep) if self.enrolls is not None else None
        trials = None
        if self.trials is not None:
            trials = tuple(t for t in self.trials if t.utt in keep)
        return replace(
            self,
            wav_scp={u: w for u, w in self.wav_scp.items() if u in keep},
            utt2spk={u: s for u, s in self.utt2spk.items() if u in keep},
            tables=tables,
            enrolls=enrolls,
            trials=trials,
        )


def load_data_dir(path: str | Path) -> DataDir:
    path = Path(path)
    for name in ("wav.scp", "utt2spk"):
        if not (path / name).is_file():
            raise DataDirError(f"{path}: missing {name} (not a Kaldi data dir?)")
    tables = {}
    for name in UTT_TABLES + SPK_TABLES:
        if (path / name).is_file():
            tables[name] = read_table(path / name)
    enrolls = tuple(read_list(path / "enrolls")) if (path / "enrolls").is_file() else None
    trials = tuple(read_trials(path / "trials")) if (path / "trials").is_file() else None
    return DataDir(_read_wav_scp(path), read_table(path / "utt2spk"), tables, enrolls, trials, path)


def _read_wav_scp(path: Path) -> dict[str, str]:
    """wav.scp by utterance; with a ``segments`` file (wav.scp then lists recordings) each
    utterance gets its recording's entry with the segment's times (see voxanon.audio)."""
    from voxanon.audio import Segment

    wav = read_table(path / "wav.scp")
    if not (path / "segments").is_file():
        return wav
    out, missing = {}, []
    for utt, value in read_table(path / "segments").items():
        parts = value.split()
        if len(parts) != 3:
            raise DataDirError(f"{path}/segments: {utt}: expected '<utt> <recording> <start> <end>'")
        if parts[0] not in wav:
            missing.append(utt)
        else:
            out[utt] = str(Segment(wav[parts[0]], parts[1], parts[2]))
    if missing:
        raise DataDirError(f"{path}/segments: recording not in wav.scp for utterance(s): {_few(missing)}")
    return out


def write_data_dir(data: DataDir, path: str | Path) -> None:
    """Write every file of ``data`` (each atomically) and derive ``spk2utt``.

    ``wav.scp`` is written last, so a dir with a ``wav.scp`` is a complete dir.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    write_table(path / "utt2spk", data.utt2spk)
    write_table(path / "spk2utt", {s: " ".join(u) for s, u in data.spk2utt.items()})
    for name, tab in data.tables.items():
        write_table(path / name, tab)
    if data.enrolls is not None:
        write_list(path / "enrolls", data.enrolls)
    if data.trials is not None:
        write_trials(path / "trials", data.trials)
    write_table(path / "wav.scp", data.wav_scp)


def _few(ids: Iterable[str], n: int = 10) -> str:
    ids = list(ids)
    shown = " ".join(ids[:n])
    return shown + (f" ... ({len(ids)} in all)" if len(ids) > n else "")


def _check_sorted(path: Path, problems: list[str]) -> None:
    keys = [line.split(maxsplit=1)[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    # Kaldi sorts in the C locale, i.e. by bytes.
    enc = [k.encode() for k in keys]
    bad = [keys[i] for i in range(1, len(enc)) if enc[i] < enc[i - 1]]
    if bad:
        problems.append(f"{path.name}: not sorted (C locale) at id(s): {_few(bad)}")


def validate_data_dir(path: str | Path, check_audio: bool = False, allow_pipes: bool = False,
                      expect_rate: int | None = None, scan_samples: bool = True,
                      warnings: list[str] | None = None) -> list[str]:
    """All problems found in a data dir, each naming the file and ids; empty list = valid.

    ``check_audio`` opens every audio file (existence, decodability, non-empty, and the sample
    rate when ``expect_rate`` is given); with ``scan_samples`` it also decodes them: NaN/inf
    samples are a problem, clipped audio goes to ``warnings`` (when a list is given).
    """
    path = Path(path)
    problems: list[str] = []
    for name in ("wav.scp", "utt2spk"):
        if not (path / name).is_file():
            return [f"{path}: missing {name}"]
    try:
        data = load_data_dir(path)
    except DataDirError as err:
        return [str(err)]
    for name in ("wav.scp", "utt2spk", "spk2utt", *UTT_TABLES, *SPK_TABLES):
        if (path / name).is_file():
            _check_sorted(path / name, problems)
    if not data.utt2spk:
        problems.append("utt2spk: empty")
    problems += id_problems(sorted(set(data.wav_scp) | set(data.utt2spk)), "utterance")
    problems += id_problems(sorted(set(data.utt2spk.values()) | {t.enroll_spk for t in data.trials or ()}), "speaker")
    wav_ids, spk_ids = set(data.wav_scp), set(data.utt2spk)
    if wav_ids - spk_ids:
        problems.append(f"wav.scp: utterance(s) missing from utt2spk: {_few(sorted(wav_ids - spk_ids))}")
    if spk_ids - wav_ids:
        problems.append(f"utt2spk: utterance(s) missing from wav.scp: {_few(sorted(spk_ids - wav_ids))}")
    empty_spk = [u for u, s in data.utt2spk.items() if not s or " " in s]
    if empty_spk:
        problems.append(f"utt2spk: missing or multi-word speaker for: {_few(empty_spk)}")
    if (path / "spk2utt").is_file():
        s2u = {s: sorted(u.split()) for s, u in read_table(path / "spk2utt").items()}
        if s2u != {s: sorted(u) for s, u in data.spk2utt.items()}:
            problems.append("spk2utt: does not match utt2spk (regenerate it with utt2spk_to_spk2utt)")
    else:
        problems.append("spk2utt: missing")
    utts, spks = set(data.utt2spk), set(data.utt2spk.values())
    for name, tab in data.tables.items():
        ids = spks if name in SPK_TABLES else utts
        missing = sorted(ids - set(tab))
        extra = sorted(set(tab) - ids)
        if name in ("spk2gender",) and missing:
            problems.append(f"{name}: no entry for speaker(s): {_few(missing)}")
        if extra:
            problems.append(f"{name}: id(s) not in the data dir: {_few(extra)}")
        if name == "spk2gender":
            bad = [k for k, v in tab.items() if v not in ("m", "f")]
            if bad:
                problems.append(f"spk2gender: gender must be m or f for: {_few(bad)}")
    if data.enrolls is not None:
        unknown = [u for u in data.enrolls if u not in utts]
        if unknown:
            problems.append(f"enrolls: utterance(s) not in utt2spk: {_few(unknown)}")
    if data.trials is not None:
        bad_utts = sorted({t.utt for t in data.trials if t.utt not in utts})
        if bad_utts:
            problems.append(f"trials: utterance(s) not in utt2spk: {_few(bad_utts)}")
    if check_audio:
        problems.extend(_check_audio(data, path, allow_pipes, expect_rate, scan_samples,
                                     warnings if warnings is not None else []))
    return problems


# An utterance with more than this share of its samples at full scale (16-bit) is reported as clipped.
FULL_SCALE = 32767 / 32768
CLIPPED_SHARE = 0.001


def _check_audio(data: DataDir, path: Path, allow_pipes: bool, expect_rate: int | None, scan: bool,
                 warnings: list[str]) -> list[str]:
    from voxanon.audio import AudioError, audio_file, is_pipe, read_audio

    import numpy as np
    import soundfile as sf

    unreadable, empty, wrong_rate, not_finite, clipped = [], [], [], [], []
    for utt, entry in data.wav_scp.items():
        try:
            if is_pipe(entry) or scan:
                audio = read_audio(entry, path, allow_pipes)
                frames, rate = len(audio.samples), audio.sample_rate
                share = float(np.mean(np.abs(audio.samples) >= FULL_SCALE)) if frames else 0.0
                if scan and not np.isfinite(audio.samples).all():
                    not_finite.append(utt)
                elif scan and share > CLIPPED_SHARE:
                    clipped.append(f"{utt} ({100 * share:.1f} %)")
            else:
                info = sf.info(str(audio_file(entry, path)))
                frames, rate = info.frames, info.samplerate
        except (AudioError, RuntimeError, OSError) as err:
            unreadable.append(f"{utt} ({str(err).splitlines()[0][:120]})")
            continue
        if frames == 0:
            empty.append(utt)
        if expect_rate and rate != expect_rate:
            wrong_rate.append(f"{utt} ({rate} Hz)")
    problems = []
    if unreadable:
        problems.append(f"wav.scp: unreadable audio: {_few(unreadable, 5)}")
    if empty:
        problems.append(f"wav.scp: empty audio: {_few(empty)}")
    if wrong_rate:
        problems.append(f"wav.scp: sample rate is not {expect_rate} Hz: {_few(wrong_rate, 5)}")
    if not_finite:
        problems.append(f"wav.scp: audio with NaN or inf samples: {_few(not_finite)}")
    if clipped:
        warnings.append(f"wav.scp: clipped audio (share of samples at full scale): {_few(clipped, 5)}")
    return problems


def shard(utts: list[str], job: int, nj: int) -> list[str]:
    """Job ``job``'s (from 1) contiguous share of sorted ids split into ``nj`` near-equal parts."""
    n = len(utts)
    return utts[(job - 1) * n // nj: job * n // nj]


def resolve_wav(data: DataDir, utt: str) -> str:
    """wav.scp entry of ``utt`` with a relative path made absolute against the dir (never the
    working dir: see voxanon.audio.audio_file)."""
    from voxanon.audio import parse_segment

    entry = data.wav_scp[utt]
    segment = parse_segment(entry)
    if segment is not None:  # resolve the recording's path, keep the segment's times
        recording = resolve_wav(replace(data, wav_scp={utt: segment.recording}), utt)
        return str(replace(segment, recording=recording))
    if entry.rstrip().endswith("|") or data.path is None:
        return entry
    return entry if Path(entry).is_absolute() else str((data.path / entry).resolve())
