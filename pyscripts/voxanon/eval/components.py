"""Per-component figures of an admixture, for its owner: which part made each anonymized
utterance is only in the owner-only records (``exp/<exp>/anon_records/<set><suffix>``), so these
figures are the owner's, not an attacker's.

For part i: the EER of every attack scenario on the trials whose trial utterance part i made
(enrollment audio as it came, from any part), read back from stage 7's score files, and the WER
of the anonymized audio on part i's utterances, from stage 7's hypotheses and references::

    {"parts": {"<i>": {"system", "n_utts", "eer": {"<scenario>": {"<trial list>": %}}, "wer": %}}}
"""
from __future__ import annotations

import json
from pathlib import Path

from voxanon.data.kaldi import read_table
from voxanon.eval.eer import MetricUndefined, compute_eer, read_scores
from voxanon.eval.wer import corpus_wer, words


def read_draws(record_dir: Path) -> dict[str, tuple[int, str]]:
    """{utt: (component, system)} from an admixture's records; empty for other systems."""
    draws = {}
    for path in sorted(Path(record_dir).glob("records.*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if "component" in row:
                draws[row["utt"]] = (int(row["component"]), str(row.get("system", "?")))
    return draws


def _part_eers(asv: dict, draws: dict, part: int) -> dict:
    out: dict = {}
    for name, per in asv.get("trial_sets", {}).items():
        for scenario, m in per.items():
            if scenario == "original" or "scores" not in m or not Path(m["scores"]).is_file():
                continue
            rows, _, _ = read_scores(m["scores"])
            mine = [r for r in rows if draws.get(r[1], (None,))[0] == part]
            try:
                eer, _ = compute_eer([r[2] for r in mine if r[3]], [r[2] for r in mine if not r[3]])
            except MetricUndefined:
                continue
            out.setdefault(scenario, {})[name] = 100.0 * eer
    return out


def _part_wer(wer: dict, draws: dict, part: int) -> float | None:
    text_norm = "vpc" if wer.get("asr", {}).get("backend") == "speechbrain" else "whisper"
    refs, hyps = [], []
    for s in wer.get("anon", {}).get("sets", {}).values():
        hyp_file = Path(s.get("hyp_file", ""))
        if not (hyp_file.is_file() and (hyp_file.parent / "ref").is_file()):
            continue
        ref, hyp = read_table(hyp_file.parent / "ref"), read_table(hyp_file)
        for u in sorted(ref):
            if u in hyp and draws.get(u, (None,))[0] == part:
                refs.append(words(ref[u], True, text_norm))
                hyps.append(words(hyp[u], False, text_norm))
    return corpus_wer(refs, hyps)["wer"] if refs else None


def component_figures(res: dict, exp: Path) -> dict | None:
    """The per-part figures, or None when the records hold no admixture draws."""
    suffix = res.get("suffix") or ""
    draws: dict = {}
    for tl in res.get("asv", {}).get("trial_lists", []):
        draws.update(read_draws(exp / "anon_records" / f"{tl['trial_set']}{suffix}"))
    if not draws:
        return None
    parts = {}
    for part in sorted({c for c, _ in draws.values()}):
        parts[str(part)] = {"system": next(s for c, s in draws.values() if c == part),
                            "n_utts": sum(c == part for c, _ in draws.values()),
                            "eer": _part_eers(res.get("asv", {}), draws, part),
                            "wer": _part_wer(res.get("wer", {}), draws, part)}
    return {"parts": parts}
