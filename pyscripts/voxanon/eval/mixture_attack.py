"""The mixture-aware attacker of a random admixture, and training-set filtering.

Random admixture hides speakers by poisoning the semi-informed attacker's training data: its one
ASV learns from a mixture of very different systems. An attacker who knows the system is a mixture
(it may run the system, it does not know the per-utterance draws, which only the owner-only
records hold) can undo that:

* **mixture-aware**: anonymize the ASV training set with each part separately (``part_confs``: the
  admixture with probability 1 for one part), train a *component classifier* on those outputs
  (logistic regression on log-mel statistics: which part made an utterance), train one ASV per
  part on that part's outputs, and score each trial with the ASV of the part the classifier gives
  the trial utterance, enrolled on the speaker's enrollment utterances given the same part. A
  trial whose speaker has no enrollment utterance of that part (a cross-component trial) is scored
  by the semi-informed ASV, which was trained on both parts' outputs (the mixed training set): it
  is the one model that has seen both sides, and it costs no extra training. Scores of different
  ASVs are pooled into one EER, so each ASV's cosine scores are first calibrated to log-odds by a
  logistic regression fitted on trials the attacker makes itself (its own validation utterances).
* **filtered** (training-set filtering, the poisoning defence): the classifier splits the mixed
  training set into clusters, one ASV is trained per cluster, and every trial is scored with each;
  the cluster whose ASV gives the lowest EER is reported (an upper bound on this attacker: the
  choice is made on the trials).

Stage 6 (``voxanon.eval.mixture_parts``, run by local/train_attacker.sh through
``python -m voxanon.bin.mixture_attack``) writes the layout under ``<exp>/mixture/``, the component
classifier is ``voxanon.eval.mixture_classifier``, and this module scores (stage 7)::

    conf/part<i>.yaml        the admixture with p = 1 for part i (anonymizes <train><suffix>_part<i>)
    classifier.json          the classifier's weights and accuracy (held-out speakers of the attacker's
                             own part outputs; against the true draws as a diagnostic)
    asv_part<i>/             ASV trained on part i's outputs
    train_cluster<i>/        the mixed training utterances the classifier gives part i (a data dir)
    asv_cluster<i>/          ASV trained on that cluster
    feats/<set>.npz          cached log-mel statistics
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from voxanon.data.kaldi import DataDir, load_data_dir
from voxanon.eval.mixture_classifier import Classifier, accuracy_vs_draws, features, true_draws
from voxanon.eval.mixture_parts import mixture_dir, part_suffix

log = logging.getLogger("voxanon.mixture")


def calibration(store, data: DataDir, name: str, valid_share: float, seed: int) -> tuple[float, float]:
    """(a, b) mapping a cosine score s of this ASV to log-odds a*s + b: logistic regression on every
    pair of the attacker's own validation utterances of ``data`` (same speaker = target)."""
    from sklearn.linear_model import LogisticRegression

    from voxanon.eval.asv_train import split_utts

    valid = split_utts(data.utts, valid_share, seed)[1] or data.utts
    emb = store.get(data, name, set(valid))
    utts = sorted(emb)
    m = np.stack([emb[u] for u in utts]).astype(np.float64)
    m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    i, j = np.triu_indices(len(utts), k=1)
    scores = (m @ m.T)[i, j]
    target = np.array([data.utt2spk[utts[a]] == data.utt2spk[utts[b]] for a, b in zip(i, j)])
    if target.all() or not target.any():
        return 1.0, 0.0
    lr = LogisticRegression(class_weight="balanced").fit(scores[:, None], target)
    # a slope <= 0: the ASV does not separate even the attacker's own trials; its scores then carry
    # no evidence (log-odds 0 at the balanced prior the fit uses), rather than being turned upside down
    a = float(lr.coef_[0, 0])
    return (a, float(lr.intercept_[0])) if a > 0 else (0.0, 0.0)


def unit_rows(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)


def mixture_aware_scores(trials, enroll: dict[str, list[str]], labels: dict[str, int], part_emb: list[tuple],
                         both_emb: tuple, part_cal: list[tuple[float, float]], both_cal: tuple[float, float]):
    """Calibrated scores of the mixture-aware attacker and the number of cross-component trials.

    ``part_emb[i]`` / ``both_emb``: (enrollment embeddings, trial embeddings) of part i's ASV / of
    the ASV trained on both; ``labels``: the classifier's part of each enrollment and trial utterance."""
    scores, cross = np.empty(len(trials)), 0
    for k, t in enumerate(trials):
        c = labels[t.utt]
        same = [u for u in enroll[t.enroll_spk] if labels[u] == c]
        (e_emb, t_emb), (a, b) = (part_emb[c], part_cal[c]) if same else (both_emb, both_cal)
        if not same:
            cross += 1
        side = same or enroll[t.enroll_spk]
        spk = unit_rows(np.mean([e_emb[u] for u in side], axis=0))
        scores[k] = a * float(spk @ unit_rows(t_emb[t.utt])) + b
    return scores, cross


