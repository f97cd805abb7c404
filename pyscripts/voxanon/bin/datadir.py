"""Kaldi data-dir tools; each utils/ script is one command of this module:

  validate_data_dir.sh [--no-audio] [--sample-rate 16000] [--allow-pipes] <data>
  fix_data_dir.sh <data>
  split_data.sh [--per-spk] <data> <N>                    -> <data>/split<N>/{1..N}
  subset_data_dir.sh (--utt-list F | --spk-list F | --first N | --random N [--seed S]) <data> <out>
  combine_data.sh <out> <data1> <data2> ...
  utt2spk_to_spk2utt.pl [utt2spk]                           (stdin when no file; to stdout)
  filter_scp.pl [--exclude] [-f FIELD] <id-list> [<file>]   (stdin when no file; to stdout)

Problems are reported one per line, naming the file and the ids; the exit status is then 1.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from voxanon.data.dirtools import (combine_data_dirs, fix_data_dir, line_problems, relocate, select_utts, split_data_dir,
                                   write_relocated)
from voxanon.data.kaldi import (DataDirError, load_data_dir, read_list, spk2utt_from_utt2spk, validate_data_dir,
                                write_data_dir)


def validate(args) -> int:
    # Bad lines stop the dir from loading: report all of them first; agreement and audio after.
    problems, warnings = line_problems(args.data), []
    later = " (table agreement and audio are checked once these lines are fixed)" if problems else ""
    if not problems:
        problems = validate_data_dir(args.data, check_audio=not args.no_audio, allow_pipes=args.allow_pipes,
                                     expect_rate=args.sample_rate or None, warnings=warnings)
    for w in warnings:
        print(f"{args.data}: warning: {w}", file=sys.stderr)
    for p in problems:
        print(f"{args.data}: {p}", file=sys.stderr)
    if problems:
        print(f"validate_data_dir.sh: {args.data} is NOT valid: {len(problems)} problem(s){later}; "
              "fix_data_dir.sh repairs bad lines and table mismatches", file=sys.stderr)
        return 1
    data = load_data_dir(args.data)
    extra = [f"{len(data.enrolls)} enrolls"] if data.enrolls is not None else []
    extra += [f"{len(data.trials)} trials"] if data.trials is not None else []
    tables = ", ".join(sorted(data.tables)) or "no optional tables"
    audio = "audio not checked" if args.no_audio else "audio checked"
    print(f"validate_data_dir.sh: {args.data} OK: {len(data.utts)} utterances, {len(data.spk2utt)} speakers, "
          f"{', '.join(extra + [tables, audio])}")
    return 0


def fix(args) -> int:
    dropped = fix_data_dir(args.data)
    print(f"fix_data_dir.sh: {args.data}: {len(dropped)} problem(s) fixed; record in {args.data}/fix_data_dir.log, "
          f"originals in {args.data}/.backup/")
    for d in dropped[:20]:
        print(f"  {d}")
    if len(dropped) > 20:
        print(f"  ... ({len(dropped) - 20} more in the log)")
    return 0


def split(args) -> int:
    data = load_data_dir(args.data)
    parts = split_data_dir(data, args.n, args.per_spk)
    out = Path(args.data) / f"split{args.n}"
    tmp = Path(args.data) / f".split{args.n}.tmp{os.getpid()}"
    # Build next to the old split and swap, so a reader never sees half a split.
    for i, part in enumerate(parts, 1):
        write_data_dir(relocate(part, out / str(i)), tmp / str(i))
    old = Path(args.data) / f".split{args.n}.old{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    sizes = " ".join(str(len(p.utts)) for p in parts)
    print(f"split_data.sh: {args.data} -> {out}/{{1..{args.n}}} ({'per speaker' if args.per_spk else 'per utterance'};"
          f" utterances: {sizes})")
    return 0


def subset(args) -> int:
    data = load_data_dir(args.data)
    utts = select_utts(data, read_list(args.utt_list) if args.utt_list else None,
                       read_list(args.spk_list) if args.spk_list else None, args.first, args.random, args.seed)
    part = data.subset(utts)
    write_relocated(part, args.out)
    print(f"subset_data_dir.sh: {args.out}: {len(part.utts)} of {len(data.utts)} utterances, "
          f"{len(part.spk2utt)} speakers")
    return 0


def combine(args) -> int:
    dirs = [relocate(load_data_dir(d), args.out) for d in args.inputs]
    data, warnings = combine_data_dirs(dirs)
    for w in warnings:
        print(f"combine_data.sh: warning: {w}", file=sys.stderr)
    write_relocated(data, args.out)
    print(f"combine_data.sh: {args.out}: {len(data.utts)} utterances, {len(data.spk2utt)} speakers "
          f"from {len(dirs)} dirs")
    return 0


def spk2utt(args) -> int:
    utt2spk = {}
    for line in (open(args.utt2spk, encoding="utf-8") if args.utt2spk else sys.stdin):
        parts = line.split()
        if len(parts) != 2:
            raise DataDirError(f"utt2spk: expected '<utt> <spk>', got {line.strip()!r}")
        utt2spk[parts[0]] = parts[1]
    for spk, utts in spk2utt_from_utt2spk(utt2spk).items():
        print(spk, " ".join(utts))
    return 0


def filter_scp(args) -> int:
    ids = {line.split()[0] for line in open(args.id_list, encoding="utf-8") if line.strip()}
    for line in (open(args.file, encoding="utf-8") if args.file else sys.stdin):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < args.field:
            raise DataDirError(f"{args.file or 'stdin'}: line has no field {args.field}: {line.strip()!r}")
        if (fields[args.field - 1] in ids) != args.exclude:
            sys.stdout.write(line)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="tool", required=True)

    def add(name, prog, text):
        return sub.add_parser(name, prog=prog, help=text, description=text)

    s = add("validate", "validate_data_dir.sh", "check a data dir; list offending ids and files")
    s.add_argument("--no-audio", action="store_true", help="do not open the audio files")
    s.add_argument("--sample-rate", type=int, default=16000, help="required sample rate; 0: any (default 16000)")
    s.add_argument("--allow-pipes", action="store_true", help="run wav.scp pipe commands to check their audio")
    s.add_argument("data")
    s.set_defaults(func=validate)

    s = add("fix", "fix_data_dir.sh",
            "sort, drop inconsistent entries; record in <data>/fix_data_dir.log, originals in .backup/")
    s.add_argument("data")
    s.set_defaults(func=fix)

    s = add("split", "split_data.sh", "split into <data>/split<N>/{1..N}")
    s.add_argument("--per-spk", action="store_true", help="whole speakers per part (disjoint speakers)")
    s.add_argument("data")
    s.add_argument("n", type=int)
    s.set_defaults(func=split)

    s = add("subset", "subset_data_dir.sh", "a data dir with some of the utterances")
    how = s.add_mutually_exclusive_group(required=True)
    how.add_argument("--utt-list", help="file of utterance ids to keep")
    how.add_argument("--spk-list", help="file of speaker ids to keep (all their utterances)")
    how.add_argument("--first", type=int, help="the first N utterances (sorted ids)")
    how.add_argument("--random", type=int, help="N utterances drawn at random (--seed)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("data")
    s.add_argument("out")
    s.set_defaults(func=subset)

    s = add("combine", "combine_data.sh", "one data dir holding several")
    s.add_argument("out")
    s.add_argument("inputs", nargs="+")
    s.set_defaults(func=combine)

    s = add("spk2utt", "utt2spk_to_spk2utt.pl", "utt2spk (file or stdin) to spk2utt on stdout")
    s.add_argument("utt2spk", nargs="?")
    s.set_defaults(func=spk2utt)

    s = add("filter-scp", "filter_scp.pl",
            "lines whose FIELD-th field (default 1) is in (or with --exclude, not in) the id list")
    s.add_argument("--exclude", action="store_true")
    s.add_argument("-f", "--field", type=int, default=1)
    s.add_argument("id_list")
    s.add_argument("file", nargs="?")
    s.set_defaults(func=filter_scp)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataDirError, OSError) as err:
        print(f"{args.tool}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
