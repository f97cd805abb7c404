"""Anonymize a data dir in steps (steps/anonymize.sh runs them; voxanon.anonymize.runner does them).

  python -m voxanon.bin.anonymize check    --conf C IN OUT        # conf and output dir, read-only, before the lock
  python -m voxanon.bin.anonymize prepare  --conf C [--overwrite true] IN OUT   # once, under the lock
  python -m voxanon.bin.anonymize job      --conf C --job J --nj N IN OUT       # one shard
  python -m voxanon.bin.anonymize finalize --conf C IN OUT        # write OUT's Kaldi files

Common options: --record-dir DIR (owner-only, yours, outside OUT; default exp/anon_records/<out
name>-<hash of its full path> under the recipe dir, $VOXANON_EXP instead of exp), --allow-pipes,
--public-seed (check and prepare refuse a conf without anonymizer.seed unless true).
"""
from __future__ import annotations

import argparse
import sys

import logging
from dataclasses import replace

from voxanon.anonymize import runner
from voxanon.anonymize.config import AnonymizerConfig
from voxanon.bin import exit_code
from voxanon.config import ConfigError
from voxanon.experiment import Experiment, load_experiment, resolved_params
from voxanon.registry import ModelError

log = logging.getLogger("voxanon.anonymize")
PUBLIC_SEED = AnonymizerConfig.seed  # in every copy of this code: it protects nothing


def load_conf(path: str, public_seed: bool, warn_public: bool = True) -> tuple[AnonymizerConfig, Experiment]:
    """The experiment's anonymizer section, resolved, and the experiment; without a seed of its
    own it runs only with ``public_seed``. ``warn_public``: log that the seed is the public default
    (steps/anonymize.sh's --check pass does, once per step, not every job)."""
    experiment = load_experiment(path)
    # params with their defaults: the conf and the resolved exp/<exp>/config.yaml stamp alike
    conf = replace(experiment.anonymizer, params=resolved_params(experiment.anonymizer.system,
                                                                 experiment.anonymizer.params))
    if not experiment.seed_given and not public_seed:
        raise ConfigError(f"{path}: no anonymizer.seed: the public default {PUBLIC_SEED} lets anyone recompute every "
                          "random choice; set a private seed, or pass --public-seed true to accept that")
    if conf.seed == PUBLIC_SEED and warn_public:
        log.warning("%s: anonymizer.seed is the public default %d: anyone can recompute the random choices "
                    "(targets, factors); use a private seed for data you publish", path, PUBLIC_SEED)
    return conf, experiment


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--conf", required=True)
    common.add_argument("--record-dir", default="", help="owner-only dir for per-utterance records")
    common.add_argument("--allow-pipes", default="false", choices=("true", "false"))
    common.add_argument("--public-seed", default="false", choices=("true", "false"),
                        help="accept a conf without anonymizer.seed (the public default)")
    common.add_argument("in_dir")
    common.add_argument("out_dir")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    sub.add_parser("check", parents=[common], help="the conf and that OUT may be written; changes nothing")
    prep = sub.add_parser("prepare", parents=[common], help="validate IN, claim OUT")
    prep.add_argument("--overwrite", default="false", choices=("true", "false"), help="redo every utterance")
    one = sub.add_parser("job", parents=[common], help="anonymize one shard")
    one.add_argument("--job", type=int, default=1)
    one.add_argument("--nj", type=int, default=1)
    sub.add_parser("finalize", parents=[common], help="write OUT's Kaldi files")
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    where = (a.in_dir, a.out_dir, a.record_dir)
    pipes = a.allow_pipes == "true"

    def run() -> int:
        # check and prepare apply the seed rule (a job started by hand only warns); the public
        # seed is warned about once per step, in its check
        conf, experiment = load_conf(a.conf, a.public_seed == "true" or a.step in ("job", "finalize"),
                                     warn_public=a.step == "check")
        if a.step == "check":
            return runner.check(*where)
        if a.step == "prepare":
            return runner.prepare(conf, *where, pipes, a.overwrite == "true")
        if a.step == "job":
            return runner.job(conf, experiment.features, *where, a.job, a.nj, pipes)
        return runner.assemble(conf, *where)

    return exit_code(run, "voxanon.anonymize", (ValueError, OSError, ModelError))


if __name__ == "__main__":
    sys.exit(main())
