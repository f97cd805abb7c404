"""An experiment: one conf (``conf/<name>.yaml``, its bases composed) read once into frozen
dataclasses, with the values that follow from others filled in.

    exp = load_experiment("conf/knnvc.yaml")
    exp.anonymizer.suffix        # "_knnvc": data/<set>_knnvc (derived from exp when the conf leaves it out)
    exp.params                   # the system's Params (KnnvcParams), matching_sets derived
    write_resolved(exp, "exp/knnvc/config.yaml")   # what every stage script of a run reads

Derived defaults (a conf states them only to differ): ``anonymizer.suffix`` = ``_<exp>``; a kNN-VC
part's ``matching_sets`` = ``<targets.dir>/<data.target_pool>``; a WavLM-conversion part's
``checkpoint`` = ``exp/<exp>/converter/final.pt``, its ``wavlm`` and ``layer`` = ``features.*``.
Loading the resolved file again gives the same experiment. Nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from voxanon.anonymize.config import AnonymizerConfig, parse_params
from voxanon.config import ConfigError, from_dict, merge, read_conf, to_dict
from voxanon.data.sets import DataConfig
from voxanon.eval.config import AsvConfig, EvalConfig, ReportConfig
from voxanon.features.config import FeaturesConfig
from voxanon.fileio import atomic_write_bytes
from voxanon.knn.config import TargetsConfig
from voxanon.models.config import TrainConfig
from voxanon.registry import ModelsConfig

# Systems that match against target speakers' WavLM features: stages 2-3 build those (stage 4 too
# for wavlm_conv, whose converter learns the kNN-VC mapping).
TARGET_SYSTEMS = ("knnvc", "wavlm_conv")


@dataclass(frozen=True)
class Experiment:
    exp: str  # the experiment's name: exp/<exp>; default: the conf's file name
    data: DataConfig
    models: ModelsConfig
    features: FeaturesConfig
    targets: TargetsConfig
    train: TrainConfig
    anonymizer: AnonymizerConfig  # params resolved (derived defaults filled in)
    asv: AsvConfig
    eval: EvalConfig
    report: ReportConfig
    seed_given: bool  # False: the conf has no anonymizer.seed (the public default is used)

    @property
    def exp_dir(self) -> str:
        return f"exp/{self.exp}"

    @property
    def params(self) -> Any:
        """The system's ``Params`` (an admixture's parts stay mappings, each checked)."""
        return parse_params(self.anonymizer.system, self.anonymizer.params)

    @property
    def uses_targets(self) -> bool:
        return any(s in TARGET_SYSTEMS for s in self.anonymizer.systems)

    def to_dict(self) -> dict:
        """Every value explicit, the system's Params (an admixture's parts' too) with their defaults."""
        out = {f.name: to_dict(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "seed_given"}
        out["anonymizer"]["params"] = resolved_params(self.anonymizer.system, self.anonymizer.params)
        if not self.seed_given:
            del out["anonymizer"]["seed"]  # stays unset: the public-seed refusal still applies
        return out


SECTIONS = {f.name: f.type for f in dataclasses.fields(Experiment) if f.name not in ("exp", "seed_given")}


# What a setup conf (conf/base/<setup>.yaml) decides when composed with a system conf; its
# models section is merged over the system conf's (local paths of both kinds of model).
SETUP_SECTIONS = ("data", "asv", "eval", "report")


def with_setup(conf: dict, setup: dict) -> dict:
    """``conf`` (a system's) moved onto ``setup``: the setup's data, attacker and evaluation."""
    out = {k: v for k, v in conf.items() if k not in SETUP_SECTIONS}
    out.update({section: setup[section] for section in SETUP_SECTIONS if setup.get(section)})
    if setup.get("models"):
        out["models"] = merge(conf.get("models") or {}, setup["models"])
    return out


def load_experiment(path: str | Path, exp_suffix: str = "", setup: str | Path | None = None) -> Experiment:
    """The conf at ``path`` as an Experiment; ``exp_suffix`` ends its name (run.sh's --data tag).
    ``setup`` (run.sh --setup: conf/base/mini.yaml, conf/base/vpc2024.yaml) replaces the conf's
    data, attacker and evaluation sections with its own, so any system runs on any setup; the
    experiment is then named ``<exp>_<setup>``."""
    raw = read_conf(path)
    if setup:
        chosen = read_conf(setup)
        if not (chosen.get("data") or {}).get("recipe"):
            raise ConfigError(f"{setup}: not a setup conf (a setup names its data.recipe)")
        raw = with_setup(raw, chosen)
    unknown = sorted(set(raw) - set(SECTIONS) - {"exp"})
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown)}; known: exp, {', '.join(SECTIONS)}")
    raw.setdefault("exp", Path(path).stem)
    if not isinstance(raw["exp"], str) or not raw["exp"]:
        raise ConfigError(f"{path}: 'exp' (the experiment name, used for exp/<exp>) must be a non-empty string")
    hints = {f.name: f for f in dataclasses.fields(Experiment)}
    sections = {name: from_dict(_section_class(hints[name]), raw.get(name), name) for name in SECTIONS}
    name = raw["exp"] + (f"_{Path(setup).stem}" if setup else "")
    exp = name + exp_suffix  # data dirs are per --data already: the suffix need not carry its tag
    anon = sections["anonymizer"]
    seed_given = "seed" in (raw.get("anonymizer") or {})
    params = _derive_params(anon.system, anon.params, exp, sections)
    sections["anonymizer"] = dataclasses.replace(anon, suffix=anon.suffix or f"_{name}", params=params)
    experiment = Experiment(exp=exp, seed_given=seed_given, **sections)
    experiment.params  # checks every part's params: a typo fails here, named by its dotted key
    return experiment


