"""Kaldi data-dir operations behind utils/*.sh: fix, split, subset, combine, and Kaldi's checks.

They work on the files' lines as bytes, as Kaldi's tools do: a line is kept byte for byte (tabs
included) unless Kaldi rewrites it (utt2spk and spk2utt are regenerated with single spaces,
segments is rewritten with single spaces by fix). Fields are whitespace-separated; files are
sorted by their first field in the C locale. Files Kaldi's tools know, plus voxanon's own
(``utt2emo``, ``spk2fold``, ``enrolls``, ``trials``), are filtered with the utterances they
index; nothing is dropped silently. Relative wav.scp paths are relative to the data dir
(voxanon's rule, whatever the working dir; Kaldi's are relative to the recipe) and are rewritten
so they name the same files from the output dir.

Every function computes its whole result before writing anything, and writes each file
atomically: an error leaves the dirs as they were.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from voxanon.data.kaldi import DataDirError
from voxanon.fileio import atomic_path

Lines = list[bytes]

# What each file is indexed by (its first field; trials: its second). The lists are Kaldi's,
# plus voxanon's files; wav.scp is per recording when there is a segments file.
UTT_FILES = ("feats.scp", "text", "vad.scp", "utt2lang", "utt2uniq", "utt2dur", "utt2num_frames",
             "utt2warp", "utt2emo", "enrolls")
SPK_FILES = ("spk2gender", "cmvn.scp", "spk2warp", "spk2fold")
RECO_FILES = ("reco2file_and_channel", "reco2dur")
COPIED_FILES = ("frame_shift",)
ALL_FILES = ("utt2spk", "spk2utt", "wav.scp", "segments", "trials") + UTT_FILES + SPK_FILES + RECO_FILES


# --- lines ---------------------------------------------------------------------------------------

def read_lines(path: Path) -> Lines:
    """The file's lines, each ending in a newline; a blank line is an error naming file:line."""
    data = path.read_bytes()
    lines = [line + b"\n" for line in data.split(b"\n")]
    if data.endswith(b"\n") or not data:
        lines.pop()
    for n, line in enumerate(lines, 1):
        if not line.split():
            raise DataDirError(f"{path}:{n}: empty line")
    return lines


def field(line: bytes, n: int = 1) -> bytes:
    parts = line.split()
    if len(parts) < n:
        raise DataDirError(f"line has no field {n}: {line.decode(errors='replace').strip()!r}")
    return parts[n - 1]


def keys(lines: Lines, n: int = 1) -> list[bytes]:
    return [field(line, n) for line in lines]


def filter_lines(lines: Lines, ids, n: int = 1, exclude: bool = False) -> Lines:
    """The lines whose n-th field is (or with ``exclude``, is not) in ``ids``, in their order."""
    ids = set(ids)
    return [line for line in lines if (field(line, n) in ids) != exclude]


def sort_unique(lines: Lines) -> Lines:
    """``sort -k1,1 -u`` in the C locale: by first field, the first line of each id kept."""
    seen: dict[bytes, bytes] = {}
    for line in lines:
        seen.setdefault(field(line), line)
    return [seen[k] for k in sorted(seen)]


def c_sorted(lines: Lines, key=None) -> Lines:
    """``sort`` in the C locale: whole lines by bytes, the newline not part of the line."""
    return sorted(lines, key=key or (lambda line: line[:-1]))


def _after_field1(line: bytes) -> bytes:
    """``sort -k2``'s key: from the blanks after the first field to the end of the line."""
    m = re.match(rb"[ \t]*[^ \t\n]*", line)
    return line[m.end():].rstrip(b"\n")


def spk2utt_lines(utt2spk: Lines) -> Lines:
    """utt2spk_to_spk2utt.pl: speakers in the order they first appear, single spaces."""
    spk2utt: dict[bytes, list[bytes]] = {}
    for line in utt2spk:
        parts = line.split()
        if len(parts) != 2:
            raise DataDirError(f"utt2spk: invalid line (expected '<utt> <spk>'): {line.decode(errors='replace')!r}")
        spk2utt.setdefault(parts[1], []).append(parts[0])
    return [b" ".join([s, *u]) + b"\n" for s, u in spk2utt.items()]


