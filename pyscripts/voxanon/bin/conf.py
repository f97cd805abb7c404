"""Conf helpers for shell scripts.

  python -m voxanon.bin.conf check CONF           # validate everything a run needs; exit 1 with the reason
  python -m voxanon.bin.conf show CONF            # the conf fully resolved (bases, parts, defaults)
  python -m voxanon.bin.conf get CONF KEY         # print a value (lists: one item a line)
  python -m voxanon.bin.conf vars CONF NAME=KEY.. # shell assignments NAME='value' (lists: space-separated)
  python -m voxanon.bin.conf driver CONF DATA TAG # run.sh's one read: check; exp<TAG>, seed, stage keys, outputs

A shell script reads all it needs with one ``eval "$(... vars ...)"``: one Python start, not one per key.
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys

import yaml

from voxanon.anonymize.base import system_module
from voxanon.config import ConfigError, fingerprint, from_dict, to_dict
from voxanon.experiment import SECTIONS, check_conf, get_value, load_conf, stage_key, stage_outputs

STAGES = range(9)


def shell_value(value) -> str:
    value = to_dict(value)
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def resolved_params(system: str, params: dict) -> dict:
    """A system's params with its ``Params`` defaults filled in, an admixture's parts' too."""
    out = to_dict(from_dict(system_module(system).Params, params))
    for part in out["systems"] if system == "admixture" else ():
        part["params"] = resolved_params(part["system"], part["params"])
    return out


def resolved(raw: dict) -> dict:
    """Every section with its defaults filled in, in the conf's order; the anonymizer's params too."""
    out = {"exp": raw["exp"]}
    for section in SECTIONS:
        try:
            out[section] = to_dict(get_value(raw, section))
        except ModuleNotFoundError:  # a section this install does not support, and the conf leaves out
            continue
    anon = out["anonymizer"]
    anon["params"] = resolved_params(anon["system"], anon["params"])
    return out


def driver(path: str, data_root: str, tag: str) -> list[str]:
    """Shell assignments for run.sh; ``tag`` ("_<folder>-<hash>" with --data) ends the exp name."""
    raw = check_conf(path)
    exp = raw["exp"] + tag
    user_data = os.environ.get("VOXANON_USER_DATA", "")
    data = get_value(raw, "data")
    lines = [f"exp={shlex.quote(exp)}",
             f"seed_given={'true' if 'seed' in (raw.get('anonymizer') or {}) else 'false'}",
             f"data_key={fingerprint({'data': data, 'user_data': user_data})}"]
    for n in STAGES:
        key = stage_key(raw, n) + (f"-{fingerprint(user_data)[:8]}" if user_data else "")
        outputs = " ".join(shlex.quote(p) for p in stage_outputs(raw, n, data_root, f'exp/{exp}'))
        lines += [f"key_{n}={key}", f"outputs_{n}=({outputs})"]
    sets = [*data.anonymized_sets, *([data.target_pool] if data.target_pool else [])]
    lines.append(f"data_sets=({' '.join(shlex.quote(s) for s in sets)})")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("check", "show", "get", "vars", "driver"))
    p.add_argument("conf")
    p.add_argument("args", nargs="*")
    args = p.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `conf get ... | grep -q` closes the pipe early
    try:
        if args.command == "check":
            check_conf(args.conf)
        elif args.command == "show":
            sys.stdout.write(yaml.safe_dump(resolved(check_conf(args.conf)), sort_keys=False))
        elif args.command == "driver":
            if len(args.args) != 2:
                p.error("driver needs DATA_ROOT TAG")
            print("\n".join(driver(args.conf, *args.args)))
        else:
            raw = load_conf(args.conf)
            if args.command == "get":
                value = to_dict(get_value(raw, args.args[0] if args.args else p.error("get needs KEY")))
                if isinstance(value, list):
                    print("\n".join(str(v) for v in value))
                elif value is not None:
                    print(shell_value(value))
            else:
                for spec in args.args:
                    name, eq, key = spec.partition("=")
                    if not eq or not name.isidentifier():
                        p.error(f"vars: {spec!r} is not NAME=KEY")
                    print(f"{name}={shlex.quote(shell_value(get_value(raw, key)))}")
    except (ConfigError, AttributeError) as err:
        print(f"conf error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
