"""Kaldi's subset_data_dir.sh (utils/subset_data_dir.sh): a data dir with some of the utterances.

  subset_data_dir.sh [--speakers|--shortest|--first|--last|--per-spk] <data> <N> <out>
  subset_data_dir.sh [--spk-list F | --utt-list F] <data> <out>
(default: <N> evenly spaced utterances)
"""
from __future__ import annotations

import sys

from voxanon.bin import KaldiParser, kaldi_tool
from voxanon.data import dirtools
from voxanon.data.kaldi import DataDirError

PROG = "subset_data_dir.sh"
HOWS = (("speakers", "whole random speakers until <N> utterances"),
        ("shortest", "the <N> shortest (utt2num_frames or feats.scp)"),
        ("first", "the first <N>"), ("last", "the last <N>"),
        ("per-spk", "<N> utterances per speaker, evenly spaced"))


def subset(args) -> int:
    if args.spk_list or args.utt_list:
        how, arg = ("spk-list", args.spk_list) if args.spk_list else ("utt-list", args.utt_list)
        if len(args.rest) != 2:
            raise DataDirError(f"usage: {PROG} --{how} <list> <srcdir> <destdir>")
        src, dst = args.rest
    else:
        how = next((h for h, _ in HOWS if getattr(args, h.replace("-", "_"))), "random")
        if len(args.rest) != 3 or not args.rest[1].isdigit():
            raise DataDirError(f"usage: {PROG} [--speakers|--shortest|--first|--last|--per-spk] "
                               "<srcdir> <num-utt> <destdir>")
        src, arg, dst = args.rest[0], int(args.rest[1]), args.rest[2]
    before, after = dirtools.subset_data_dir(src, dst, how, arg)
    print(f"{PROG}: reducing #utt from {before} to {after}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = KaldiParser(prog=PROG, description=__doc__.splitlines()[0])
    how = p.add_mutually_exclusive_group()
    for flag, text in HOWS:
        how.add_argument(f"--{flag}", action="store_true", help=text)
    how.add_argument("--spk-list", help="file of speaker ids to keep")
    how.add_argument("--utt-list", help="file of utterance ids to keep")
    p.add_argument("rest", nargs="*", metavar="<srcdir> [<num-utt>] <destdir>")
    args = p.parse_args(argv)
    return kaldi_tool(PROG, lambda: subset(args))


if __name__ == "__main__":
    sys.exit(main())
