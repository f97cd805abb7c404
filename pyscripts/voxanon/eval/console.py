"""Stage 8's console output: the VPC layout with every attack scenario that ran (the VPC's file
holds only its two), the small-list warnings, and a short summary: EER per attacker, WER, UAR,
where the report is."""
from __future__ import annotations

from pathlib import Path

from voxanon.eval.results import (SCENARIO_ORDER, eer_text, privacy_lines, vpc_asr_block, vpc_asv_block,
                                  vpc_ser_block, why_missing)

ASV_TITLES = {  # the VPC's own block titles for its two tables, voxanon's for the other attackers
    "original": "---- ASV_eval results ----",
    "ignorant": "---- ignorant attacker: ASV_eval, original enrollment, anonymized trials ----",
    "lazy-informed": "---- lazy-informed attacker: ASV_eval, anonymized enrollment and trials ----",
    "semi-informed": "---- ASV_eval^anon results ----",
    "semi-informed-finetuned": "---- semi-informed attacker fine-tuned from ASV_eval ----",
    "mixture-aware": "---- mixture-aware attacker: an ASV per admixture part ----",
    "filtered": "---- filtered attacker: the ASV of the best training-set cluster ----",
}


def console_summary(res: dict, report: str | Path) -> str:
    """What stage 8 prints: the VPC layout with every attack scenario that ran, the small-list
    warnings, then one line each for the EER per attacker, WER, UAR and where the report is."""
    lines = []
    for title, block in (("---- ASR results ----", vpc_asr_block(res)), ("---- SER results ----", vpc_ser_block(res))):
        if block is not None:
            lines += [title, block, ""]
    for scenario in SCENARIO_ORDER:
        block = vpc_asv_block(res, scenario)
        if block is not None:
            lines += [ASV_TITLES[scenario], block, ""]
    lines += [f"WARNING {w}" for w in res.get("warnings", [])]
    lines.append("---- summary ----")
    lines += privacy_lines(res.get("headline", {}))
    asv = res.get("asv", {})
    for scenario in SCENARIO_ORDER:
        avg = asv.get("average", {}).get(scenario, {})
        if "eer" in avg:
            per = ", ".join(f"{name} {eer_text(p[scenario])}" for name, p in asv["trial_sets"].items()
                            if "eer" in p.get(scenario, {}))
            lines.append(f"EER {scenario}: {avg['eer']:.2f} % ({per})")
    if "trial_sets" not in asv:
        lines.append(f"EER: {why_missing(asv)}")
    lines.append(f"WER: {wer_line(res.get('wer', {}))}")
    lines.append(f"UAR: {uar_line(res)}")
    lines.append(f"report: {report}")
    return "\n".join(lines) + "\n"


def wer_line(wer: dict) -> str:
    if "anon" not in wer:
        return why_missing(wer)
    what = "anonymized audio" + (" against the ASR transcript of the original (no reference text)"
                                 if wer.get("reference") == "asr_of_original" else "")
    text = f"{wer['anon']['mean']:.2f} % on {what}" if "mean" in wer["anon"] else f"{what}: no figure"
    if "mean" in wer.get("original", {}):
        text += f", {wer['original']['mean']:.2f} % on the original"
    return f"{text} ({wer.get('asr', {}).get('name', '-')})"


def uar_line(res: dict) -> str:
    head = res.get("headline", {})
    if "uar_anon" not in head:
        return why_missing(res.get("ser", {}))
    return f"{head['uar_anon']:.2f} % on anonymized audio" + (
        f", {head['uar_original']:.2f} % on the original" if "uar_original" in head else "")
