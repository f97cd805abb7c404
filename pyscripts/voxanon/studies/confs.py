"""Experiment confs for a study: a system's conf, optionally moved onto another setup (as
``run.sh --setup`` does: voxanon.experiment.with_setup), and attackers shared between them."""
from __future__ import annotations

from typing import Any

from voxanon.config import ConfigError, read_conf
from voxanon.experiment import with_setup


def derive_conf(system_conf: dict[str, Any], setup_conf: dict[str, Any] | None, exp: str) -> dict[str, Any]:
    """``system_conf`` named ``exp``, on ``setup_conf``'s setup when given."""
    return {**(with_setup(system_conf, setup_conf) if setup_conf is not None else system_conf), "exp": exp}


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


def share_part_asvs(confs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Let every admixture that differs from the first one only in its parts' probabilities (same
    data, attacker settings and parts) use the first one's mixture-aware part ASVs: the parts'
    outputs of the training set are then the same, so stage 6 trains them once."""
    if not confs:
        return confs

    def same_parts(conf):
        anon = conf.get("anonymizer") or {}
        systems = (anon.get("params") or {}).get("systems") or []
        asv = {k: v for k, v in (conf.get("asv") or {}).items() if k not in ("orig_model", "part_models")}
        return (anon.get("system"), [{k: v for k, v in s.items() if k != "p"} for s in systems],
                attacker_data(conf), asv)

    first = confs[0]
    if (first.get("anonymizer") or {}).get("system") != "admixture":
        return confs
    shared = f"exp/{first['exp']}/mixture"
    return [first] + [{**c, "asv": {**(c.get("asv") or {}), "part_models": shared}} if same_parts(c) == same_parts(first)
                      else c for c in confs[1:]]