def utt2spk_lines(spk2utt: Lines) -> Lines:
    """spk2utt_to_utt2spk.pl: one ``<utt> <spk>`` line per utterance, in spk2utt's order."""
    out = []
    for line in spk2utt:
        spk, *utts = line.split()
        if not utts:
            raise DataDirError(f"spk2utt: speaker {spk.decode(errors='replace')} has no utterances")
        out += [u + b" " + spk + b"\n" for u in utts]
    return out


def awk_positive(value: bytes) -> bool:
    """awk's ``$2 > 0``: numeric when the field looks like a number, else a string comparison."""
    try:
        return float(value) > 0 if re.fullmatch(rb"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value) else value > b"0"
    except ValueError:
        return False


# --- reading and writing dirs ----------------------------------------------------------------------

def read_dir(path: Path, extra: tuple[str, ...] = ()) -> dict[str, Lines]:
    """Every known file (and ``extra`` ones) present in the dir, as lines."""
    if not path.is_dir():
        raise DataDirError(f"{path}: no such directory")
    if not (path / "utt2spk").is_file():
        raise DataDirError(f"{path}: no such file utt2spk")
    return {name: read_lines(path / name) for name in dict.fromkeys(ALL_FILES + extra) if (path / name).is_file()}


def write_file(path: Path, lines: Lines) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join(lines))


def relocate_wav(lines: Lines, src: Path, dst: Path) -> Lines:
    """wav.scp lines as seen from ``dst``: a relative path (relative to ``src``) becomes
    relative to ``dst`` when ``dst`` lies inside ``src`` (splits), else absolute. Pipes and
    absolute paths are kept as they are."""
    src, dst = Path(os.path.abspath(src)), Path(os.path.abspath(dst))  # symlinks kept, not resolved
    out = []
    for line in lines:
        m = re.match(rb"(\s*\S+\s+)(\S+)(\s*)$", line)
        path = Path(os.fsdecode(m.group(2))) if m and not m.group(2).endswith(b"|") else None
        if path is None or path.is_absolute():
            out.append(line)
            continue
        target = os.path.normpath(src / path)
        new = os.path.relpath(target, dst) if src == dst or src in dst.parents else str(target)
        out.append(m.group(1) + os.fsencode(new) + m.group(3))
    return out


def filter_dir(files: dict[str, Lines], utt2spk: Lines, spk2utt: Lines) -> dict[str, Lines]:
    """All files restricted to the utterances of ``utt2spk`` and the speakers of ``spk2utt``
    (which become the result's utt2spk and spk2utt); recording files follow the segments kept."""
    utts, spks = keys(utt2spk), keys(spk2utt)
    out = {"utt2spk": utt2spk, "spk2utt": spk2utt}
    for name, lines in files.items():
        if name in UTT_FILES or name == "segments" or (name == "wav.scp" and "segments" not in files):
            out[name] = filter_lines(lines, utts)
        elif name == "trials":
            out[name] = filter_lines(lines, utts, 2)
        elif name in SPK_FILES:
            out[name] = filter_lines(lines, spks)
    if "segments" in files:
        recos = sorted(set(keys(out["segments"], 2)))
        for name in ("wav.scp",) + RECO_FILES:
            if name in files:
                out[name] = filter_lines(files[name], recos)
    else:  # no segments: a recording is an utterance
        for name in RECO_FILES:
            if name in files:
                out[name] = filter_lines(files[name], utts)
    return out


def write_dir(files: dict[str, Lines], dst: Path, src: Path | None = None) -> None:
    """Write ``files`` into ``dst``, wav.scp last (a dir with a wav.scp is complete) and, when
    ``src`` is given, relocated from it."""
    dst.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        if name != "wav.scp":
            write_file(dst / name, lines)
    if "wav.scp" in files:
        write_file(dst / "wav.scp", relocate_wav(files["wav.scp"], src, dst) if src else files["wav.scp"])


# --- fix_data_dir.sh --------------------------------------------------------------------------------

