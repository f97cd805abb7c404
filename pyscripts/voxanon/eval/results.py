"""``results.json`` and the VPC-style text summary (run.sh stage 8).

Stage 7 writes one part per metric (``results/asv.json``, ``wer.json``, ``ser.json``); this module
assembles them into ``results/results.json``::

    {
      "exp": "<exp>", "suffix": "<anonymized-dir suffix>", "created": "<ISO time>",
      "asv": {                                   # or {"skipped": why} / {"error": why}
        "trial_lists": [{"name", "enroll_set", "trial_set"}],
        "trial_sets": {"<trials set>": {"<scenario>": {
            "eer": %, "eer_ci": [low, high] % (95 % bootstrap over speakers, voxanon.eval.confidence) | null,
            "eer_threshold", "min_dcf", "cllr", "min_cllr", "linkability", "n_target", "n_nontarget",
            "warning": "too few trials ..." (absent when there are enough), "scores": "<score file>"}
            # or {"error": why, ...}
        }},
        "average": {"<scenario>": {"eer", "min_dcf", "cllr", "min_cllr", "linkability", "n_lists"}},
        "skipped": {"<scenario>": why},
        "mixture": {                             # admixtures only (voxanon.eval.mixture_attack)
          "classifier": {"held_out_accuracy": share of the attacker's own held-out part outputs,
                         "held_out_utts", "n_utts", "train_vs_draws" | "eval_vs_draws":
                         {"accuracy", "n_utts"} (diagnostic: against the owner's records of the draws)},
          "calibration": {"parts": [[a, b], ...], "semi-informed": [a, b]},   # log-odds = a * cosine + b
          "filtered": {"clusters": {"<i>": {"utts", "eer"}}, "chosen": <i>},
          "strongest": "semi-informed" | "mixture-aware" | "filtered"   # lowest average EER
        },
        "convergence": {"asv_orig" | "asv_anon" | "asv_anon_ft": {   # the attackers stage 6 trained
            "attacker", "valid_eer": [% per epoch], "fell_by": points over the last "epochs",
            "margin", "converged": bool | null}}  # voxanon.eval.convergence
      },
      "wer": {                                   # or {"skipped": why} / {"not_requested": why}
        "asr": {backend, model, ..., "name": who produced the WER}, "sets_used": {asr set: [trial sets]},
        "reference": "text" | "asr_of_original"  # no text: the anonymized audio against the ASR of the original
        "anon" | "original": {
          "sets": {"<asr set>": {"wer": %, "n_utts", "n_words", "substitutions", "deletions",
                                 "insertions", "partial", "failed": [...], "hyp_file"}}  # or {"skipped": why}
          "mean": %}                             # mean over the ASR sets (Table 1: mean of dev, test)
      },
      "ser": {                                   # or {"skipped": why} / {"not_requested": why}
        "ser_model", "name": who produced the UAR,
        "sets": {"<set>": {"model", "folds": {fold: [speakers]},
                           "original" | "anon": {"uar": %, "per_class": {emo: ACC %}, "partial", "failed",
                                                 "rows": [{"speaker", "fold", "uar", "acc", "n_utts"}]}}}
      },
      "models": {"asv_orig", "asv_anon", ["asv_anon_ft",] "wer", "ser"},   # which models made each figure
      "warnings": ["<trials list>: only n target / m non-target trials ...", "<attacker> had not converged ..."],
      "data": {...},                             # the data and its split (voxanon.eval.split)
      "components": {"parts": {...}} | null,     # admixture: owner-only per-part figures (voxanon.eval.components)
      "headline": {"eer_semi_informed": % (the VPC attacker), "eer_semi_informed_finetuned": %,
                   "eer_lazy_informed": %, "eer_ignorant": %, "eer_original": %, "eer_mixture_aware": %,
                   "eer_filtered": %, "strongest_attacker": the attacker on anonymized data with the
                   lowest average EER, "eer_strongest": its EER %,
                   "mixture_classifier_accuracy": %, "wer_anon": %, "wer_original": %, "uar_anon": %,
                   "uar_original": %},            # averages; absent when not computed
      "warnings": ["<attacker>: this attacker had not converged: ..."]
    }

The text files: ``result_for_rank<suffix>`` in the VPC 2024 layout (``result_for_rank``) and
voxanon's extended tables (``extended_text``: every scenario, minDCF, Cllr, linkability).

Scenarios: original, ignorant, lazy-informed, semi-informed (see ``voxanon.eval.scoring``), and for
an admixture mixture-aware and filtered (see ``voxanon.eval.mixture_attack``). All
rates are percentages; min_dcf, cllr, min_cllr are costs, linkability is in [0, 1].
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from voxanon.eval.convergence import warning
from voxanon.eval.split import split_lines

METRICS = ("asv", "wer", "ser")
GENDER_TAGS = ("f", "m", "mixed")
# the attackers on anonymized data, the VPC's first (it wins ties)
ANON_ATTACKERS = ("semi-informed", "semi-informed-finetuned", "mixture-aware", "filtered", "lazy-informed", "ignorant")


def strongest_attacker(eers: dict[str, float | None]) -> str | None:
    """The attacker on anonymized data with the lowest average EER (``eers``: attacker -> EER %)."""
    ran = [a for a in ANON_ATTACKERS if eers.get(a) is not None]
    return min(ran, key=lambda a: eers[a]) if ran else None


def assemble(results_dir: str | Path, exp: str, requested: tuple[str, ...] = METRICS) -> dict:
    """results.json from stage 7's parts; a metric outside ``requested`` (the conf's eval.metrics)
    is marked ``not_requested`` rather than skipped."""
    results_dir = Path(results_dir)
    out: dict = {"exp": exp, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for metric in METRICS:
        part = results_dir / f"{metric}.json"
        if part.is_file():
            data = json.loads(part.read_text())
            out.setdefault("suffix", data.get("suffix"))
            out[metric] = {k: v for k, v in data.items() if k not in ("metric", "suffix", "data_root")}
        elif metric not in requested:
            out[metric] = {"not_requested": f"the conf's eval.metrics has no {metric}"}
        else:
            out[metric] = {"skipped": f"{part} missing (stage 7 did not evaluate {metric})"}
    out["models"] = models_used(out)
    out["headline"] = headline(out)
    out["warnings"] = list_warnings(out) + convergence_warnings(out["asv"].get("convergence"))
    return out


def list_warnings(res: dict) -> list[str]:
    """One line per trial list with too few trials to mean much (``voxanon.eval.confidence``)."""
    out: dict[str, str] = {}
    for name, per in res.get("asv", {}).get("trial_sets", {}).items():
        for m in per.values():
            if m.get("warning"):
                out.setdefault(name, f"{name}: {m['warning']}")
    return list(out.values())


def eer_text(m: dict) -> str:
    """``12.500 % [95 % 4.2-20.8]``: an EER with its bootstrap interval when there is one."""
    ci = m.get("eer_ci")
    return f"{m['eer']:.3f} %" + (f" [95 % {ci[0]:.1f}-{ci[1]:.1f}]" if ci else "")


def convergence_warnings(conv: dict | None) -> list[str]:
    return [w for name, c in (conv or {}).items() if (w := warning(f"{name} ({c['attacker']})", c))]


def privacy_lines(head: dict) -> list[str]:
    """The two privacy figures, labelled: the VPC attacker's and the strongest measured."""
    lines = []
    if "eer_semi_informed" in head:
        lines.append(f"EER, VPC attacker (semi-informed; quote it for a VPC submission): {head['eer_semi_informed']:.2f} %")
    if "strongest_attacker" in head:
        lines.append(f"EER, strongest attacker measured ({head['strongest_attacker']}; quote it when claiming "
                     f"privacy): {head['eer_strongest']:.2f} %")
    return lines


