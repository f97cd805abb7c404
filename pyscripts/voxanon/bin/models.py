"""Model weights of conf/models.yaml: list, check, fetch (run.sh stage 0).

  python -m voxanon.bin.models list [--conf CONF] [--verify]   # every model (or the conf's) + status
  python -m voxanon.bin.models check --conf CONF                # are the conf's models present and intact?
  python -m voxanon.bin.models fetch --conf CONF                # download what is missing (resumable)

Which models a conf needs: every value of the sections its stages use, resolved (defaults and
the system's Params filled in), that is a name in conf/models.yaml (see ``conf_values``).
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

from voxanon.config import ConfigError
from voxanon.experiment import Experiment, load_experiment
from voxanon.registry import (ModelEntry, ModelError, ModelsConfig, check_model, fetch_model,
                              load_registry, missing_lines, models_in_values)


def conf_values(exp: Experiment) -> list[Any]:
    """The experiment's values where a model name can stand: the sections its stages use (WavLM
    features and targets only for kNN-VC / WavLM-conversion systems, the converter's training only
    for WavLM conversion, the ASV only when EER is computed) and the eval models of its metrics."""
    uses = {"data": True, "features": exp.uses_targets, "targets": exp.uses_targets,
            "train": "wavlm_conv" in exp.anonymizer.systems, "anonymizer": True, "asv": "asv" in exp.eval.metrics}
    resolved = exp.to_dict()
    values = [resolved[section] for section, used in uses.items() if used]
    values.append(eval_in_use(resolved["eval"]))
    return values


def eval_in_use(ev: dict) -> dict:
    """The eval section without the models of metrics it does not compute (the offline mini conf
    computes no UAR, so it needs no VPC SER models)."""
    unused = {"asr": "wer", "ser_model": "ser"}
    return {k: v for k, v in ev.items() if unused.get(k, "") in ("", *ev["metrics"])}


def needed(conf: str, registry: dict[str, ModelEntry]) -> tuple[ModelsConfig, list[str], list[str]]:
    exp = load_experiment(conf)
    names, paths = models_in_values(conf_values(exp), registry)
    return exp.models, names, paths


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