class _Fixer:
    """Kaldi's fix_data_dir.sh on lines in memory: recordings, speakers, utterances, speakers,
    recordings filtered in that order; ``log`` collects Kaldi's messages."""

    def __init__(self, files: dict[str, Lines], utt_extra: tuple[str, ...], spk_extra: tuple[str, ...]):
        self.f, self.utt_extra, self.spk_extra, self.log = files, utt_extra, spk_extra, []

    def filter(self, name: str, ids, n: int = 1) -> None:
        before = self.f[name]
        self.f[name] = filter_lines(before, ids, n)
        if len(self.f[name]) != len(before):
            self.log.append(f"filtered {name} from {len(before)} to {len(self.f[name])} lines")

    def recordings(self) -> None:
        f = self.f
        if "segments" not in f:
            return
        if "wav.scp" not in f:
            raise DataDirError("segments exists but not wav.scp")
        recos = sorted(set(keys(f["segments"], 2)))
        if not recos:
            raise DataDirError("empty list of recordings (bad file segments?)")
        recos = [r for r in recos if r in set(keys(f["wav.scp"]))]
        # Kaldi rewrites segments through awk: four fields, single spaces.
        f["segments"] = [b" ".join((line.split() + [b""] * 4)[:4]) + b"\n" for line in f["segments"]]
        self.filter("segments", recos, 2)
        for name in ("wav.scp",) + RECO_FILES:
            if name in f:
                self.filter(name, recos)

    def speakers(self) -> None:
        f = self.f
        f["spk2utt"] = spk2utt_lines(f["utt2spk"])
        spks = keys(f["spk2utt"])
        for name in ("cmvn.scp", "spk2gender"):  # a speaker without an entry there is dropped
            if name in f:
                have = set(keys(f[name]))
                spks = [s for s in spks if s in have]
        self.filter("spk2utt", spks)
        f["utt2spk"] = utt2spk_lines(f["spk2utt"])
        for name in ("cmvn.scp", "spk2gender", "spk2warp", "spk2fold") + self.spk_extra:
            if name in f:
                self.filter(name, spks)

    def utterances(self) -> None:
        f = self.f
        u2s = f["utt2spk"]
        if c_sorted(u2s) != u2s:
            raise DataDirError("utt2spk is not in sorted order (fix this yourself)")
        if c_sorted(u2s, key=lambda line: (_after_field1(line), line[:-1])) != u2s:
            raise DataDirError("utt2spk is not in sorted order when sorted first on speaker-id "
                               "(fix this by making speaker-ids prefixes of utt-ids)")
        if c_sorted(f["spk2utt"]) != f["spk2utt"]:
            raise DataDirError("spk2utt is not in sorted order (fix this yourself)")
        if "utt2uniq" in f and c_sorted(f["utt2uniq"]) != f["utt2uniq"]:
            raise DataDirError("utt2uniq is not in sorted order (fix this yourself)")
        utts = keys(u2s)
        segmented = "segments" in f
        required = ["feats.scp", "text", "segments", "utt2lang"] + ([] if segmented else ["wav.scp"])
        for name in required:
            if name in f:
                have = set(keys(f[name]))
                utts = [u for u in utts if u in have]
        for name in ("utt2dur", "utt2num_frames"):  # only lines with a positive value count
            if name in f:
                have = {ln.split()[0] for ln in f[name] if len(ln.split()) == 2 and awk_positive(ln.split()[1])}
                utts = [u for u in utts if u in have]
        if not utts:
            raise DataDirError("no utterances remained: not proceeding further.")
        self.log.append(f"kept {len(utts)} utterances out of {len(u2s)}" if len(utts) != len(u2s)
                        else f"kept all {len(u2s)} utterances.")
        names = ["utt2spk", *UTT_FILES, "segments", *self.utt_extra]
        names += [] if segmented else ["wav.scp", "reco2dur"]
        for name in dict.fromkeys(names):
            if name in f:
                self.filter(name, utts)
        if "trials" in f:
            self.filter("trials", utts, 2)


