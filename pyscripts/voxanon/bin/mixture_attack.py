"""Stage 6 of the mixture-aware attacker (voxanon.eval.mixture_attack), for local/train_attacker.sh:

  python -m voxanon.bin.mixture_attack confs CONF --exp DIR           # prints "<i>\\t<part conf>"
  python -m voxanon.bin.mixture_attack classifier CONF --exp DIR --data-root data
                                                                      # prints "<i>\\t<cluster dir>"
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxanon.audio import AudioError
from voxanon.config import ConfigError
from voxanon.eval import mixture_parts
from voxanon.progress import setup_logging


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("confs", "classifier"))
    ap.add_argument("conf")
    ap.add_argument("--exp", required=True)
    ap.add_argument("--data-root", default="data")
    args = ap.parse_args(argv)
    setup_logging()
    try:
        if args.step == "confs":
            for i, path in enumerate(mixture_parts.part_confs(args.conf, Path(args.exp))):
                print(f"{i}\t{path}")
        else:
            for i, path in enumerate(mixture_parts.stage6_classifier(args.conf, Path(args.exp), Path(args.data_root))):
                print(f"{i}\t{path or '-'}")
    except (ConfigError, OSError, ValueError, AudioError) as err:
        print(f"mixture_attack: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
