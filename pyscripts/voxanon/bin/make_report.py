"""Run.sh stage 8: results.json, the VPC-style summary, plots and the HTML report.

  python -m voxanon.bin.make_report CONF [--data-root data] [--exp exp/<exp>]

Reads ``<exp>/results/{asv,wer,ser}.json`` from stage 7 and writes ``<exp>/results/results.json``
(schema: ``voxanon.eval.results``), ``<exp>/results/result_for_rank<suffix>`` (the VPC 2024 file's
layout), ``<exp>/results/results_extended.txt`` (every attacker, minDCF, Cllr, linkability) and ``<exp>/report/index.html`` with ``plots/`` and ``audio/``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from voxanon.config import ConfigError
from voxanon.eval.report import write_report
from voxanon.eval.results import assemble, extended_text, privacy_lines, result_for_rank
from voxanon.experiment import load_experiment
from voxanon.fileio import atomic_write_text
from voxanon.progress import setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("conf")
    p.add_argument("--data-root", default="data")
    p.add_argument("--exp", help="experiment dir (default exp/<exp>)")
    args = p.parse_args(argv)
    setup_logging()
    try:
        experiment = load_experiment(args.conf)
        report = experiment.report
    except ConfigError as err:
        print(f"make_report: conf error: {err}", file=sys.stderr)
        return 1
    exp = Path(args.exp or experiment.exp_dir)
    results_dir = exp / "results"
    if not any((results_dir / f"{m}.json").is_file() for m in ("asv", "wer", "ser")):
        print(f"make_report: no results under {results_dir} (run stage 7 first)", file=sys.stderr)
        return 1
    res = assemble(results_dir, experiment.exp)
    atomic_write_text(results_dir / "results.json", json.dumps(res, indent=1, default=str) + "\n")
    protocol = experiment.eval.protocol
    text = result_for_rank(res, protocol)
    rank_file = results_dir / f"result_for_rank{res.get('suffix') or ''}"
    atomic_write_text(rank_file, text)
    if protocol == "vpc2026-track1":  # the 2026 repository's exp/results_summary/track1/
        atomic_write_text(exp / "results_summary" / "track1" / rank_file.name, text)
    atomic_write_text(results_dir / "results_extended.txt", extended_text(res))
    index = write_report(res, exp / "report", args.data_root, report.audio_examples, report.copy_audio, report.title)
    print(text)
    for line in privacy_lines(res["headline"]) + [f"WARNING: {w}" for w in res["warnings"]]:
        print(line)
    print(f"make_report: {results_dir}/results.json, {rank_file}, {results_dir}/results_extended.txt, {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
