"""The ``anonymizer`` section of an experiment conf."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AnonymizerConfig:
    system: str = "mcadams"  # one of voxanon.anonymize.base.SYSTEMS
    suffix: str = ""  # output dirs are data/<set><suffix>; default "_<system>"
    seed: int = 1986
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    params: dict = field(default_factory=dict)  # the system's own Params

    def __post_init__(self):
        from voxanon.anonymize.base import SYSTEMS

        if self.system not in SYSTEMS:
            raise ValueError(f"unknown anonymization system {self.system!r}; known: {', '.join(sorted(SYSTEMS))}")

    @property
    def out_suffix(self) -> str:
        return self.suffix or f"_{self.system}"
