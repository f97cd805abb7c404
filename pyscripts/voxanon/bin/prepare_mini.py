"""Make the mini recipe's data sets (see ``voxanon.corpora.mini``).

  python -m voxanon.bin.prepare_mini --conf conf/mini.yaml --data-root data [--user-data DIR]
      [--nj 2] [--overwrite false]

Writes ``<data-root>/mini_train``, ``mini_enrolls``, ``mini_trials_f``, ``mini_trials_m`` from the
synthetic corpus, or from ``--user-data`` (a Kaldi dir or a folder of wavs) when given. Reuses
finished work made from the same inputs; ``--overwrite true`` redoes it.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from voxanon.config import ConfigError, from_dict
from voxanon.corpora.common import CorpusError
from voxanon.corpora.mini import SET_NAMES, MiniOptions, prepare
from voxanon.data.kaldi import DataDirError
from voxanon.experiment import load_experiment
from voxanon.progress import setup_logging

log = logging.getLogger("voxanon.mini")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conf", required=True, help="experiment conf; reads data.options and the set names")
    p.add_argument("--data-root", required=True, type=Path, help="where the set dirs go (run.sh: data/, or data/<tag> with --data)")
    p.add_argument("--user-data", type=Path, help="your Kaldi data dir or folder of wavs instead of the synthetic corpus")
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis jobs")
    p.add_argument("--overwrite", choices=("true", "false"), default="false")
    args = p.parse_args(argv)
    setup_logging()
    try:
        data = load_experiment(args.conf).data
        options = from_dict(MiniOptions, data.options, "data.options")
        unknown = [s for s in (*data.eval_sets, data.asv_train_set, *data.emotion_sets) if s and s not in SET_NAMES]
        if unknown:
            raise ConfigError(f"{args.conf}: data names set(s) {', '.join(unknown)}, but recipe mini makes "
                              f"only {', '.join(SET_NAMES)}")
        prepare(args.data_root, options, args.user_data, args.nj, args.overwrite == "true",
                need_train=bool(data.asv_train_set))
    except (ConfigError, CorpusError, DataDirError, FileNotFoundError, RuntimeError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
