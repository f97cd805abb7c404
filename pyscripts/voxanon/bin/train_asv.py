"""Train an ECAPA-TDNN ASV model on a Kaldi data dir (run.sh stage 6; any data dir).

  python -m voxanon.bin.train_asv [--conf CONF] [--set key=value ...] [--allow-pipes true] DATA OUT

Settings come from the conf's ``asv`` section (VPC 2024 recipe by default); ``--set`` overrides a
key for this run (e.g. ``--set epochs=2``). Resumes from OUT/checkpoint.pt; a finished model with
the same settings and data is kept. Several GPUs: launch with
``torchrun --standalone --nproc_per_node N -m voxanon.bin.train_asv ...``.
"""
from __future__ import annotations

import argparse
import sys

import yaml

from voxanon.config import ConfigError, from_dict, read_conf
from voxanon.data.kaldi import DataDirError, load_data_dir
from voxanon.eval.asv_train import train_asv
from voxanon.eval.config import AsvConfig
from voxanon.eval.convergence import warning
from voxanon.progress import setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="Kaldi data dir (wav.scp, utt2spk)")
    p.add_argument("out", help="model dir to write")
    p.add_argument("--conf", help="experiment conf (its 'asv' section)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an asv key")
    p.add_argument("--allow-pipes", default="false", choices=("true", "false"))
    args = p.parse_args(argv)
    setup_logging()
    try:
        section = dict((read_conf(args.conf).get("asv") or {}) if args.conf else {})
        for item in args.set:
            key, eq, value = item.partition("=")
            if not eq:
                raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
            section[key] = yaml.safe_load(value)
        cfg = from_dict(AsvConfig, section, "asv")
        info = train_asv(cfg, load_data_dir(args.data), args.out, args.allow_pipes == "true")
    except (ConfigError, DataDirError, ValueError, RuntimeError) as err:
        print(f"train_asv: {err}", file=sys.stderr)
        return 1
    last = info["history"][-1] if info.get("history") else {}
    print(f"train_asv: {args.out}: {len(info['speakers'])} speakers, {info['train_utts']} training utterances; "
          f"last epoch: {last}")
    if warning(args.out, info.get("convergence") or {}):
        print(f"train_asv: WARNING: {warning(args.out, info['convergence'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
