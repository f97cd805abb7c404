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
import dataclasses
import inspect
import json
import signal
import sys
import typing
from pathlib import Path

import yaml

from voxanon import stages
from voxanon.config import ConfigError, to_dict
from voxanon.experiment import SECTIONS, Experiment, check_runnable, load_experiment, write_resolved


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


def schema() -> str:
    """Markdown tables of every section's keys, from the dataclasses and their comments."""
    out = []
    for section, cls in SECTIONS.items():
        cls = _resolve(cls)
        comments = _field_comments(cls)
        hints = typing.get_type_hints(cls)
        out += [f"## {section}", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else "(required)")
            tp = hints[f.name]
            kind = (tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")).replace("|", "\\|")
            out.append(f"| {f.name} | {kind} | `{json.dumps(to_dict(default))}` | {comments.get(f.name, '')} |")
        out.append("")
    return "\n".join(out)


def _resolve(cls):
    import voxanon.experiment as experiment

    return getattr(experiment, cls) if isinstance(cls, str) else cls


def _field_comments(cls) -> dict[str, str]:
    """The trailing ``# comment`` of each field's line in the class source."""
    comments = {}
    for line in inspect.getsource(cls).splitlines():
        name, colon, rest = line.strip().partition(":")
        if colon and name.isidentifier() and "  # " in rest:
            comments[name] = rest.split("  # ", 1)[1].strip().replace("|", "\\|")
    return comments


def setup(args) -> list[str]:
    exp = load_experiment(args.conf, args.exp_suffix, args.setup)
    check_runnable(exp)
    if args.user_data and exp.data.recipe != "mini":
        raise ConfigError(f"--data splits your speech as the mini setup does; {args.conf} uses the "
                          f"{exp.data.recipe} setup: add --setup mini")
    config = Path(exp.exp_dir) / "config.yaml"
    write_resolved(exp, config)
    keys = stages.stage_keys(exp, args.user_data)
    done = Path(exp.exp_dir) / ".done"
    done.mkdir(parents=True, exist_ok=True)
    (done / "keys").write_text("\n".join([*keys, stages.data_key(exp, args.user_data)]) + "\n")
    resume = next((n for n in range(args.from_stage, len(keys))
                   if stages.stale_reason(exp, n, keys[n], args.data_root)), len(keys))
    values = {"exp_dir": exp.exp_dir, "config": config, "seed_given": exp.seed_given, "resume": resume,
              "systems": exp.anonymizer.systems, "uses_targets": exp.uses_targets,
              "target_pool": exp.data.target_pool, "features_device": exp.features.device,
              "anonymized_sets": exp.data.anonymized_sets, "suffix": exp.anonymizer.suffix,
              "anonymizer_device": exp.anonymizer.device}
    return [f"{k}={shell_value(v)}" for k, v in values.items()]


def begin(exp: Experiment, n: int, data_root: str, force: bool) -> str:
    """Stage ``n`` starts: 'true' when it must replace earlier outputs (another config made them,
    an overwrite was interrupted, --force), else 'false' (it resumes). Refuses to rebuild a
    data dir another experiment built with other data settings, unless forced."""
    done = Path(exp.exp_dir) / ".done"
    key = (done / "keys").read_text().split()[n]
    marker, pending = done / f"stage{n}", done / f"stage{n}.overwrite"
    overwrite = force or (marker.is_file() and marker.read_text().split("\n", 1)[0] != key) \
        or (pending.is_file() and pending.read_text().strip() == key)
    if n == 1 and not force:
        data_key = (done / "keys").read_text().split()[-1]
        for out in stages.outputs(exp, 1, data_root):
            stamp = Path(out).parent / stages.DATA_KEY_FILE
            if stamp.is_file() and stamp.read_text().strip() != data_key and not _built_by_us(exp, stamp):
                raise ConfigError(f"{Path(out).parent} was built with other data settings (another experiment's?); "
                                  "re-run with --force true to rebuild it (that experiment's stages then re-run)")
    for m in range(n, len(stages.NAMES)):  # later stages read what this one writes
        (done / f"stage{m}").unlink(missing_ok=True)
    if overwrite:
        pending.write_text(key + "\n")
    return "true" if overwrite else "false"


def _built_by_us(exp: Experiment, stamp: Path) -> bool:
    """Whether this experiment's last stage 1 built the data dir of ``stamp`` (its --data changed
    since): then rebuilding it takes nothing from another experiment."""
    built = Path(exp.exp_dir) / ".done" / "data_keys"
    return built.is_file() and f"{stamp.read_text().strip()} {stamp.parent}" in built.read_text().splitlines()


def end(exp: Experiment, n: int, data_root: str) -> None:
    done = Path(exp.exp_dir) / ".done"
    keys = (done / "keys").read_text().split()
    key = keys[n]
    if n == 1:
        built = []
        for out in stages.outputs(exp, 1, data_root):
            if Path(out).parent.is_dir():
                (Path(out).parent / stages.DATA_KEY_FILE).write_text(keys[-1] + "\n")
                built.append(f"{keys[-1]} {Path(out).parent}")
        (done / "data_keys").write_text("".join(f"{line}\n" for line in built))
    stages.write_marker(exp, n, key, data_root)
    (done / f"stage{n}.overwrite").unlink(missing_ok=True)


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
            print(schema())
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
                    print(begin(exp, n, args.data_root, args.force == "true"))
                else:
                    end(exp, n, args.data_root)
    except (ConfigError, OSError) as err:
        print(f"conf error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
