"""Corpus preparation (run.sh stage 1 and standalone).

  python -m voxanon.bin.prepare vpc2024 CONF OUT_ROOT [--overwrite] [--vpc-data-dir DIR] [--librispeech-root DIR] ...
      every set the conf's data section names (recipe vpc2024), each validated; corpus roots the
      conf leaves empty come from the flags (run.sh passes db.sh's)
  python -m voxanon.bin.prepare librispeech ROOT SUBSET OUT [--max-speakers N] [--max-utts-per-speaker N]
  python -m voxanon.bin.prepare iemocap ROOT OUT_ROOT [--vpc-data-dir DIR]
  python -m voxanon.bin.prepare voxceleb ROOT OUT [--meta vox1_meta.csv] [--max-speakers N] [--max-utts-per-speaker N]
  python -m voxanon.bin.prepare vpc-set NAME VPC_DATA_DIR OUT [--vpc-audio-dir DIR]

Exit status 1 with the reason on a missing corpus or a bad layout; count mismatches against the
published VPC 2024 / LibriSpeech sizes are printed as warnings.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from voxanon.config import ConfigError
from voxanon.corpora import iemocap, librispeech, voxceleb, vpc2024
from voxanon.corpora.common import CorpusError, finish
from voxanon.data.kaldi import DataDirError
from voxanon.experiment import load_experiment
from voxanon.progress import setup_logging

log = logging.getLogger("voxanon.prepare")
ROOTS = ("vpc_data_dir", "vpc_audio_dir", "librispeech_root", "iemocap_root", "voxceleb_root", "voxceleb_meta")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("vpc2024", help="all sets of a conf with data.recipe vpc2024")
    r.add_argument("conf")
    r.add_argument("out_root")
    r.add_argument("--overwrite", action="store_true", help="rebuild dirs that exist and are valid")
    for root in ROOTS:
        r.add_argument(f"--{root.replace('_', '-')}", default="", help="corpus location (db.sh)")
    ls = sub.add_parser("librispeech", help="one LibriSpeech subset")
    ls.add_argument("root")
    ls.add_argument("subset")
    ls.add_argument("out")
    ie = sub.add_parser("iemocap", help="IEMOCAP_dev and IEMOCAP_test")
    ie.add_argument("root")
    ie.add_argument("out_root")
    ie.add_argument("--vpc-data-dir", default="", help="release dir holding IEMOCAP_dev/ IEMOCAP_test/ lists")
    vc = sub.add_parser("voxceleb", help="a target pool from VoxCeleb")
    vc.add_argument("root")
    vc.add_argument("out")
    vc.add_argument("--meta", default="")
    for q in (ls, vc):
        q.add_argument("--max-speakers", type=int, default=0)
        q.add_argument("--max-utts-per-speaker", type=int, default=0)
    vs = sub.add_parser("vpc-set", help="one VPC 2024 evaluation set")
    vs.add_argument("name", choices=vpc2024.EVAL_SETS)
    vs.add_argument("vpc_data_dir")
    vs.add_argument("out")
    vs.add_argument("--vpc-audio-dir", default="")
    args = p.parse_args(argv)
    setup_logging()
    try:
        if args.command == "vpc2024":
            cfg = load_experiment(args.conf).data
            if cfg.recipe != "vpc2024":
                raise ConfigError(f"{args.conf}: data.recipe is {cfg.recipe!r}, not vpc2024")
            vpc2024.build_sets(cfg, args.out_root, args.overwrite, {r: getattr(args, r) for r in ROOTS})
        elif args.command == "librispeech":
            data = librispeech.prepare_librispeech(args.root, args.subset, args.max_speakers, args.max_utts_per_speaker)
            finish(data, Path(args.out))
        elif args.command == "iemocap":
            sets, warnings = iemocap.prepare_iemocap(args.root, args.vpc_data_dir)
            for w in warnings:
                log.warning("%s", w)
            for name, data in sets.items():
                finish(data, Path(args.out_root) / name)
        elif args.command == "voxceleb":
            data = voxceleb.prepare_voxceleb(args.root, args.out, args.meta, args.max_speakers, args.max_utts_per_speaker)
            finish(data, Path(args.out))
        else:
            data, mismatches = vpc2024.prepare_vpc_set(args.name, args.vpc_data_dir, args.vpc_audio_dir)
            for w in mismatches:
                log.warning("%s", w)
            finish(data, Path(args.out))
    except (CorpusError, ConfigError, DataDirError) as err:
        print(f"prepare: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
