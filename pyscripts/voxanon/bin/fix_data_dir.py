"""Kaldi's fix_data_dir.sh (utils/fix_data_dir.sh): sort and filter a data dir in place, originals in .backup/.

  fix_data_dir.sh [--utt-extra-files "f1 f2"] [--spk-extra-files "f1 f2"] <data>
"""
from __future__ import annotations

import sys

from voxanon.bin import KaldiParser, kaldi_tool
from voxanon.data import dirtools

PROG = "fix_data_dir.sh"


def main(argv: list[str] | None = None) -> int:
    p = KaldiParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--utt-extra-files", type=str.split, default=(), help="more per-utterance files to filter")
    p.add_argument("--spk-extra-files", type=str.split, default=(), help="more per-speaker files to filter")
    p.add_argument("data")
    args = p.parse_args(argv)

    def run() -> int:
        for line in dirtools.fix_data_dir(args.data, tuple(args.utt_extra_files), tuple(args.spk_extra_files)):
            print(f"{PROG}: {line}")
        return 0
    return kaldi_tool(PROG, run)


if __name__ == "__main__":
    sys.exit(main())