def resolved_params(system: str, params: dict) -> dict:
    """``params`` with the system's ``Params`` defaults filled in, an admixture's parts' too."""
    out = to_dict(parse_params(system, params))
    for part in out["systems"] if system == "admixture" else ():
        part["params"] = resolved_params(part["system"], part["params"])
    return out


def check_runnable(exp: Experiment) -> None:
    """What run.sh needs beyond a valid conf: kNN-VC / WavLM-conversion systems match against
    target speakers, whose set stages 2-3 prepare."""
    needs = [s for s in exp.anonymizer.systems if s in TARGET_SYSTEMS]
    if needs and not exp.data.target_pool:
        raise ConfigError(f"{' and '.join(needs)} need target speakers: name their set in data.target_pool "
                          "(stages 2-3 build its features and matching sets)")


def write_resolved(experiment: Experiment, path: str | Path) -> None:
    """The experiment as one plain YAML, every value explicit (ESPnet's exp/<exp>/config.yaml)."""
    text = "# written by run.sh from the experiment's conf: what every stage reads\n" \
        + yaml.safe_dump(experiment.to_dict(), sort_keys=False)
    atomic_write_bytes(path, text.encode())


def write_conf(conf: dict[str, Any], path: Path) -> Path:
    """Write a conf the recipe makes itself (a study's, a mixture attack's part) atomically, and
    check that it reads as an experiment."""
    atomic_write_bytes(path, ("# generated by voxanon; edit the source confs instead\n"
                              + yaml.safe_dump(conf, sort_keys=False)).encode())
    try:
        load_experiment(path)
    except ConfigError as err:
        raise ConfigError(f"generated conf {path} is invalid: {err}") from err
    return path


def _section_class(field: dataclasses.Field) -> type:
    return globals()[field.type] if isinstance(field.type, str) else field.type


def _derive_params(system: str, params: dict, exp: str, s: dict) -> dict:
    """``params`` with the values that follow from the other sections filled in (see module doc)."""
    params = dict(params)
    if system == "knnvc" and not params.get("matching_sets") and s["data"].target_pool:
        params["matching_sets"] = f"{s['targets'].dir}/{s['data'].target_pool}"
    elif system == "wavlm_conv":
        params["checkpoint"] = params.get("checkpoint") or f"exp/{exp}/converter/final.pt"
        params["wavlm"] = params.get("wavlm") or s["features"].checkpoint
        params["layer"] = params["layer"] if params.get("layer") is not None else s["features"].layer
    elif system == "admixture" and isinstance(params.get("systems"), list):
        params["systems"] = [{**part, "params": _derive_params(part["system"], part.get("params") or {}, exp, s)}
                             if isinstance(part, dict) and "system" in part else part for part in params["systems"]]
    return params
