"""Conf helpers for shell scripts.

  python -m voxanon.bin.conf check CONF          # validate every section; exit 1 with the reason
  python -m voxanon.bin.conf get CONF KEY         # print a value (lists: one item a line)
  python -m voxanon.bin.conf stage-key CONF N     # done-marker key of stage N
"""
from __future__ import annotations

import argparse
import signal
import sys

from voxanon.config import ConfigError, to_dict
from voxanon.experiment import get_value, load_conf, stage_key


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("check", "get", "stage-key"))
    p.add_argument("conf")
    p.add_argument("arg", nargs="?")
    args = p.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `conf get ... | grep -q` closes the pipe early
    try:
        raw = load_conf(args.conf)
        if args.command == "get":
            value = to_dict(get_value(raw, args.arg))
            if isinstance(value, list):
                print("\n".join(str(v) for v in value))
            elif value is not None:
                print(value if not isinstance(value, bool) else str(value).lower())
        elif args.command == "stage-key":
            print(stage_key(raw, int(args.arg)))
    except (ConfigError, AttributeError) as err:
        print(f"conf error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
