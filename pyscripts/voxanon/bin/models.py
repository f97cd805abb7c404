"""Model weights of conf/models.yaml: list, check, fetch (run.sh stage 0).

  python -m voxanon.bin.models list [--conf CONF] [--verify]   # every model (or the conf's) + status
  python -m voxanon.bin.models check --conf CONF                # are the conf's models present and intact?
  python -m voxanon.bin.models fetch --conf CONF                # download what is missing (resumable)

Which models a conf needs: every string value of the sections the conf has, with that section's
defaults filled in (and the anonymizer system's own Params defaults), that is a name in
conf/models.yaml. A section the conf leaves out is not scanned (its defaults may name models
the conf's system never uses); name a model in the conf to have stage 0 fetch it.
String values ending in a weights suffix (.pt .onnx .ckpt ...) are local paths: reported if
they do not exist, but not fatal (a later stage may create them, e.g. a trained converter).

Status words: present (sha256 matches, or not pinned: then the computed sha256 is printed so
you can pin it), missing (one line per file: where it belongs and where to get it), mismatch
(the file differs from the pinned sha256), packaged (weights from a pip package).
Exit status: 0 when every needed model is present, 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from voxanon.config import ConfigError, from_dict, to_dict
from voxanon.registry import (ModelEntry, ModelError, ModelsConfig, check_model, fetch_model,
                              load_registry, missing_lines, models_in_values)


def conf_values(raw: dict[str, Any]) -> list[Any]:
    """Every section the conf has, with its defaults filled in (the anonymizer's Params too), and the
    evaluation's sections even where the conf leaves them to their defaults (every conf is evaluated)."""
    from voxanon.experiment import SECTIONS, section_class

    values = []
    # models.paths is checked by resolve
    for section in (s for s in SECTIONS if (s in raw or s in ("asv", "eval")) and s != "models"):
        try:
            cls = section_class(section)
        except ModuleNotFoundError:  # a section this version does not have yet
            values.append(raw.get(section))
            continue
        parsed = from_dict(cls, raw.get(section), section)
        values.append(eval_in_use(to_dict(parsed)) if section == "eval" else to_dict(parsed))
        if section == "anonymizer":
            values.append(_system_params(parsed))
    return values


def eval_in_use(ev: dict) -> dict:
    """The eval section without the models of metrics it does not compute (the offline mini conf
    computes no UAR, so it needs no VPC SER models)."""
    unused = {"asr": "wer", "ser_model": "ser"}
    return {k: v for k, v in ev.items() if unused.get(k, "") in ("", *ev["metrics"])}


def _system_params(anon) -> Any:
    from voxanon.anonymize.base import system_module

    try:
        module = system_module(anon.system)
    except (ImportError, ValueError):  # system not built in this version: its raw params only
        return anon.params
    try:
        return to_dict(from_dict(module.Params, anon.params, "anonymizer.params"))
    except ConfigError:  # stage 0 only looks for model names; the stage using them reports bad params
        return anon.params


def needed(conf: str, registry: dict[str, ModelEntry]) -> tuple[ModelsConfig, list[str], list[str]]:
    from voxanon.experiment import load_conf

    raw = load_conf(conf)
    config = from_dict(ModelsConfig, raw.get("models"), "models")
    names, paths = models_in_values(conf_values(raw), registry)
    return config, names, paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("list", "check", "fetch"))
    p.add_argument("--conf", help="experiment conf; list: only its models; check/fetch: required")
    p.add_argument("--verify", action="store_true", help="list: also verify sha256 (reads every file)")
    args = p.parse_args(argv)
    try:
        registry = load_registry()
        if args.conf:
            config, names, paths = needed(args.conf, registry)
        elif args.command != "list":
            p.error(f"{args.command} needs --conf")
        else:
            config, names, paths = ModelsConfig(), list(registry), []
    except (ConfigError, ModelError) as err:
        print(f"models: {err}", file=sys.stderr)
        return 1

    if args.command == "list":
        print(f"{'model':26} {'status':9} {'size':10} {'licence':40} where")
        for name in names:
            entry = registry[name]
            status = check_model(entry, config, verify=args.verify)
            where = status.path or entry.where_to_get()
            print(f"{name:26} {status.state:9} {entry.size or '-':10} {entry.licence[:40]:40} {where}")
            if status.detail and status.state != "missing":
                print(f"{'':26} {status.detail}")
        return 0

    ok = True
    for path in paths:
        if not Path(path).expanduser().exists():
            print(f"note: conf names local weights {path}, not found (fine if a later stage writes it)")
    if not names:
        print("models: this conf needs no registry model")
    for name in names:
        entry = registry[name]
        if args.command == "fetch" and check_model(entry, config, verify=False).state == "missing":
            try:
                fetch_model(entry, config)
            except ModelError as err:
                print(err)
                ok = False
                continue
        status = check_model(entry, config, verify=True)
        if status.state == "missing":
            overridden = entry.package or name in config.paths  # not a cache file: the resolve message says it
            lines = [status.detail] if overridden else missing_lines(entry, config)
            print("\n".join(lines))
            ok = False
        elif status.state == "mismatch":
            print(f"mismatch: {status.detail}")
            ok = False
        else:
            print(f"{status.state}: {name} -> {status.path}" + (f"  [{status.detail}]" if status.detail else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
