"""An experiment's headline metrics, read from ``exp/<exp>/results/results.json`` (stage 8).

The studies need, per experiment, the EER of each trials set for one attack scenario, the WER of
each split (dev, test) and the UAR of each emotion set, for the anonymized data or for the
original data (scenario ``"original"``). They come from the parts of results.json that
``voxanon.eval.results`` documents (percentages)::

    asv.trial_sets.<trials set>.<scenario>.eer
    wer.anon|original.splits.dev|test.wer        (per set, wer.<side>.sets.<set>.wer, when no split)
    ser.sets.<set>.anon|original.uar

A metric that was skipped or failed leaves its cells empty.
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


def has_scenario(results: dict, scenario: str) -> bool:
    return any(scenario in per for per in results.get("asv", {}).get("trial_sets", {}).values())


def load_metrics(results: dict, scenario: str = "semi-informed", where: str = "results.json") -> Metrics:
    """The metrics of the anonymized data under ``scenario`` (``"original"``: of the original data)."""
    side = "original" if scenario == "original" else "anon"
    asv = results.get("asv", {})
    if "trial_sets" in asv and not has_scenario(results, scenario):
        why = asv.get("skipped", {}).get(scenario, "not among the scored scenarios")
        raise ResultsError(f"{where}: no EER for scenario {scenario!r} ({why})")
    eer = {name: per[scenario]["eer"] for name, per in asv.get("trial_sets", {}).items()
           if "eer" in per.get(scenario, {})}
    wer_side = results.get("wer", {}).get(side, {})
    splits = {k: v for k, v in wer_side.get("splits", {}).items() if k != "all"}
    wer = {k: v["wer"] for k, v in (splits or wer_side.get("sets", {})).items() if "wer" in v}
    uar = {name: s[side]["uar"] for name, s in results.get("ser", {}).get("sets", {}).items()
           if isinstance(s.get(side), dict) and "uar" in s[side]}
    return Metrics(_floats(eer, f"{where}: asv EER ({scenario})"), _floats(uar, f"{where}: ser UAR ({side})"),
                   _floats(wer, f"{where}: WER ({side})"))


def _floats(values: dict, where: str) -> dict[str, float]:
    out = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultsError(f"{where}, {name}: expected a number, got {value!r}")
        out[name] = float(value)
    return out
