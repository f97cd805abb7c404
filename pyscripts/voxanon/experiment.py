"""An experiment conf (``conf/<name>.yaml``): which sections exist, who reads them, and which
stages depend on which sections (for run.sh's done-markers).

Each section is a frozen dataclass owned by the module that uses it; this table imports them
lazily so a tool only loads what it needs.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from voxanon.config import ConfigError, fingerprint, from_dict, read_conf

# section -> "module:Class"
SECTIONS = {
    "data": "voxanon.data.sets:DataConfig",
    "models": "voxanon.registry:ModelsConfig",
    "features": "voxanon.features.config:FeaturesConfig",
    "targets": "voxanon.knn.config:TargetsConfig",
    "train": "voxanon.models.config:TrainConfig",
    "anonymizer": "voxanon.anonymize.config:AnonymizerConfig",
    "asv": "voxanon.eval.config:AsvConfig",
    "eval": "voxanon.eval.config:EvalConfig",
    "report": "voxanon.eval.config:ReportConfig",
}

# Systems that match against target speakers' WavLM features: stages 2-3 build those (stage 4 too
# for wavlm_conv, whose converter learns the kNN-VC mapping).
TARGET_SYSTEMS = ("knnvc", "wavlm_conv")

# The sections each stage reads; a stage's done-marker is keyed on its sections and those of
# every earlier stage, so editing a section re-runs the stages from the first one that reads it.
STAGE_SECTIONS = {
    0: ("models",),
    1: ("data",),
    2: ("features",),
    3: ("targets",),
    4: ("train",),
    5: ("anonymizer",),
    6: ("asv",),
    7: ("eval",),
    8: ("report",),
}


def section_class(section: str) -> type:
    module, _, cls = SECTIONS[section].partition(":")
    return getattr(importlib.import_module(module), cls)


def load_conf(path: str | Path) -> dict[str, Any]:
    """The composed conf (voxanon.config.read_conf), checked: known top-level keys, every
    section parses. Light: the anonymizer's params are checked by ``check_conf``."""
    raw = read_conf(path)
    unknown = sorted(set(raw) - set(SECTIONS) - {"exp"})
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown)}; known: exp, {', '.join(SECTIONS)}")
    if not isinstance(raw.get("exp"), str) or not raw["exp"]:
        raise ConfigError(f"{path}: 'exp' (the experiment name, used for exp/<exp>) must be a non-empty string")
    for section in SECTIONS:
        try:
            cls = section_class(section)
        except ModuleNotFoundError:
            if section in raw:
                raise ConfigError(f"{path}: section {section!r} is not supported by this version") from None
            continue
        from_dict(cls, raw.get(section), section)
    return raw


def check_conf(path: str | Path) -> dict[str, Any]:
    """``load_conf`` and everything else a run needs, so a typo fails before stage 0: the
    anonymizer's params (recursively through an admixture's parts) and the target pool that
    kNN-VC / WavLM-conversion parts match against."""
    from voxanon.anonymize.config import parse_params

    raw = load_conf(path)
    anon = get_value(raw, "anonymizer")
    parse_params(anon.system, anon.params)
    needs = [s for s in anon.systems if s in TARGET_SYSTEMS]
    if needs and not get_value(raw, "data.target_pool"):
        raise ConfigError(f"{path}: {' and '.join(needs)} need target speakers: name their set in data.target_pool "
                          "(stages 2-3 build its features and matching sets)")
    return raw


def stage_outputs(raw: dict[str, Any], stage: int, data_root: str, exp_dir: str) -> list[str]:
    """Files a finished stage leaves behind; run.sh re-runs a stage marked done when one is gone."""
    data = get_value(raw, "data")
    anon = get_value(raw, "anonymizer")
    uses_targets = any(s in TARGET_SYSTEMS for s in anon.systems)
    if stage == 1:
        sets = [*data.anonymized_sets, *([data.target_pool] if uses_targets else [])]
        return [f"{data_root}/{s}/wav.scp" for s in sets]
    if stage == 2 and uses_targets:
        sets = get_value(raw, "features.sets") or (data.target_pool,)
        return [f"{get_value(raw, 'features.dir')}/{s}/feats.scp" for s in sets]
    if stage == 3 and uses_targets:
        return [f"{get_value(raw, 'targets.dir')}/{data.target_pool}/.targets.json"]
    if stage == 4 and "wavlm_conv" in anon.systems:
        return [f"{exp_dir}/converter/final.pt"]
    if stage == 5:
        return [f"{data_root}/{s}{anon.out_suffix}/wav.scp" for s in data.anonymized_sets]
    if stage == 8:
        return [f"{exp_dir}/report/index.html"]
    return []


def stage_key(raw: dict[str, Any], stage: int) -> str:
    sections = sorted({s for n in range(stage + 1) for s in STAGE_SECTIONS.get(n, ())})
    return fingerprint({"exp": raw.get("exp"), **{s: raw.get(s) for s in sections}})


def get_value(raw: dict[str, Any], dotted: str) -> Any:
    """A value by dotted key, with the section dataclass's default when the conf leaves it out."""
    section, _, rest = dotted.partition(".")
    if section == "exp":
        return raw["exp"]
    obj: Any = from_dict(section_class(section), raw.get(section), section)
    for part in rest.split(".") if rest else ():
        if isinstance(obj, dict):
            obj = obj.get(part)
        else:
            obj = getattr(obj, part)
    return obj
