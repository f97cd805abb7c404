"""Kaldi's combine_data.sh (utils/combine_data.sh): one data dir holding several, then fix_data_dir.sh.

  combine_data.sh [--extra-files "f1 f2"] [--skip-fix true|false] <out> <data1> <data2> ...
"""
from __future__ import annotations

import argparse
import sys

from voxanon.bin import KaldiParser, kaldi_tool
from voxanon.data import dirtools

PROG = "combine_data.sh"


def true_false(value: str) -> bool:
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return value == "true"


def combine(args, argv: list[str]) -> int:
    print(f"{PROG} " + " ".join(argv))
    extra = tuple(args.extra_files)
    files, log = dirtools.combine_data_dirs(args.out, args.inputs, extra)
    for line in log:
        print(f"{PROG}: {line}")
    dirtools.write_combined(files, args.out, args.inputs)
    if not args.skip_fix:
        for line in dirtools.fix_data_dir(args.out, extra):
            print(f"fix_data_dir.sh: {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = KaldiParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--extra-files", type=str.split, default=(), help="more files to combine")
    p.add_argument("--skip-fix", type=true_false, default=False, help="true: do not run fix_data_dir.sh on the result")
    p.add_argument("out")
    p.add_argument("inputs", nargs="+")
    args = p.parse_args(argv)
    return kaldi_tool(PROG, lambda: combine(args, argv))


if __name__ == "__main__":
    sys.exit(main())
