"""Build the kNN-VC matching sets of a target pool (run.sh stage 3).

  python -m voxanon.bin.make_targets --conf CONF [--overwrite false] POOL_DATA FEATDIR OUTDIR

POOL_DATA is the target-pool data dir, FEATDIR holds its WavLM features (feats.scp, stage 2, from
silence-trimmed audio), OUTDIR receives the matching sets (see voxanon.knn.matching_set), which
index FEATDIR's features; the conf's ``targets`` section gives the per-speaker limits. An
up-to-date OUTDIR is reused.
"""
from __future__ import annotations

import argparse
import logging
import sys

from voxanon.config import ConfigError
from voxanon.experiment import load_experiment
from voxanon.knn.matching_set import build_matching_sets
from voxanon.progress import setup_logging

log = logging.getLogger("voxanon.make_targets")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conf", required=True)
    p.add_argument("--overwrite", default="false", choices=("true", "false"))
    p.add_argument("pool")
    p.add_argument("feat_dir")
    p.add_argument("out_dir")
    args = p.parse_args(argv)
    setup_logging()
    try:
        cfg = load_experiment(args.conf).targets
        build_matching_sets(args.pool, args.feat_dir, args.out_dir, cfg, args.overwrite == "true")
    except (ConfigError, ValueError, OSError) as err:
        log.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