def headline(res: dict) -> dict:
    h = {}
    eers = {sc: avg["eer"] for sc, avg in res.get("asv", {}).get("average", {}).items() if "eer" in avg}
    h.update((f"eer_{sc.replace('-', '_')}", eer) for sc, eer in eers.items())
    best = strongest_attacker(eers)
    if best:
        h["strongest_attacker"], h["eer_strongest"] = best, eers[best]
    acc = res.get("asv", {}).get("mixture", {}).get("classifier", {}).get("held_out_accuracy")
    if acc is not None:
        h["mixture_classifier_accuracy"] = 100 * acc
    for side in ("anon", "original"):
        wer = res.get("wer", {}).get(side, {})
        if "mean" in wer:
            h[f"wer_{side}"] = wer["mean"]
        uars = [s[side]["uar"] for s in res.get("ser", {}).get("sets", {}).values()
                if isinstance(s.get(side), dict) and "uar" in s[side]]
        if uars:
            h[f"uar_{side}"] = float(np.mean(uars))
    return h


def models_used(res: dict) -> dict:
    asv_models = res.get("asv", {}).get("models", {})
    used = {"asv_orig": asv_models.get("orig"), "asv_anon": asv_models.get("anon")}
    if "anon_ft" in asv_models:
        used["asv_anon_ft"] = asv_models["anon_ft"]
    return {**used, "wer": res.get("wer", {}).get("asr", {}).get("name"), "ser": res.get("ser", {}).get("name")}