def fix_data_dir(path: str | Path, utt_extra: tuple[str, ...] = (), spk_extra: tuple[str, ...] = ()) -> list[str]:
    """Kaldi's fix_data_dir.sh: the same files, byte for byte; Kaldi's messages are returned.

    Kept: the utterances in utt2spk and in each of feats.scp, text, segments, utt2lang, wav.scp
    (when not segmented), utt2dur/utt2num_frames (positive value), whose speaker has a
    spk2gender/cmvn.scp entry when those exist. Every other known file, ``utt_extra`` and
    ``spk_extra`` are filtered to them. Unlike Kaldi, nothing is written when it fails (no
    utterance left, unsorted utt2spk, ...), and ``.backup/`` gets the files as they were before
    this run, never an empty file over a non-empty backup.
    """
    path = Path(path)
    original = read_dir(path, utt_extra + spk_extra)
    fixer = _Fixer(dict(original), utt_extra, spk_extra)
    for name, lines in original.items():
        if name not in ("trials", "enrolls"):  # voxanon's lists keep their order
            fixer.f[name] = sort_unique(lines)
            if fixer.f[name] != lines:
                fixer.log.append(f"file {name} is not in sorted order or not unique, sorting it")
    fixer.recordings()
    fixer.speakers()
    fixer.utterances()
    fixer.speakers()
    fixer.recordings()
    fixer.f["spk2utt"] = spk2utt_lines(fixer.f["utt2spk"])
    fixed = fixer.f
    for name in fixed:
        if original.get(name) and not fixed[name]:
            fixer.log.append(f"warning: {name} is now empty (none of its ids are left)")
    backup = path / ".backup"
    backup.mkdir(exist_ok=True)
    for name, lines in original.items():
        if lines or not (backup / name).is_file() or (backup / name).stat().st_size == 0:
            write_file(backup / name, lines)
    for name, lines in fixed.items():
        if lines != original.get(name):
            write_file(path / name, lines)
    fixer.log.append(f"old files are kept in {path}/.backup")
    return fixer.log


# --- split_data.sh ----------------------------------------------------------------------------------

