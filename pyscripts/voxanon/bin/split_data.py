"""Kaldi's split_data.sh (utils/split_data.sh): <data>/split<N>/{1..N}, each speaker in one part.

  split_data.sh [--per-utt] <data> <N>     (--per-utt: speakers ignored, output in split<N>utt)
"""
from __future__ import annotations

import sys
from pathlib import Path

from voxanon.bin import KaldiParser, kaldi_tool
from voxanon.data import dirtools
from voxanon.data.kaldi import DataDirError

PROG = "split_data.sh"


def split(data: Path, n: int, per_utt: bool) -> int:
    if n <= 0:
        raise DataDirError(f"Invalid num-split argument {n}")
    if dirtools.split_is_current(data, n, per_utt):
        return 0
    nu = len(dirtools.read_lines(data / "utt2spk"))
    for name in ("feats.scp", "text"):
        if (data / name).is_file() and len(dirtools.read_lines(data / name)) != nu:
            print(f"** {PROG}: warning, #lines in (utt2spk,{name}) differ; "
                  f"you can use utils/fix_data_dir.sh {data} to fix this.")
    dirtools.split_data_dir(data, n, per_utt)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = KaldiParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--per-utt", action="store_true", help="ignore speakers; output in <data>/split<N>utt")
    p.add_argument("data", type=Path)
    p.add_argument("n", type=int)
    args = p.parse_args(argv)
    return kaldi_tool(PROG, lambda: split(args.data, args.n, args.per_utt))


if __name__ == "__main__":
    sys.exit(main())
