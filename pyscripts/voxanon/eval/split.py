"""What an experiment was evaluated on: the data and its split (for results.json and the report).

    {"root": "data/timit-1a2b3c", "recipe": "mini", "source": "<--data DIR and how it was split>" | null,
     "sets": {"<set>": {"role": "enrollment" | "trials" | "attacker training" | "emotion",
                        "speakers", "utterances", "genders": {"f": n, "m": n},
                        "n_target", "n_nontarget"  (trial lists),  "enroll_utts" (enrollment sets)}
                       | {"role", "missing": true}}}
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from voxanon.data.kaldi import load_data_dir
from voxanon.data.sets import DataConfig

SOURCE_FILE = "mini/source"  # written by the mini recipe under the data root: where the speech came from


def set_roles(cfg: DataConfig, root: Path) -> dict[str, str]:
    roles = {s: "trials" if (root / s / "trials").is_file() else "enrollment" for s in cfg.eval_sets}
    if cfg.asv_train_set:
        roles[cfg.asv_train_set] = "attacker training"
    roles.update((s, "emotion") for s in cfg.emotion_sets)
    return roles


def describe_set(path: Path, role: str) -> dict:
    if not (path / "wav.scp").is_file():
        return {"role": role, "missing": True}
    data = load_data_dir(path)
    genders = data.table("spk2gender") or {}
    info = {"role": role, "speakers": len(data.spk2utt), "utterances": len(data.utt2spk),
            "genders": dict(sorted(Counter(genders.get(s, "?") for s in data.spk2utt).items()))}
    if data.trials:
        info["n_target"] = sum(t.target for t in data.trials)
        info["n_nontarget"] = len(data.trials) - info["n_target"]
    if data.enrolls is not None:
        info["enroll_utts"] = len(data.enrolls)
    return info


def describe_split(cfg: DataConfig, data_root: str | Path) -> dict:
    root = Path(data_root)
    source = root / SOURCE_FILE
    return {"root": str(root), "recipe": cfg.recipe,
            "source": source.read_text(encoding="utf-8").strip() if source.is_file() else None,
            "sets": {name: describe_set(root / name, role) for name, role in set_roles(cfg, root).items()}}


def split_lines(info: dict) -> list[str]:
    """One line per set: ``mini_trials_f (trials): 2 speakers (f 2), 18 utterances, 18 target / 18 non-target``."""
    lines = [f"data: {info['root']} (recipe {info['recipe']})" + (f"; {info['source']}" if info.get("source") else "")]
    for name, s in info["sets"].items():
        if s.get("missing"):
            lines.append(f"{name} ({s['role']}): not prepared")
            continue
        genders = " ".join(f"{g} {n}" for g, n in s["genders"].items())
        text = f"{name} ({s['role']}): {s['speakers']} speakers ({genders}), {s['utterances']} utterances"
        if "n_target" in s:
            text += f", {s['n_target']} target / {s['n_nontarget']} non-target trials"
        if "enroll_utts" in s:
            text += f", {s['enroll_utts']} enrollment utterances"
        lines.append(text)
    return lines
