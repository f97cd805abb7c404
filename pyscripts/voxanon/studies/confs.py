"""Experiment confs for a study: a system's conf, optionally moved onto another setup.

A *setup conf* (e.g. ``conf/mini.yaml``) supplies the sections that describe the data and the
evaluation (``data models asv eval report``); the system's conf supplies the rest (``features
targets train anonymizer``). That is how a study written for the full VPC 2024 run also runs on a
small offline setup.
"""
from __future__ import annotations

from typing import Any

from voxanon.config import ConfigError, read_conf
from voxanon.experiment import load_experiment

SETUP_SECTIONS = ("data", "models", "asv", "eval", "report")


def derive_conf(system_conf: dict[str, Any], setup_conf: dict[str, Any] | None, exp: str) -> dict[str, Any]:
    """``system_conf`` named ``exp``, with the setup sections of ``setup_conf`` when given."""
    conf = {k: v for k, v in system_conf.items() if not (setup_conf is not None and k in SETUP_SECTIONS)}
    if setup_conf is not None:
        conf.update({k: setup_conf[k] for k in SETUP_SECTIONS if k in setup_conf})
    conf["exp"] = exp
    return conf


def attacker_data(conf: dict[str, Any]) -> tuple:
    """What the original-data attacker is trained on: the recipe, its options (the target pool
    aside) and the training set."""
    data = conf.get("data") or {}
    options = {k: v for k, v in (data.get("options") or {}).items() if k != "target_pool"}
    return data.get("recipe"), repr(sorted(options.items())), data.get("asv_train_set")


def share_asv_orig(confs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Let every experiment that has the first one's data and attacker settings use the first
    one's ASV trained on original data (stage 6 trains it once, in exp/<first exp>/asv_orig)
    instead of training its own copy. The egs scripts run the experiments in list order."""
    if not confs:
        return confs
    first = confs[0]
    asv = dict(first.get("asv") or {})
    if asv.get("orig_model"):
        return confs  # already a pretrained model: nothing to share
    shared = f"exp/{first['exp']}/asv_orig"
    out = [first]
    for conf in confs[1:]:
        mine = dict(conf.get("asv") or {})
        if attacker_data(conf) == attacker_data(first) and mine == asv:
            conf = {**conf, "asv": {**mine, "orig_model": shared}}
        out.append(conf)
    return out


def setup_of(path: str | None) -> tuple[dict[str, Any] | None, str]:
    """The setup conf and the tag its experiments get (``_<setup exp>``), or (None, "")."""
    if not path:
        return None, ""
    setup = read_conf(path)
    if not isinstance(setup.get("exp"), str) or not setup["exp"]:
        raise ConfigError(f"{path}: setup conf needs an 'exp' name")
    return setup, f"_{setup['exp']}"
