"""The ``anonymizer`` section of an experiment conf."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voxanon.anonymize.params import PARAMS, SYSTEMS


@dataclass(frozen=True)
class AnonymizerConfig:
    system: str = "mcadams"  # one of voxanon.anonymize.params.SYSTEMS
    suffix: str = ""  # output dirs are data/<set><suffix>; default "_<exp>" (each experiment its own)
    seed: int = 1986  # public: anyone can recompute the draws; run.sh refuses a conf without a seed
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    params: dict = field(default_factory=dict)  # the system's own Params

    def __post_init__(self):
        if self.system not in SYSTEMS:
            raise ValueError(f"unknown anonymization system {self.system!r}; known: {', '.join(sorted(SYSTEMS))}")

    @property
    def systems(self) -> tuple[str, ...]:
        """The systems that anonymize utterances: an admixture's parts, else the system itself.
        Stages 2-4 follow these (an admixture with kNN-VC gets features and matching sets)."""
        if self.system != "admixture":
            return (self.system,)
        parts = self.params.get("systems")
        return tuple(dict.fromkeys(p["system"] for p in parts if isinstance(p, dict) and "system" in p)) \
            if isinstance(parts, list) else ()


def params_class(system: str) -> type:
    """The system's ``Params``; a system registered in SYSTEMS outside this package (a test's)
    keeps them in its own module."""
    if system in PARAMS:
        return PARAMS[system]
    from voxanon.anonymize.base import system_module

    return system_module(system).Params


def parse_params(system: str, params: dict, where: str = "anonymizer.params") -> Any:
    """``params`` as the system's ``Params``, an admixture's parts' params too, so a typo
    anywhere is named by its dotted key (``anonymizer.params.systems[0].params.kk``)."""
    from voxanon.config import from_dict

    parsed = from_dict(params_class(system), params, where)
    for i, part in enumerate(getattr(parsed, "systems", ())):
        parse_params(part.system, part.params, f"{where}.systems[{i}].params")
    return parsed
