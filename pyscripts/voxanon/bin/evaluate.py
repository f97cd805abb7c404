"""Run.sh stage 7: privacy (ASV EER and more) and utility (WER, UAR) of an experiment.

  python -m voxanon.bin.evaluate CONF [--data-root data] [--exp exp/<exp>] [--metrics asv,wer,ser]

What it computes and writes: voxanon.eval.pipeline.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from voxanon.bin import exit_code
from voxanon.eval.pipeline import evaluate
from voxanon.experiment import load_experiment


def quiet_openmp_waits() -> None:
    """Let idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) unless the
    user chose a policy; must run before torch is imported.

    Scoring runs the ECAPA-TDNN on one utterance at a time (as the VPC), i.e. thousands of small
    convolutions, each ending with a barrier across the intra-op threads (run.pl gives stage 7
    every core). With OpenMP's default active waiting, on a machine where other jobs also run, a
    thread that lost its core holds up the others at every barrier: 1.3 utterances/s against 13/s
    with one thread on a loaded 2-core machine (bench/results/eval_speed.md). Passive waiting
    removes the slowdown (12/s with 2 threads); a sleeping thread's wake-up (microseconds) is
    small against the larger ops of the ASR and SER models.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("conf")
    p.add_argument("--data-root", default="data")
    p.add_argument("--exp", help="experiment dir (default exp/<exp>)")
    p.add_argument("--metrics", help="comma-separated subset of the conf's eval.metrics")
    args = p.parse_args(argv)
    quiet_openmp_waits()

    def run() -> int:
        experiment = load_experiment(args.conf)
        exp = Path(args.exp or experiment.exp_dir)
        metrics = args.metrics.split(",") if args.metrics else list(experiment.eval.metrics)
        failed = evaluate(experiment, Path(args.data_root), exp, metrics)
        if failed:
            print(f"evaluate: failed: {' '.join(failed)} (reasons in {exp}/results/<metric>.json and above)",
                  file=sys.stderr)
        return 1 if failed else 0

    return exit_code(run, "voxanon.evaluate", (ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