def load_classifier(exp: Path) -> tuple[Classifier, dict] | str:
    path = mixture_dir(exp) / "classifier.json"
    if not path.is_file():
        return f"{path}: no component classifier (run stage 6)"
    saved = json.loads(path.read_text())
    return Classifier.from_json(saved["classifier"]), saved["info"]


def evaluate_mixture(lists, stores: dict, data_root: Path, suffix: str, train_set: str, exp: Path, out: Path,
                     asv_cfg, metric_args: dict, n_parts: int) -> dict:
    """The mixture-aware and filtered attackers on every trial list: ``{"trial_sets": {list:
    {scenario: metrics}}, "skipped": {scenario: why}, "mixture": {...}}``.

    ``stores``: "anon" (the semi-informed ASV, or why it is missing), "part<i>" and "cluster<i>"
    (EmbeddingStores, or strings saying why they are missing)."""
    from voxanon.eval.scoring import list_audio, list_metrics, score_list

    res: dict = {"trial_sets": {tl.name: {} for tl in lists}, "skipped": {}, "mixture": {}}
    loaded = load_classifier(exp)
    if isinstance(loaded, str):
        return {**res, "skipped": {"mixture-aware": loaded, "filtered": loaded}}
    clf, info = loaded
    res["mixture"]["classifier"] = {k: info[k] for k in ("held_out_accuracy", "held_out_utts", "n_utts",
                                                          "train_vs_draws") if k in info}
    feat_dir = mixture_dir(exp) / "feats"

    # mixture-aware: the ASV of each utterance's part, the semi-informed one for cross trials
    parts = [stores[f"part{i}"] for i in range(n_parts)]
    missing = [s for s in (*parts, stores["anon"]) if isinstance(s, str)]
    if missing:
        res["skipped"]["mixture-aware"] = missing[0]
    else:
        names = [f"{train_set}{part_suffix(suffix, i)}" for i in range(n_parts)] + [f"{train_set}{suffix}"]
        cal = [calibration(st, load_data_dir(data_root / n), n, asv_cfg.valid_share, asv_cfg.seed)
               for st, n in zip([*parts, stores["anon"]], names)]
        cal, both_cal = cal[:-1], cal[-1]
        res["mixture"]["calibration"] = {"parts": cal, "semi-informed": both_cal}
        labels_all: dict[str, int] = {}
        draws_all: dict[str, int] = {}
        for tl in lists:
            audio = list_audio(tl, data_root, suffix, True, True)
            labels = clf.label(features(audio.enroll_dir, audio.enroll_name, feat_dir))
            if audio.trial_name != audio.enroll_name:
                labels.update(clf.label(features(audio.trial_dir, audio.trial_name, feat_dir)))
            for name in {audio.enroll_name, audio.trial_name}:
                draws_all.update(true_draws(exp / "anon_records" / name))
            labels_all.update(labels)
            scores, cross = mixture_aware_scores(audio.trials, audio.enroll, labels,
                                                 [audio.embeddings(st) for st in parts],
                                                 audio.embeddings(stores["anon"]), cal, both_cal)
            m = list_metrics(audio.trials, scores, out / "scores" / "mixture-aware" / tl.name, metric_args,
                             f"{tl.name} / mixture-aware")
            m["cross_component_trials"] = cross
            res["trial_sets"][tl.name]["mixture-aware"] = m
        res["mixture"]["classifier"]["eval_vs_draws"] = accuracy_vs_draws(labels_all, draws_all)

    # filtered: one ASV per cluster of the mixed training set; the best one is reported
    clusters = {i: stores[f"cluster{i}"] for i in range(n_parts)}
    usable = {i: st for i, st in clusters.items() if not isinstance(st, str)}
    res["mixture"]["filtered"] = {"clusters": {str(i): {"utts": info.get("clusters", {}).get(str(i), {}).get("utts"),
                                                        **({"skipped": st} if isinstance(st, str) else {})}
                                               for i, st in clusters.items()}}
    if not usable:
        res["skipped"]["filtered"] = "no cluster of the mixed training set has an ASV (run stage 6)"
        return res
    per_cluster: dict[int, dict] = {}
    for i, st in usable.items():
        per_cluster[i] = {}
        for tl in lists:
            trials, scores = score_list(tl, "semi-informed", st, data_root, suffix)
            per_cluster[i][tl.name] = list_metrics(trials, scores, out / "scores" / f"filtered-cluster{i}" / tl.name,
                                                   metric_args, f"{tl.name} / filtered (cluster {i})")
        eers = [m["eer"] for m in per_cluster[i].values() if "eer" in m]
        res["mixture"]["filtered"]["clusters"][str(i)]["eer"] = float(np.mean(eers)) if eers else None
    defined = {i: c["eer"] for i, c in res["mixture"]["filtered"]["clusters"].items() if c.get("eer") is not None}
    chosen = int(min(defined, key=defined.get)) if defined else min(usable)
    res["mixture"]["filtered"]["chosen"] = chosen
    for tl in lists:
        res["trial_sets"][tl.name]["filtered"] = per_cluster[chosen][tl.name]
    return res


