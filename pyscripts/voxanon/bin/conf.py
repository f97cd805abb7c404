"""Experiment confs from the shell (needs only pyyaml: no torch, no audio libraries).

  python -m voxanon.bin.conf check CONF              # validate everything a run needs; exit 1 with the reason
  python -m voxanon.bin.conf show CONF               # the experiment resolved: bases, defaults, derived values
  python -m voxanon.bin.conf schema                  # every section's keys: type, default, meaning (markdown)
  python -m voxanon.bin.conf get CONF KEY [KEY..]    # one value a line (lists space-separated; read with mapfile)

run.sh's bookkeeping (voxanon.stages):
  setup CONF --data-root D [--exp-suffix _T] [--setup SETUP.yaml] [--user-data DIR] [--from-stage N]
        writes exp/<exp>/config.yaml (the resolved experiment every stage reads) and the stage keys;
        prints KEY=VALUE lines: exp_dir, config, seed_given, resume (the first stage from N whose
        outputs are not complete for this config; 9 = none) and what run.sh's stage blocks use:
        systems, uses_targets, target_pool, features_device, anonymized_sets, suffix, anonymizer_device
  begin CONFIG N --data-root D [--force true]   # stage N starts: prints whether it must overwrite
  end CONFIG N --data-root D                    # stage N finished: stamp its outputs, mark it done
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import yaml

from voxanon import stages
from voxanon.config import ConfigError, to_dict
from voxanon.conf_reference import reference
from voxanon.experiment import Experiment, check_runnable, load_experiment, write_resolved


def shell_value(value) -> str:
    value = to_dict(value)
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def get(exp: Experiment, dotted: str):
    """A value by dotted key (``anonymizer.suffix``, ``data.anonymized_sets``, ``exp``)."""
    obj = exp
    for part in dotted.split("."):
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif hasattr(obj, part):
            obj = getattr(obj, part)
        else:
            raise ConfigError(f"no key {dotted!r} (at {part!r})")
    return obj


def setup(args) -> list[str]:
    exp = load_experiment(args.conf, args.exp_suffix, args.setup)
    check_runnable(exp)
    if args.user_data and exp.data.recipe != "mini":
        raise ConfigError(f"--data splits your speech as the mini setup does; {args.conf} uses the "
                          f"{exp.data.recipe} setup: add --setup mini")
    config = Path(exp.exp_dir) / "config.yaml"
    write_resolved(exp, config)
    resume = stages.plan(exp, args.user_data, args.data_root, args.from_stage)
    values = {"exp_dir": exp.exp_dir, "config": config, "seed_given": exp.seed_given, "resume": resume,
              "systems": exp.anonymizer.systems, "uses_targets": exp.uses_targets,
              "target_pool": exp.data.target_pool, "features_device": exp.features.device,
              "anonymized_sets": exp.data.anonymized_sets, "suffix": exp.anonymizer.suffix,
              "anonymizer_device": exp.anonymizer.device}
    return [f"{k}={shell_value(v)}" for k, v in values.items()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("check", "show", "schema", "get", "setup", "begin", "end"))
    p.add_argument("conf", nargs="?")
    p.add_argument("args", nargs="*")
    p.add_argument("--data-root", default="data")
    p.add_argument("--exp-suffix", default="")
    p.add_argument("--setup", default="", help="setup conf whose data/asv/eval/report sections replace the conf's")
    p.add_argument("--user-data", default="")
    p.add_argument("--from-stage", type=int, default=0)
    p.add_argument("--force", default="false", choices=("true", "false"))
    args = p.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `conf show ... | head` closes the pipe early
    if args.command != "schema" and not args.conf:
        p.error(f"{args.command} needs CONF")
    try:
        if args.command == "schema":
            print(reference())
        elif args.command == "setup":
            print("\n".join(setup(args)))
        else:
            exp = load_experiment(args.conf)
            if args.command == "check":
                check_runnable(exp)
            elif args.command == "show":
                sys.stdout.write(yaml.safe_dump(exp.to_dict(), sort_keys=False))
            elif args.command == "get":
                print("\n".join(shell_value(get(exp, key)) for key in args.args or p.error("get needs KEY")))
            elif args.command in ("begin", "end"):
                n = int(args.args[0]) if args.args else p.error(f"{args.command} needs the stage number")
                if args.command == "begin":
                    print(stages.begin(exp, n, args.data_root, args.force == "true"))
                else:
                    stages.end(exp, n, args.data_root)
    except (ConfigError, OSError) as err:
        print(f"conf error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
