"""An experiment's headline metrics, read from ``exp/<exp>/results/results.json`` (stage 7/8).

The studies need, per experiment, the EER of each trials set for one attack scenario, the WER of
each evaluation set and the UAR of each emotion set, for the anonymized data and for the original
(un-anonymized) data. ``load_metrics`` reads them from this schema (values in percent)::

    {"exp": "knnvc",
     "eer": {"<scenario>": {"<trials set>": 7.9, ...}, ...},   # scenarios incl. "original"
     "wer": {"anonymized": {"<set>": 3.2, ...}, "original": {"<set>": 1.8, ...}},
     "uar": {"anonymized": {"<set>": 56.7, ...}, "original": {"<set>": 70.1, ...}}}

A metric family that is missing (e.g. no emotion sets) leaves its columns empty.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Metrics:
    eer: dict[str, float] = field(default_factory=dict)  # trials set -> EER %
    uar: dict[str, float] = field(default_factory=dict)  # emotion set -> UAR %
    wer: dict[str, float] = field(default_factory=dict)  # evaluation set -> WER %

    def average(self, family: str) -> float | None:
        values = list(getattr(self, family).values())
        return sum(values) / len(values) if values else None


class ResultsError(ValueError):
    """A results.json that is missing or lacks what a study needs (names the file)."""


def read_results(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: no results yet (run stages 7-8 of that experiment)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path}: not valid JSON ({err})") from err


def load_metrics(results: dict, scenario: str = "semi-informed", where: str = "results.json") -> Metrics:
    """The metrics of the anonymized data under ``scenario`` (``"original"``: of the original data)."""
    data = "original" if scenario == "original" else "anonymized"
    eer = results.get("eer", {})
    if eer and scenario not in eer:
        raise ResultsError(f"{where}: no EER for scenario {scenario!r}; it has {', '.join(eer)}")
    return Metrics(
        eer=_floats(eer.get(scenario, {}), f"{where}: eer.{scenario}"),
        uar=_floats(results.get("uar", {}).get(data, {}), f"{where}: uar.{data}"),
        wer=_floats(results.get("wer", {}).get(data, {}), f"{where}: wer.{data}"),
    )


def _floats(values: dict, where: str) -> dict[str, float]:
    out = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultsError(f"{where}.{name}: expected a number, got {value!r}")
        out[name] = float(value)
    return out