def split_speakers(counts: list[int], n: int) -> list[list[int]]:
    """split_scp.pl --utt2spk: speakers (by utterance count, in order) to ``n`` contiguous parts:
    about as many speakers each, then a boundary speaker moves to the neighbour part while that
    makes the two parts' utterance counts closer."""
    if len(counts) < n:
        raise DataDirError(f"refusing to split data because number of speakers {len(counts)} is less than "
                           f"the number of splits {n}")
    parts = [[] for _ in range(n)]
    for i in range(len(counts)):
        parts[i * n // len(counts)].append(i)
    size = [sum(counts[s] for s in p) for p in parts]
    changed = True
    while changed:
        changed = False
        for j in range(n):
            if j < n - 1 and parts[j]:
                c = counts[parts[j][-1]]
                if abs((size[j + 1] + c) - (size[j] - c)) < abs(size[j + 1] - size[j]):
                    parts[j + 1].insert(0, parts[j].pop())
                    size[j], size[j + 1], changed = size[j] - c, size[j + 1] + c, True
            if j > 0 and parts[j]:
                c = counts[parts[j][0]]
                if abs((size[j] - c) - (size[j - 1] + c)) < abs(size[j] - size[j - 1]):
                    parts[j - 1].append(parts[j].pop(0))
                    size[j], size[j - 1], changed = size[j] - c, size[j - 1] + c, True
    if not all(parts):
        raise DataDirError(f"splitting {len(counts)} speakers into {n} would leave a part empty")
    return parts


def split_utt2spk(utt2spk: Lines, n: int, per_utt: bool) -> list[Lines]:
    if per_utt:
        each, rest = divmod(len(utt2spk), n)
        if each == 0:
            raise DataDirError(f"you are splitting into too many pieces: {n} parts for {len(utt2spk)} utterances")
        bounds = [j * each + min(j, rest) for j in range(n + 1)]
        return [utt2spk[bounds[j]:bounds[j + 1]] for j in range(n)]
    by_spk: dict[bytes, Lines] = {}
    for line in utt2spk:
        by_spk.setdefault(field(line, 2), []).append(line)
    groups = list(by_spk.values())
    return [[line for s in part for line in groups[s]] for part in split_speakers([len(g) for g in groups], n)]


def split_dir_name(path: Path, n: int, per_utt: bool) -> Path:
    return path / f"split{n}{'utt' if per_utt else ''}"


def split_is_current(path: Path, n: int, per_utt: bool) -> bool:
    """Kaldi's rule: part 1 exists and holds every file of the dir, none older than its source."""
    first = split_dir_name(path, n, per_utt) / "1"
    return first.is_dir() and all(
        (first / name).is_file() and (first / name).stat().st_mtime >= (path / name).stat().st_mtime
        for name in ALL_FILES if name not in ("enrolls", "trials") and (path / name).is_file())


def split_data_dir(path: str | Path, n: int, per_utt: bool = False) -> Path:
    """Kaldi's split_data.sh into ``<data>/split<n>[utt]/{1..n}``; the split dir.

    Per speaker (each speaker in one part) unless ``per_utt``. The new split is built beside the
    old one and swapped in, so a reader never sees half of one.
    """
    path = Path(path)
    files = read_dir(path)
    parts = split_utt2spk(files["utt2spk"], n, per_utt)
    out = split_dir_name(path, n, per_utt)
    tmp, old = path / f".{out.name}.tmp{os.getpid()}", path / f".{out.name}.old{os.getpid()}"
    for i, u2s in enumerate(parts, 1):  # tmp/i relocates wav paths as out/i would: same depth
        write_dir(filter_dir(files, u2s, spk2utt_lines(u2s)), tmp / str(i), path)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


# --- subset_data_dir.sh -----------------------------------------------------------------------------

def perl_rand(seed: int = 0):
    """Perl's rand() after srand(seed): its drand48, so shuffles match Kaldi's shuffle_list.pl."""
    x = (seed << 16) + 0x330E
    while True:
        x = (0x5DEECE66D * x + 0xB) & (2 ** 48 - 1)
        yield x / 2 ** 48


def evenly_spaced(lines: Lines, n: int) -> Lines:
    """subset_scp.pl's default choice: halve the range and the count, recursively."""
    if len(lines) == 1:
        return lines if n > 0 else []
    half = len(lines) // 2
    return evenly_spaced(lines[:half], n // 2) + evenly_spaced(lines[half:], n - n // 2)


def choose_utt2spk(files: dict[str, Lines], how: str, arg, path: Path) -> tuple[Lines, Lines]:
    """The subset's utt2spk and spk2utt lines, as Kaldi's subset_data_dir.sh chooses them."""
    u2s, s2u = files["utt2spk"], files.get("spk2utt") or spk2utt_lines(files["utt2spk"])
    if how == "spk-list":
        s2u = filter_lines(s2u, keys(read_lines(Path(arg))))
        return utt2spk_lines(s2u), s2u
    if how == "utt-list":
        u2s = filter_lines(u2s, keys(read_lines(Path(arg))))
        return u2s, spk2utt_lines(u2s)
    n = arg
    if n > len(u2s):
        raise DataDirError("cannot subset to more utterances than you originally had.")
    if how == "speakers":
        rand = perl_rand(0)
        shuffled = sorted(((f"{next(rand):.15g}", line) for line in s2u), key=lambda t: t[0])
        chosen, total = [], 0
        for _, line in shuffled:
            if total < n:
                chosen.append(line)
            total += len(line.split()) - 1
        s2u = c_sorted(chosen)
        return utt2spk_lines(s2u), s2u
    if how == "per-spk":
        s2u = [_per_spk(line, n) for line in s2u]
        return utt2spk_lines(s2u), s2u
    if how == "shortest":
        u2s = filter_lines(u2s, _shortest(files, n, path))
    elif how == "first":
        u2s = u2s[:n]
    elif how == "last":
        u2s = u2s[len(u2s) - n:]
    else:
        u2s = evenly_spaced(u2s, n)
    return u2s, spk2utt_lines(u2s)


def _per_spk(line: bytes, n: int) -> bytes:
    """Up to ``n`` utterances of the speaker, evenly spaced; Kaldi's line has a trailing space."""
    spk, *utts = line.split()
    skip = 1
    while n * (skip + 1) <= len(utts):
        skip += 1
    return b"".join(x + b" " for x in [spk, *utts[:n * skip:skip]]) + b"\n"


def _shortest(files: dict[str, Lines], n: int, path: Path) -> list[bytes]:
    """The ``n`` shortest utterances by utt2num_frames, else by feats.scp lengths (sort -n -k2)."""
    if "feats.scp" not in files:
        raise DataDirError(f"{path}: you selected --shortest but no feats.scp exist.")
    if "utt2num_frames" in files:
        lengths = [(float(ln.split()[1]), ln) for ln in files["utt2num_frames"]]
    else:
        import kaldiio

        lengths = []
        for line in files["feats.scp"]:
            utt, spec = line.split(None, 1)
            frames = len(kaldiio.load_mat(spec.strip().decode()))
            lengths.append((float(frames), utt + b" %d\n" % frames))
    return [ln.split()[0] for _, ln in sorted(lengths, key=lambda t: (t[0], t[1][:-1]))[:n]]


def subset_data_dir(src: str | Path, dst: str | Path, how: str, arg) -> tuple[int, int]:
    """Kaldi's subset_data_dir.sh; ``how`` is random (evenly spaced, Kaldi's default), first,
    last, shortest, per-spk, speakers (``arg`` a count) or spk-list, utt-list (``arg`` a file).
    Returns (utterances before, after)."""
    src, dst = Path(src), Path(dst)
    files = read_dir(src)
    u2s, s2u = choose_utt2spk(files, how, arg, src)
    if dst.resolve() == src.resolve():
        raise DataDirError(f"{dst}: the subset would overwrite its source")
    write_dir(filter_dir(files, u2s, s2u), dst, src)
    for name in COPIED_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    return len(files["utt2spk"]), len(u2s)


# --- combine_data.sh --------------------------------------------------------------------------------

def _segments_of(path: Path, files: dict[str, Lines]) -> Lines:
    """Whole-recording segments for a dir without any (Kaldi: utils/data/get_segments_for_data.sh)."""
    import soundfile as sf

    if "utt2dur" in files:
        return [b"%s %s 0 %s\n" % (u, u, d) for u, d in (ln.split()[:2] for ln in files["utt2dur"])]
    out = []
    for line in relocate_wav(files["wav.scp"], path, Path.cwd()):
        utt, entry = line.split(None, 1)
        info = sf.info(entry.strip().decode())
        out.append(b"%s %s 0 %s\n" % (utt, utt, f"{info.frames / info.samplerate:g}".encode()))
    return out


def combine_data_dirs(dst: str | Path, srcs: list[str | Path], extra: tuple[str, ...] = ()) -> tuple[dict, list[str]]:
    """Kaldi's combine_data.sh before its fix_data_dir.sh: a file present in every input is
    their lines concatenated and sorted (``sort -k1``); utt2uniq and segments are made up where
    missing; a file some inputs lack is left out. Returns the files and Kaldi's messages; the
    caller writes them (:func:`write_combined`)."""
    dst = Path(dst).resolve()
    inputs = [Path(s) for s in srcs]
    for src in inputs:
        if src.resolve() == dst or dst in src.resolve().parents:
            raise DataDirError(f"{dst}: the output would replace its input {src}")
    dirs = [(src, read_dir(src, extra)) for src in inputs]
    frame_shifts = {(s / "frame_shift").read_bytes() for s, f in dirs if "feats.scp" in f and (s / "frame_shift").is_file()}
    if len(frame_shifts) > 1:
        raise DataDirError("different frame_shift in the input directories: cannot combine features")
    out, log = {}, []
    for name in ("utt2uniq", "segments"):
        if any(name in f for _, f in dirs):
            made = {"utt2uniq": lambda s, f: [b"%s %s\n" % (u, u) for u in keys(f["utt2spk"])], "segments": _segments_of}
            out[name] = c_sorted([ln for s, f in dirs for ln in (f[name] if name in f else made[name](s, f))])
            log.append(f"combined {name}")
    names = [n for n in ALL_FILES + extra if n not in ("spk2utt", "utt2uniq", "segments")]
    for name in dict.fromkeys(names):
        having = [(s, f) for s, f in dirs if name in f]
        if len(having) == len(dirs):
            out[name] = c_sorted([ln for s, f in dirs
                                  for ln in (relocate_wav(f[name], s, dst) if name == "wav.scp" else f[name])])
            log.append(f"combined {name}")
        elif having:
            log.append(f"[info]: **not combining {name} as it does not exist everywhere**")
    out["spk2utt"] = spk2utt_lines(out["utt2spk"])
    dups = sorted({u for u, c in _counts(keys(out["utt2spk"])).items() if c > 1})
    if dups:
        log.append(f"warning: utterance id(s) in more than one input, the first line of each kept by "
                   f"fix_data_dir.sh: {_few(dups)}")
    return out, log


def _counts(ids: list[bytes]) -> dict[bytes, int]:
    counts: dict[bytes, int] = {}
    for i in ids:
        counts[i] = counts.get(i, 0) + 1
    return counts


def _few(ids, n: int = 10) -> str:
    ids = [i.decode(errors="replace") if isinstance(i, bytes) else i for i in ids]
    return " ".join(ids[:n]) + (f" ... ({len(ids)} in all)" if len(ids) > n else "")


def write_combined(files: dict[str, Lines], dst: str | Path, srcs: list[str | Path]) -> None:
    """Replace ``dst`` by the combined dir (Kaldi removes it first), built beside it and swapped in."""
    dst = Path(dst)
    tmp, old = dst.parent / f".{dst.name}.tmp{os.getpid()}", dst.parent / f".{dst.name}.old{os.getpid()}"
    write_dir(files, tmp)  # wav.scp lines were relocated per input already
    shift = next((Path(s) / "frame_shift" for s in srcs if (Path(s) / "frame_shift").is_file()
                  and (Path(s) / "feats.scp").is_file()), None)
    if shift:
        shutil.copyfile(shift, tmp / "frame_shift")
    if dst.exists():
        dst.rename(old)
    tmp.rename(dst)
    shutil.rmtree(old, ignore_errors=True)


# --- validate_data_dir.sh ---------------------------------------------------------------------------

def _sorted_unique(name: str, lines: Lines, problems: list[str]) -> None:
    ids = keys(lines)
    bad = [ids[i] for i in range(1, len(ids)) if ids[i] <= ids[i - 1]]
    if bad:
        problems.append(f"{name}: not sorted (C locale) or has duplicates at id(s): {_few(bad)}")


def _same_ids(name: str, ids: list[bytes], ref: list[bytes], what: str, problems: list[str]) -> None:
    if ids != ref:
        missing, extra = sorted(set(ref) - set(ids)), sorted(set(ids) - set(ref))
        detail = "; ".join(x for x in (f"missing {_few(missing)}" if missing else "",
                                       f"not in {what}: {_few(extra)}" if extra else "") if x) or "order differs"
        problems.append(f"{name}: ids differ from {what}: {detail}")


def kaldi_problems(path: str | Path, no_feats: bool = False, no_text: bool = False, no_wav: bool = False,
                   no_spk_sort: bool = False, non_print: bool = False) -> list[str]:
    """Kaldi's validate_data_dir.sh checks (file formats, sorting, matching id lists), every
    problem found rather than the first. Per-id content checks (id safety, voxanon's tables,
    enrolls, trials, audio) are made in one place, :func:`voxanon.data.kaldi.validate_data_dir`."""
    path = Path(path)
    if not path.is_dir():
        return [f"{path}: no such directory"]
    for name in ("spk2utt", "utt2spk"):
        if not (path / name).is_file():
            return [f"no such file {name}"]
        if (path / name).stat().st_size == 0:
            return [f"empty file {name}"]
    problems: list[str] = []
    files = {}
    for name in ALL_FILES:
        if (path / name).is_file():
            if not (path / name).read_bytes().endswith(b"\n"):
                problems.append(f"{name}: the last line has no newline")
            try:
                files[name] = read_lines(path / name)
            except DataDirError as err:
                problems.append(str(err))
    if problems:
        return problems
    u2s, s2u = files["utt2spk"], files["spk2utt"]
    bad = [ln.split()[0] for ln in u2s if len(ln.split()) != 2]
    if bad:
        return [f"utt2spk: wrong format (not '<utt> <spk>') for: {_few(bad)}"]
    _sorted_unique("utt2spk", u2s, problems)
    if not no_spk_sort and c_sorted(u2s, key=lambda ln: (_after_field1(ln), ln[:-1])) != u2s:
        problems.append("utt2spk: not in sorted order when sorted first on speaker-id "
                        "(make speaker-ids prefixes of utt-ids, or --no-spk-sort)")
    _sorted_unique("spk2utt", s2u, problems)
    if [b" ".join(ln.split()) + b"\n" for ln in u2s] != utt2spk_lines(s2u):
        problems.append("spk2utt and utt2spk do not match (regenerate spk2utt with utt2spk_to_spk2utt.pl)")
    utts, spks = keys(u2s), keys(s2u)
    if "text" in files:
        _check_text(files["text"], utts, non_print, problems)
    elif not no_text:
        problems.append("no such file text (if this is by design, specify --no-text)")
    wav = files.get("wav.scp")
    if wav is None and ("segments" in files or not no_wav):
        problems.append("no such file wav.scp" + ("" if "segments" in files else
                                                   " (if this is by design, specify --no-wav)"))
    recos = utts
    if wav is not None:
        _sorted_unique("wav.scp", wav, problems)
        if any(re.match(rb"\S+\s+~", ln) for ln in wav):
            problems.append("wav.scp: do not use tilde (~) in wav.scp")
        if "segments" in files:
            seg = files["segments"]
            _sorted_unique("segments", seg, problems)
            bad = [ln.split()[0] for ln in seg if len(ln.split()) != 4 or not _num(ln.split()[3]) > _num(ln.split()[2])]
            if bad:
                problems.append(f"segments: bad line (not '<utt> <reco> <start> <end>', end > start) for: {_few(bad)}")
            _same_ids("segments", keys(seg), utts, "utt2spk", problems)
            recos = sorted(set(keys(seg, 2)))
            _same_ids("wav.scp", keys(wav), recos, "the recordings of segments", problems)
        else:
            _same_ids("wav.scp", keys(wav), utts, "utt2spk", problems)
    if "feats.scp" not in files and not no_feats:
        problems.append("no such file feats.scp (if this is by design, specify --no-feats)")
    checks = {  # file: (ids it must list, what they are, value check)
        "feats.scp": (utts, "utt2spk", None), "vad.scp": (utts, "utt2spk", None),
        "utt2lang": (utts, "utt2spk", None), "utt2uniq": (utts, "utt2spk", None),
        "utt2dur": (utts, "utt2spk", lambda v: _num(v) > 0),
        "utt2num_frames": (utts, "utt2spk", lambda v: v.isdigit() and int(v) > 0),
        "utt2warp": (utts, "utt2spk", lambda v: 0.5 < _num(v) < 1.5),
        "cmvn.scp": (spks, "spk2utt", None), "spk2gender": (spks, "spk2utt", lambda v: v in (b"m", b"f")),
        "spk2warp": (spks, "spk2utt", lambda v: 0.5 < _num(v) < 1.5),
        "reco2dur": (recos, "the recordings", lambda v: _num(v) > 0),
        "reco2file_and_channel": (recos, "the recordings", None),
    }
    for name, (ref, what, ok) in checks.items():
        if name in files:
            _sorted_unique(name, files[name], problems)
            _same_ids(name, keys(files[name]), ref, what, problems)
            bad = [ln.split()[0] for ln in files[name] if ok and (len(ln.split()) != 2 or not ok(ln.split()[1]))]
            if bad:
                problems.append(f"{name}: bad value for: {_few(bad)}")
    if "reco2file_and_channel" in files:
        bad = [ln.split()[0] for ln in files["reco2file_and_channel"]
               if len(ln.split()) != 3 or ln.split()[2] not in (b"A", b"B", b"1")]
        if bad:
            problems.append(f"reco2file_and_channel: bad line (not '<reco> <file> A|B') for: {_few(bad)}")
    return problems


def _num(v: bytes) -> float:
    try:
        return float(v)
    except ValueError:
        return float("nan")


def _check_text(text: Lines, utts: list[bytes], non_print: bool, problems: list[str]) -> None:
    try:
        decoded = [ln.decode("utf-8") for ln in text]
    except UnicodeDecodeError:
        decoded = None  # Kaldi accepts other encodings as bytes
    if decoded is not None:
        if not non_print:
            bad = [ln.split()[0] for ln in decoded if any(not (c.isprintable() or c.isspace()) for c in ln)]
            if bad:
                problems.append(f"text: non-printable characters (or --non-print) for: {_few(bad)}")
        bad = [ln.split()[0] for ln in decoded if "\r" in ln or re.search(r"[^\S\t\n ]", ln)]
        if bad:
            problems.append(f"text: CR or disallowed Unicode whitespace for: {_few(bad)}")
    _sorted_unique("text", text, problems)
    bad = [ln.split()[0] for ln in text if set(ln.split()[1:]) & {b"<s>", b"</s>", b"#0"}]
    if bad:
        problems.append(f"text: illegal symbol <s>, </s> or #0 for: {_few(bad)}")
    _same_ids("text", keys(text), utts, "utt2spk", problems)
