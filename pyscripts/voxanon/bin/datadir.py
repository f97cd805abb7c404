"""Kaldi's data-dir tools, by name, flags, outputs and exit codes; each utils/ script is one command:

  validate_data_dir.sh [--no-feats] [--no-text] [--non-print] [--no-wav] [--no-spk-sort]
                       [--no-audio] [--sample-rate 16000] [--allow-pipes] <data>
  fix_data_dir.sh [--utt-extra-files "f1 f2"] [--spk-extra-files "f1 f2"] <data>
  split_data.sh [--per-utt] <data> <N>            -> <data>/split<N>/{1..N} (split<N>utt with --per-utt)
  subset_data_dir.sh [--speakers|--shortest|--first|--last|--per-spk] <data> <N> <out>
  subset_data_dir.sh [--spk-list F | --utt-list F] <data> <out>
  combine_data.sh [--extra-files "f1 f2"] [--skip-fix true|false] <out> <data1> <data2> ...
  utt2spk_to_spk2utt.pl [utt2spk] / spk2utt_to_utt2spk.pl [spk2utt]     (stdin when no file)
  filter_scp.pl [--exclude] [-f N] <id-list> [<file>]                       (stdin when no file)

Kaldi's messages go to stdout; an error is one line on stderr naming the file or ids, exit status 1.
``--no-audio --sample-rate --allow-pipes`` are voxanon's: validate also opens the audio (pipes
only with --allow-pipes) and checks voxanon's files (utt2emo, spk2fold, enrolls, trials).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxanon.data import dirtools
from voxanon.data.kaldi import DataDirError, validate_data_dir


PROGS = {"validate": "validate_data_dir.sh", "fix": "fix_data_dir.sh", "split": "split_data.sh",
         "subset": "subset_data_dir.sh", "combine": "combine_data.sh", "spk2utt": "utt2spk_to_spk2utt.pl",
         "utt2spk": "spk2utt_to_utt2spk.pl", "filter-scp": "filter_scp.pl"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # Kaldi's tools exit 1 on a usage error, not argparse's 2
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(1)


def _bool(value: str) -> bool:
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return value == "true"


def _files(value: str) -> tuple[str, ...]:
    return tuple(value.split())


def validate(args) -> int:
    problems = dirtools.kaldi_problems(args.data, args.no_feats, args.no_text, args.no_wav, args.no_spk_sort,
                                       args.non_print)
    warnings: list[str] = []
    if not problems and (Path(args.data) / "wav.scp").is_file():  # ids, voxanon's files, audio
        problems = validate_data_dir(args.data, check_audio=not args.no_audio, allow_pipes=args.allow_pipes,
                                     expect_rate=args.sample_rate or None, warnings=warnings)
    for w in warnings:
        print(f"validate_data_dir.sh: {args.data}: warning: {w}", file=sys.stderr)
    for p in problems:
        print(f"validate_data_dir.sh: {args.data}: {p}", file=sys.stderr)
    if problems:
        print(f"validate_data_dir.sh: {args.data} is NOT valid ({len(problems)} problem(s))", file=sys.stderr)
        return 1
    print(f"validate_data_dir.sh: Successfully validated data-directory {args.data}"
          + (" (audio not checked)" if args.no_audio else ""))
    return 0


def fix(args) -> int:
    for line in dirtools.fix_data_dir(args.data, args.utt_extra_files, args.spk_extra_files):
        print(f"fix_data_dir.sh: {line}")
    return 0


def split(args) -> int:
    if args.n <= 0:
        raise DataDirError(f"Invalid num-split argument {args.n}")
    data = Path(args.data)
    if dirtools.split_is_current(data, args.n, args.per_utt):
        return 0
    nu = len(dirtools.read_lines(data / "utt2spk"))
    for name in ("feats.scp", "text"):
        if (data / name).is_file() and len(dirtools.read_lines(data / name)) != nu:
            print(f"** split_data.sh: warning, #lines in (utt2spk,{name}) differ; "
                  f"you can use utils/fix_data_dir.sh {data} to fix this.")
    dirtools.split_data_dir(data, args.n, args.per_utt)
    return 0


def subset(args) -> int:
    if args.spk_list or args.utt_list:
        how, arg = ("spk-list", args.spk_list) if args.spk_list else ("utt-list", args.utt_list)
        if len(args.rest) != 2:
            raise DataDirError(f"usage: subset_data_dir.sh --{how} <list> <srcdir> <destdir>")
        src, dst = args.rest
    else:
        how = next((h for h in ("speakers", "shortest", "first", "last", "per_spk") if getattr(args, h)), "random")
        if len(args.rest) != 3 or not args.rest[1].isdigit():
            raise DataDirError("usage: subset_data_dir.sh [--speakers|--shortest|--first|--last|--per-spk] "
                               "<srcdir> <num-utt> <destdir>")
        src, arg, dst = args.rest[0], int(args.rest[1]), args.rest[2]
    before, after = dirtools.subset_data_dir(src, dst, how.replace("_", "-"), arg)
    print(f"subset_data_dir.sh: reducing #utt from {before} to {after}")
    return 0


def combine(args) -> int:
    print("combine_data.sh " + " ".join(sys.argv[1:]))
    files, log = dirtools.combine_data_dirs(args.out, args.inputs, args.extra_files)
    for line in log:
        print(f"combine_data.sh: {line}")
    dirtools.write_combined(files, args.out, args.inputs)
    if not args.skip_fix:
        for line in dirtools.fix_data_dir(args.out, args.extra_files):
            print(f"fix_data_dir.sh: {line}")
    return 0


def _lines_in(path: str | None) -> list[bytes]:
    return dirtools.read_lines(Path(path)) if path else dirtools.read_lines(Path("/dev/stdin"))


def spk2utt(args) -> int:
    sys.stdout.buffer.write(b"".join(dirtools.spk2utt_lines(_lines_in(args.file))))
    return 0


def utt2spk(args) -> int:
    sys.stdout.buffer.write(b"".join(dirtools.utt2spk_lines(_lines_in(args.file))))
    return 0


def filter_scp(args) -> int:
    ids = dirtools.keys(dirtools.read_lines(Path(args.id_list)))
    sys.stdout.buffer.write(b"".join(dirtools.filter_lines(_lines_in(args.file), ids, args.field, args.exclude)))
    return 0


def parser() -> argparse.ArgumentParser:
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="tool", required=True, parser_class=_Parser)

    def add(name, text):
        return sub.add_parser(name, prog=PROGS[name], help=text, description=text)

    s = add("validate", "check a data dir as Kaldi does, and its audio; list every problem")
    for flag, text in (("--no-feats", "feats.scp not required (checked when present)"),
                       ("--no-text", "text not required (checked when present)"),
                       ("--no-wav", "wav.scp not required (checked when present)"),
                       ("--non-print", "allow non-printable characters in text"),
                       ("--no-spk-sort", "utt2spk need not be sorted by speaker too")):
        s.add_argument(flag, action="store_true", help=text)
    s.add_argument("--no-audio", action="store_true", help="do not open the audio files")
    s.add_argument("--sample-rate", type=int, default=16000, help="required sample rate; 0: any (default 16000)")
    s.add_argument("--allow-pipes", action="store_true", help="run wav.scp pipe commands to check their audio")
    s.add_argument("data")
    s.set_defaults(func=validate)

    s = add("fix", "sort and filter a data dir in place, as Kaldi does; originals in .backup/")
    s.add_argument("--utt-extra-files", type=_files, default=(), help="more per-utterance files to filter")
    s.add_argument("--spk-extra-files", type=_files, default=(), help="more per-speaker files to filter")
    s.add_argument("data")
    s.set_defaults(func=fix)

    s = add("split", "split into <data>/split<N>/{1..N}, each speaker in one part")
    s.add_argument("--per-utt", action="store_true", help="ignore speakers; output in <data>/split<N>utt")
    s.add_argument("data")
    s.add_argument("n", type=int)
    s.set_defaults(func=split)

    s = add("subset", "a data dir with some of the utterances (default: <N> evenly spaced)")
    how = s.add_mutually_exclusive_group()
    for flag, text in (("--speakers", "whole random speakers until <N> utterances"),
                       ("--shortest", "the <N> shortest (utt2num_frames or feats.scp)"),
                       ("--first", "the first <N>"), ("--last", "the last <N>"),
                       ("--per-spk", "<N> utterances per speaker, evenly spaced")):
        how.add_argument(flag, action="store_true", help=text)
    how.add_argument("--spk-list", help="file of speaker ids to keep")
    how.add_argument("--utt-list", help="file of utterance ids to keep")
    s.add_argument("rest", nargs="*", metavar="<srcdir> [<num-utt>] <destdir>")
    s.set_defaults(func=subset)

    s = add("combine", "one data dir holding several (then fix_data_dir.sh)")
    s.add_argument("--extra-files", type=_files, default=(), help="more files to combine")
    s.add_argument("--skip-fix", type=_bool, default=False, help="true: do not run fix_data_dir.sh on the result")
    s.add_argument("out")
    s.add_argument("inputs", nargs="+")
    s.set_defaults(func=combine)

    for name, func, other in (("spk2utt", spk2utt, "utt2spk"), ("utt2spk", utt2spk, "spk2utt")):
        s = add(name, f"{other} (file or stdin) to {name} on stdout")
        s.add_argument("file", nargs="?")
        s.set_defaults(func=func)

    s = add("filter-scp", "lines whose FIELD-th field (default 1) is in (or with --exclude, not in) the id list")
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
        print(f"{PROGS[args.tool]}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
