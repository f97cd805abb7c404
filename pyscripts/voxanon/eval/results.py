"""``results.json`` and the VPC-style text summary (run.sh stage 8).

Stage 7 writes one part per metric (``results/asv.json``, ``wer.json``, ``ser.json``); this module
assembles them into ``results/results.json``::

    {
      "exp": "<exp>", "suffix": "<anonymized-dir suffix>", "created": "<ISO time>",
      "asv": {                                   # or {"skipped": why} / {"error": why}
        "trial_lists": [{"name", "enroll_set", "trial_set"}],
        "trial_sets": {"<trials set>": {"<scenario>": {
            "eer": %, "eer_threshold", "min_dcf", "cllr", "min_cllr", "linkability",
            "n_target", "n_nontarget", "scores": "<score file>"}      # or {"error": why, ...}
        }},
        "average": {"<scenario>": {"eer", "min_dcf", "cllr", "min_cllr", "linkability", "n_lists"}},
        "skipped": {"<scenario>": why}
      },
      "wer": {                                   # or {"skipped": why}
        "asr": {...}, "anon" | "original": {
          "sets": {"<set>": {"wer": %, "n_utts", "n_words", "substitutions", "deletions",
                             "insertions", "failed": [...], "hyp_file"}   # or {"skipped": why}
          "splits": {"dev" | "test" | "all": {"wer", ...}}}
      },
      "ser": {                                   # or {"skipped": why}
        "sets": {"<set>": {"classes", "chance", "n_utts", "folds": {fold: [speakers]},
                           "original" | "anon": {"uar": %, "per_class": {emo: recall %},
                                                 "folds": [{"fold", "uar", "recall", "n_utts"}]}}}
      },
      "headline": {"eer_semi_informed": %, "eer_lazy_informed": %, "eer_ignorant": %,
                   "eer_original": %, "wer_anon": %, "wer_original": %, "uar_anon": %,
                   "uar_original": %}             # averages; absent when not computed
    }

Scenarios: original, ignorant, lazy-informed, semi-informed (see ``voxanon.eval.scoring``). All
rates are percentages; min_dcf, cllr, min_cllr are costs, linkability is in [0, 1].
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

METRICS = ("asv", "wer", "ser")


def assemble(results_dir: str | Path, exp: str) -> dict:
    results_dir = Path(results_dir)
    out: dict = {"exp": exp, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for metric in METRICS:
        part = results_dir / f"{metric}.json"
        if part.is_file():
            data = json.loads(part.read_text())
            out.setdefault("suffix", data.get("suffix"))
            out[metric] = {k: v for k, v in data.items() if k not in ("metric", "suffix", "data_root")}
        else:
            out[metric] = {"skipped": f"{part} missing (stage 7 did not evaluate {metric})"}
    out["headline"] = headline(out)
    return out


def headline(res: dict) -> dict:
    h = {}
    for scenario, avg in res.get("asv", {}).get("average", {}).items():
        if "eer" in avg:
            h[f"eer_{scenario.replace('-', '_')}"] = avg["eer"]
    for side in ("anon", "original"):
        splits = res.get("wer", {}).get(side, {}).get("splits", {})
        if "all" in splits:
            h[f"wer_{side}"] = splits["all"]["wer"]
        uars = [s[side]["uar"] for s in res.get("ser", {}).get("sets", {}).values()
                if isinstance(s.get(side), dict) and "uar" in s[side]]
        if uars:
            h[f"uar_{side}"] = float(np.mean(uars))
    return h


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = lambda r: "  ".join(str(x).rjust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([fmt(header), *map(fmt, rows)])


def _f(x, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) else str(x)


def summary_text(res: dict) -> str:
    """Laid out like VPC 2024's ``result_for_rank``: SER, ASV (ASV_orig), ASR, ASV^anon blocks."""
    lines = [f"---- Time: {res['created']} ----  experiment {res['exp']}, anonymized suffix {res.get('suffix')}", ""]

    ser = res.get("ser", {})
    lines.append("---- SER results ----")
    if "sets" in ser:
        classes = sorted({c for s in ser["sets"].values() for c in s.get("classes", [])})
        rows = []
        for name, s in ser["sets"].items():
            for side in ("anon", "original"):
                r = s.get(side, {})
                if "uar" in r:
                    rows.append([name, side, _f(r["uar"]), *[_f(r["per_class"].get(c, "-")) for c in classes]])
                elif "skipped" in r or "skipped" in s:
                    rows.append([name, side, f"skipped: {r.get('skipped', s.get('skipped'))}"] + [""] * len(classes))
        lines.append(_table(["dataset", "ser", "UAR", *[f"ACC_{c}" for c in classes]], rows))
    else:
        lines.append(f"skipped: {ser.get('skipped', ser.get('error'))}")
    lines.append("")

    asv = res.get("asv", {})

    def asv_block(title: str, scenarios: tuple[str, ...]) -> None:
        lines.append(title)
        if "trial_sets" not in asv:
            lines.append(f"skipped: {asv.get('skipped', asv.get('error'))}")
        else:
            rows = []
            for scenario in scenarios:
                if scenario in asv.get("skipped", {}):
                    rows.append(["-", scenario, "", "", f"skipped: {asv['skipped'][scenario]}", "", "", ""])
                    continue
                enroll = "original" if scenario in ("original", "ignorant") else "anon"
                trial = "original" if scenario == "original" else "anon"
                for name, per in asv["trial_sets"].items():
                    m = per.get(scenario)
                    if m is None:
                        continue
                    if "eer" not in m:
                        rows.append([name, scenario, enroll, trial, m.get("error", "?"), "", "", ""])
                    else:
                        rows.append([name, scenario, enroll, trial, _f(m["eer"]), _f(m["min_dcf"]),
                                     _f(m["min_cllr"]), _f(m["linkability"])])
                avg = asv.get("average", {}).get(scenario, {})
                if "eer" in avg:
                    rows.append(["AVERAGE", scenario, enroll, trial, _f(avg["eer"]), _f(avg["min_dcf"]),
                                 _f(avg["min_cllr"]), _f(avg["linkability"])])
            lines.append(_table(["trials", "attacker", "enrollment", "trial", "EER", "minDCF", "min-Cllr",
                                 "linkability"], rows))
        lines.append("")

    asv_block("---- ASV_eval results ----", ("original", "ignorant", "lazy-informed"))

    wer = res.get("wer", {})
    lines.append("---- ASR results ----")
    if "skipped" in wer or "error" in wer:
        lines.append(f"skipped: {wer.get('skipped', wer.get('error'))}")
    else:
        rows = []
        for side in ("original", "anon"):
            r = wer.get(side, {})
            if "skipped" in r:
                rows.append(["-", "-", side, f"skipped: {r['skipped']}"])
                continue
            for name, s in r.get("sets", {}).items():
                rows.append([name, "set", side, _f(s["wer"]) if "wer" in s else f"skipped: {s.get('skipped')}"])
            for split, s in r.get("splits", {}).items():
                rows.append(["ALL" if split == "all" else split, "split", side, _f(s["wer"])])
        lines.append(_table(["dataset", "level", "asr", "WER"], rows))
    lines.append("")

    asv_block("---- ASV_eval^anon results ----", ("semi-informed",))
    return "\n".join(lines) + "\n"
