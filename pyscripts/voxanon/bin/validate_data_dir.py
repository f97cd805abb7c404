"""Kaldi's validate_data_dir.sh (utils/validate_data_dir.sh): same flags and checks, every problem listed.

  validate_data_dir.sh [--no-feats] [--no-text] [--non-print] [--no-wav] [--no-spk-sort]
                       [--no-audio] [--sample-rate 16000] [--allow-pipes] <data>

``--no-audio --sample-rate --allow-pipes`` are voxanon's: it also opens the audio (pipes only with
--allow-pipes) and checks voxanon's files (utt2emo, spk2fold, enrolls, trials). Messages on
stdout as Kaldi's; problems on stderr, status 1.
"""
from __future__ import annotations

import sys
from pathlib import Path

from voxanon.bin import KaldiParser, kaldi_tool
from voxanon.data import dirtools
from voxanon.data.kaldi import validate_data_dir

PROG = "validate_data_dir.sh"


def validate(args) -> int:
    problems = dirtools.kaldi_problems(args.data, args.no_feats, args.no_text, args.no_wav, args.no_spk_sort,
                                       args.non_print)
    warnings: list[str] = []
    if not problems and (Path(args.data) / "wav.scp").is_file():  # ids, voxanon's files, audio
        problems = validate_data_dir(args.data, check_audio=not args.no_audio, allow_pipes=args.allow_pipes,
                                     expect_rate=args.sample_rate or None, warnings=warnings)
    for w in warnings:
        print(f"{PROG}: {args.data}: warning: {w}", file=sys.stderr)
    for p in problems:
        print(f"{PROG}: {args.data}: {p}", file=sys.stderr)
    if problems:
        print(f"{PROG}: {args.data} is NOT valid ({len(problems)} problem(s))", file=sys.stderr)
        return 1
    print(f"{PROG}: Successfully validated data-directory {args.data}" + (" (audio not checked)" if args.no_audio else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = KaldiParser(prog=PROG, description="check a data dir as Kaldi does, and its audio; list every problem")
    for flag, text in (("--no-feats", "feats.scp not required (checked when present)"),
                       ("--no-text", "text not required (checked when present)"),
                       ("--no-wav", "wav.scp not required (checked when present)"),
                       ("--non-print", "allow non-printable characters in text"),
                       ("--no-spk-sort", "utt2spk need not be sorted by speaker too"),
                       ("--no-audio", "do not open the audio files"),
                       ("--allow-pipes", "run wav.scp pipe commands to check their audio")):
        p.add_argument(flag, action="store_true", help=text)
    p.add_argument("--sample-rate", type=int, default=16000, help="required sample rate; 0: any (default 16000)")
    p.add_argument("data")
    args = p.parse_args(argv)
    return kaldi_tool(PROG, lambda: validate(args))


if __name__ == "__main__":
    sys.exit(main())