# -- text tables -------------------------------------------------------------------------------
def _cell(x) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def _table(header: list[str], rows: list[list]) -> str:
    rows = [[_cell(x) for x in r] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = lambda r: "  ".join(str(x).rjust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([fmt(header), *map(fmt, rows)])


def _floats_text(values: list[float]) -> list[str]:
    """Floats of one column as pandas prints them: the fewest decimals that show every value."""
    decimals = max([len(f"{round(v, 6):.6f}".rstrip("0").split(".")[1]) for v in values] + [1])
    return [f"{v:.{decimals}f}" for v in values]


def frame_text(columns: list[str], rows: list[tuple[int, list]], sub: list[str] | None = None) -> str:
    """Rows (index, values) laid out like pandas ``DataFrame.to_string``; ``sub`` is a second
    header line (the VPC's SER table has column levels: ``UAR`` / ``mean``)."""
    if not rows:
        return "Empty DataFrame"
    cols = list(zip(*[v for _, v in rows]))
    text_cols = [_floats_text(list(c)) if all(isinstance(x, float) for x in c) else [str(x) for x in c]
                 for c in cols]
    index = [str(i) for i, _ in rows]
    iw = max(map(len, index))
    widths = [max([len(h)] + [len(x) for x in c] + ([len(sub[j])] if sub else [])) for j, (h, c) in
              enumerate(zip(columns, text_cols))]
    lines = [" " * iw + "".join("  " + h.rjust(w) for h, w in zip(columns, widths))]
    if sub:
        lines.append(" " * iw + "".join("  " + h.rjust(w) for h, w in zip(sub, widths)))
    for r, i in enumerate(index):
        lines.append(i.ljust(iw) + "".join("  " + c[r].rjust(w) for c, w in zip(text_cols, widths)))
    return "\n".join(lines)


def _name_parts(name: str) -> list[str]:
    """dataset, split, _, gender of a set name: ``libri_dev_trials_f`` and ``mini_trials_f`` both
    end in their gender (``mini trials _ f``), a name without one gets ``_``."""
    parts = name.split("_")
    gender = parts[-1] if len(parts) > 2 and parts[-1] in GENDER_TAGS else "_"
    parts = parts[:-1] if gender != "_" else parts
    return (parts + ["_"] * 3)[:3] + [gender]


def vpc_ser_block(res: dict) -> str | None:
    sets = res.get("ser", {}).get("sets", {})
    groups = []  # (dataset, split, side) -> figures, sorted like the VPC's groupby
    for name, s in sets.items():
        for side in ("anon", "original"):
            if isinstance(s.get(side), dict) and "uar" in s[side]:
                groups.append((_name_parts(name)[:2], side, s[side]))
    if not groups:
        return None
    groups.sort(key=lambda g: (g[0], g[1]))
    emos = sorted({e for _, _, r in groups for e in r["per_class"]})
    rows = [(i, [ds, sp, side, round(r["uar"], 3), *[round(r["per_class"].get(e, float("nan")), 3) for e in emos]])
            for i, ((ds, sp), side, r) in enumerate(groups)]
    return frame_text(["dataset", "split", "ser", "UAR", *[f"ACC_{e}" for e in emos]], rows,
                      ["", "", "", "mean", *["mean"] * len(emos)])


# scenario -> (enrollment audio, trial audio, row offset in the VPC's oo, oa, aa numbering)
SCENARIO_AUDIO = {"original": ("original", "original", 0), "ignorant": ("original", "anon", 1),
                  "lazy-informed": ("anon", "anon", 2), "semi-informed": ("anon", "anon", 2),
                  "semi-informed-finetuned": ("anon", "anon", 2), "mixture-aware": ("anon", "anon", 2),
                  "filtered": ("anon", "anon", 2)}


def vpc_asv_block(res: dict, scenario: str) -> str | None:
    """EER rows of ``scenario`` (original = OO with ASV_eval, semi-informed = AA with ASV_eval^anon,
    VPC 2026: lazy-informed = AA with ASV_eval), numbered as the VPC's table of the oo, oa, aa
    scenarios per trials list."""
    enroll, trial, offset = SCENARIO_AUDIO[scenario]
    rows = []
    for k, (name, per) in enumerate(res.get("asv", {}).get("trial_sets", {}).items()):
        m = per.get(scenario, {})
        if "eer" in m:
            parts = _name_parts(name)
            rows.append((3 * k + offset, [parts[0], parts[1], parts[3], enroll, trial, round(m["eer"], 3)]))
    rows.sort(key=lambda r: (r[1][0], r[1][1]))
    return frame_text(["dataset", "split", "gender", "enrollment", "trial", "EER"], rows) if rows else None


def vpc_asr_block(res: dict) -> str | None:
    wer = res.get("wer", {})
    rows = []
    for k, side in enumerate(("original", "anon")):
        for j, (name, s) in enumerate(wer.get(side, {}).get("sets", {}).items()):
            parts = _name_parts(name)
            if "wer" in s and parts[0] != "IEMOCAP":
                rows.append((k * len(wer[side]["sets"]) + j, [parts[0], parts[1], side, round(s["wer"], 3)]))
    rows.sort(key=lambda r: (r[1][0], r[1][1]))
    return frame_text(["dataset", "split", "asr", "WER"], rows) if rows else None


SCENARIO_ORDER = ("original", "ignorant", "lazy-informed", "semi-informed", "semi-informed-finetuned",
                  "mixture-aware", "filtered")


def _percent(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def mixture_summary(mix: dict | None) -> list[str]:
    """The mixture-aware attacker's classifier and the filtering choice, one line each."""
    if not mix:
        return []
    clf = mix.get("classifier", {})
    draws = [f"{k.split('_')[0]} set {_percent(v['accuracy'])} of {v['n_utts']}"
             for k, v in clf.items() if k.endswith("_vs_draws") and "accuracy" in v]
    lines = [f"component classifier accuracy: {_percent(clf.get('held_out_accuracy'))} on the attacker's own "
             f"held-out part outputs ({clf.get('held_out_utts', 0)} utterances)"
             + (f"; against the true draws (diagnostic): {', '.join(draws)}" if draws else "")]
    filt = mix.get("filtered", {})
    if "chosen" in filt:
        eers = ", ".join(f"cluster {i}: {c['utts']} utts, EER {c['eer']:.2f} %" if c.get("eer") is not None
                         else f"cluster {i}: {c.get('utts')} utts, {c.get('skipped', 'no EER')}"
                         for i, c in filt["clusters"].items())
        lines.append(f"training-set filtering: {eers}; reported: cluster {filt['chosen']}")
    if "strongest" in mix:
        lines.append(f"strongest attacker (lowest average EER): {mix['strongest']}")
    return lines


def mixture_lines(mix: dict | None) -> list[str]:
    return ["", "---- mixture-aware attacker ----", *mixture_summary(mix)] if mix else []


def why_missing(part: dict) -> str:
    if "not_requested" in part:
        return f"not computed ({part['not_requested']})"
    return f"skipped: {part.get('skipped', part.get('error'))}"


def convergence_lines(conv: dict | None) -> list[str]:
    """Each trained attacker's validation EER per epoch, and the warnings."""
    if not conv:
        return []
    fmt = lambda e: "-" if e is None else f"{e:.2f}"  # noqa: E731
    return ["", "---- attacker convergence (validation EER % per epoch) ----",
            *[f"{name} ({c['attacker']}): {' '.join(fmt(e) for e in c['valid_eer'])}" for name, c in conv.items()],
            *[f"WARNING: {w}" for w in convergence_warnings(conv)]]


def result_for_rank(res: dict, protocol: str = "vpc2024") -> str:
    """The VPC's ``result_for_rank<suffix>``: its eval_pre summary (SER, ASV_eval, ASR), a blank
    line, its eval_post summary (ASV_eval^anon). ASV_eval is scored original/original in VPC 2024,
    anonymized/anonymized (the lazy-informed scenario, mixed trials) in VPC 2026 Track 1. Blocks
    without figures are left out, as the VPC leaves out metrics it did not run."""
    stamp = time.strftime("%d-%m-%y_%H:%M", time.strptime(res["created"], "%Y-%m-%dT%H:%M:%S"))
    asv_eval = "lazy-informed" if protocol == "vpc2026-track1" else "original"
    pre = [f"---- Time: {stamp} ----"]
    for title, block in (("---- SER results ----", vpc_ser_block(res)),
                         ("---- ASV_eval results ----", vpc_asv_block(res, asv_eval)),
                         ("---- ASR results ----", vpc_asr_block(res))):
        if block is not None:
            pre += ["", title, block]
    post = [f"---- Time: {stamp} ----"]
    block = vpc_asv_block(res, "semi-informed")
    if block is not None:
        post += ["", "---- ASV_eval^anon results ----", block]
    return "\n".join(pre) + "\n\n" + "\n".join(post) + "\n"


def extended_text(res: dict) -> str:
    """voxanon's tables: every attack scenario with minDCF, min-Cllr and linkability, WER per ASR
    set with the ASR's name, UAR per set with per-emotion accuracy and the SER's name."""
    lines = [f"---- Time: {res['created']} ----  experiment {res['exp']}, anonymized suffix {res.get('suffix')}",
             "", "---- evaluation models ----",
             *[f"{k}: {v}" for k, v in res.get("models", models_used(res)).items()], "",
             *([*split_lines(res["data"]), ""] if res.get("data") else []),
             *[f"WARNING {w}" for w in res.get("warnings", [])]]
    asv = res.get("asv", {})
    lines.append("---- ASV (all attack scenarios) ----")
    if "trial_sets" not in asv:
        lines.append(why_missing(asv))
    else:
        rows = []
        for scenario in SCENARIO_ORDER:
            if scenario in asv.get("skipped", {}):
                rows.append(["-", scenario, f"skipped: {asv['skipped'][scenario]}", "", "", ""])
                continue
            for name, per in asv["trial_sets"].items():
                m = per.get(scenario)
                if m is not None:
                    rows.append([name, scenario, *([m["eer"], m["min_dcf"], m["min_cllr"], m["linkability"]]
                                                   if "eer" in m else [m.get("error", "?"), "", "", ""])])
            avg = asv.get("average", {}).get(scenario, {})
            if "eer" in avg:
                rows.append(["AVERAGE", scenario, avg["eer"], avg["min_dcf"], avg["min_cllr"], avg["linkability"]])
        lines.append(_table(["trials", "attacker", "EER", "minDCF", "min-Cllr", "linkability"], rows))
        lines += ["", *privacy_lines(res.get("headline", {}))]
        lines += mixture_lines(asv.get("mixture"))
        lines += convergence_lines(asv.get("convergence"))
    lines.append("")
    wer = res.get("wer", {})
    lines.append(f"---- WER ({wer.get('asr', {}).get('name', '-')}) ----")
    if wer.get("reference") == "asr_of_original":
        lines.append("no reference text: WER of the anonymized audio against the ASR transcript of the original")
    if "anon" not in wer:
        lines.append(why_missing(wer))
    else:
        rows = []
        for side in ("original", "anon"):
            for name, s in wer.get(side, {}).get("sets", {}).items():
                rows.append([name, side, s["wer"] if "wer" in s else f"skipped: {s.get('skipped')}",
                             "partial" if s.get("partial") else ""])
            if "mean" in wer.get(side, {}):
                rows.append(["MEAN", side, wer[side]["mean"], ""])
        lines.append(_table(["set", "audio", "WER", ""], rows))
    lines.append("")
    ser = res.get("ser", {})
    lines.append(f"---- UAR ({ser.get('name', '-')}) ----")
    if "sets" not in ser:
        lines.append(why_missing(ser))
    else:
        emos = sorted({e for s in ser["sets"].values() for side in ("original", "anon")
                       for e in (s.get(side) or {}).get("per_class", {})})
        rows = []
        for name, s in ser["sets"].items():
            for side in ("original", "anon"):
                r = s.get(side) or {}
                if "uar" in r:
                    rows.append([name, side, r["uar"], *[r["per_class"].get(e, "-") for e in emos],
                                 "partial" if r.get("partial") else ""])
                else:
                    rows.append([name, side, f"skipped: {r.get('skipped', s.get('skipped'))}", *[""] * len(emos), ""])
        lines.append(_table(["set", "audio", "UAR", *[f"ACC_{e}" for e in emos], ""], rows))
    return "\n".join(lines) + "\n"
