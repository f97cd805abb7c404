"""Stage 6 of the mixture-aware attacker (``voxanon.eval.mixture_attack``): the part confs that
anonymize the training set with each part alone, the component classifier and the clusters of the
mixed training set, under ``<exp>/mixture/``.
"""
from __future__ import annotations

import copy
import json
import logging
from dataclasses import replace
from pathlib import Path

from voxanon.data.kaldi import DataDir, load_data_dir, resolve_wav, write_data_dir
from voxanon.eval.mixture_classifier import accuracy_vs_draws, features, train_classifier, true_draws
from voxanon.fileio import atomic_write_text

log = logging.getLogger("voxanon.mixture")


def mixture_dir(exp: Path) -> Path:
    return Path(exp) / "mixture"


def part_suffix(suffix: str, i: int) -> str:
    return f"{suffix}_part{i}"


def part_confs(conf: str | Path, exp: Path) -> list[Path]:
    """One conf per part: the admixture with probability 1 for that part (same parts, params and
    cache, so a sweep's cached part outputs are reused), anonymizing into ``<set><suffix>_part<i>``."""
    from voxanon.experiment import load_experiment, write_conf

    raw = load_experiment(conf).to_dict()
    suffix = raw["anonymizer"]["suffix"]
    systems = raw["anonymizer"]["params"]["systems"]
    paths = []
    for i in range(len(systems)):
        part = copy.deepcopy(raw)
        part["anonymizer"]["suffix"] = part_suffix(suffix, i)
        for j, system in enumerate(part["anonymizer"]["params"]["systems"]):
            system["p"] = 1.0 if j == i else 0.0
        paths.append(write_conf(part, mixture_dir(exp) / "conf" / f"part{i}.yaml"))
    return paths


def cluster_dirs(mixed: DataDir, labels: dict[str, int], n_parts: int, out: Path) -> list[Path | None]:
    """The mixed training set split by the classifier's labels (absolute wav paths); None for a
    cluster with fewer than 2 speakers (no ASV can be trained on it)."""
    dirs: list[Path | None] = []
    for i in range(n_parts):
        sub = mixed.subset([u for u, c in labels.items() if c == i])
        path = out / f"train_cluster{i}"
        if len(set(sub.utt2spk.values())) < 2:
            dirs.append(None)
            continue
        sub = replace(sub, wav_scp={u: resolve_wav(mixed, u) for u in sub.wav_scp}, path=path)
        write_data_dir(sub, path)
        dirs.append(path)
    return dirs


def stage6_classifier(conf: str, exp: Path, data_root: Path) -> list[Path | None]:
    """Train the classifier on the parts' outputs of the training set and cluster the mixed one."""
    from voxanon.experiment import load_experiment

    experiment = load_experiment(conf)
    train_set, suffix = experiment.data.asv_train_set, experiment.anonymizer.suffix
    n_parts = len(experiment.anonymizer.params["systems"])
    out = mixture_dir(exp)
    names = [f"{train_set}{part_suffix(suffix, i)}" for i in range(n_parts)]
    parts = [load_data_dir(data_root / n) for n in names]
    clf, info = train_classifier(parts, names, out / "feats")
    mixed_name = f"{train_set}{suffix}"
    mixed = load_data_dir(data_root / mixed_name)
    labels = clf.label(features(mixed, mixed_name, out / "feats"))
    info["train_vs_draws"] = accuracy_vs_draws(labels, true_draws(exp / "anon_records" / mixed_name))
    dirs = cluster_dirs(mixed, labels, n_parts, out)
    info["clusters"] = {str(i): {"utts": sum(c == i for c in labels.values()), "dir": str(d) if d else None}
                        for i, d in enumerate(dirs)}
    atomic_write_text(out / "classifier.json", json.dumps({"classifier": clf.to_json(), "info": info}) + "\n")
    acc = info["held_out_accuracy"]
    log.info("component classifier: held-out accuracy %s; clusters of the mixed training set: %s",
             "n/a" if acc is None else f"{100 * acc:.1f} %", " ".join(str(v["utts"]) for v in info["clusters"].values()))
    return dirs
