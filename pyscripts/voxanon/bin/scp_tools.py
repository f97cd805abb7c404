"""Kaldi's table filters, reading a file or stdin, writing stdout:

  python -m voxanon.bin.scp_tools spk2utt [utt2spk]          utils/utt2spk_to_spk2utt.pl
  python -m voxanon.bin.scp_tools utt2spk [spk2utt]          utils/spk2utt_to_utt2spk.pl
  python -m voxanon.bin.scp_tools filter-scp [--exclude] [-f N] <id-list> [<file>]   utils/filter_scp.pl
"""
from __future__ import annotations

import sys
from pathlib import Path

from voxanon.bin import KaldiParser, kaldi_tool
from voxanon.data import dirtools

PROGS = {"spk2utt": "utt2spk_to_spk2utt.pl", "utt2spk": "spk2utt_to_utt2spk.pl", "filter-scp": "filter_scp.pl"}


def lines_in(path: str | None) -> list[bytes]:
    return dirtools.read_lines(Path(path or "/dev/stdin"))


def run(args) -> int:
    lines = lines_in(args.file)
    if args.tool == "spk2utt":
        out = dirtools.spk2utt_lines(lines)
    elif args.tool == "utt2spk":
        out = dirtools.utt2spk_lines(lines)
    else:
        ids = dirtools.keys(dirtools.read_lines(Path(args.id_list)))
        out = dirtools.filter_lines(lines, ids, args.field, args.exclude)
    sys.stdout.buffer.write(b"".join(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = KaldiParser(description=__doc__, prog="scp_tools")
    sub = p.add_subparsers(dest="tool", required=True, parser_class=KaldiParser)
    for name, other in (("spk2utt", "utt2spk"), ("utt2spk", "spk2utt")):
        s = sub.add_parser(name, prog=PROGS[name], help=f"{other} (file or stdin) to {name} on stdout")
        s.add_argument("file", nargs="?")
    s = sub.add_parser("filter-scp", prog=PROGS["filter-scp"],
                       help="lines whose FIELD-th field (default 1) is in (or with --exclude, not in) the id list")
    s.add_argument("--exclude", action="store_true")
    s.add_argument("-f", "--field", type=int, default=1)
    s.add_argument("id_list")
    s.add_argument("file", nargs="?")
    args = p.parse_args(argv)
    return kaldi_tool(PROGS[args.tool], lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
