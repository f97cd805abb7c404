"""EER of a score file, by the VPC 2024 algorithm.

  python -m voxanon.bin.compute_eer [--all] SCORES

SCORES has lines ``<enroll-spk> <utt> <score> target|nontarget``. Prints the EER in percent as
the last line; ``--all`` first prints minDCF, Cllr, min-Cllr and linkability. Exit status 1 with
the reason when the EER is undefined (e.g. only target trials) or the file is malformed.
"""
from __future__ import annotations

import argparse
import sys

from voxanon.eval.eer import MetricUndefined, all_metrics, compute_eer, read_scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores")
    p.add_argument("--all", action="store_true", help="also print minDCF, Cllr, min-Cllr, linkability")
    args = p.parse_args(argv)
    try:
        _, tar, non = read_scores(args.scores)
        if args.all:
            m = all_metrics(tar, non)
            print(f"trials: {m.n_target} target, {m.n_nontarget} non-target")
            print(f"minDCF(p=0.01): {m.min_dcf:.4f}  Cllr: {m.cllr:.4f}  min-Cllr: {m.min_cllr:.4f}  "
                  f"linkability: {m.linkability:.4f}")
        eer, _ = compute_eer(tar, non)
    except (OSError, ValueError) as err:  # MetricUndefined is a ValueError
        kind = "EER undefined" if isinstance(err, MetricUndefined) else "error"
        print(f"compute_eer: {args.scores}: {kind}: {err}", file=sys.stderr)
        return 1
    print(f"{100 * eer:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
