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

Layout under ``<exp>/mixture/`` (stage 6 writes it, stage 7 reads it)::

    conf/part<i>.yaml        the admixture with p = 1 for part i (anonymizes <train><suffix>_part<i>)
    classifier.json          the classifier's weights and accuracy (held-out speakers of the attacker's
                             own part outputs; against the true draws as a diagnostic)
    asv_part<i>/             ASV trained on part i's outputs
    train_cluster<i>/        the mixed training utterances the classifier gives part i (a data dir)
    asv_cluster<i>/          ASV trained on that cluster
    feats/<set>.npz          cached log-mel statistics

  python -m voxanon.eval.mixture_attack confs CONF --exp DIR           # prints "<i>\\t<part conf>"
  python -m voxanon.eval.mixture_attack classifier CONF --exp DIR --data-root data
                                                                        # prints "<i>\\t<cluster dir>"
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from voxanon.audio import AudioError
from voxanon.config import ConfigError
from voxanon.data.kaldi import DataDir, load_data_dir, resolve_wav, write_data_dir
from voxanon.eval.cache import ArrayCache, audio_stamp
from voxanon.fileio import atomic_write_text
from voxanon.progress import Progress, setup_logging

log = logging.getLogger("voxanon.mixture")
FEATURE_TAG = "logmel40-stats-v1"
N_MELS = 40
HELD_OUT_SHARE = 0.2  # speakers held out to measure the classifier


def mixture_dir(exp: Path) -> Path:
    return Path(exp) / "mixture"


def part_suffix(suffix: str, i: int) -> str:
    return f"{suffix}_part{i}"


# -- stage 6: the parts' outputs -------------------------------------------------------------------
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


# -- the component classifier --------------------------------------------------------------------
def logmel_stats(samples: np.ndarray) -> np.ndarray:
    """Mean and standard deviation of 40 log-mel bands and the mean absolute frame-to-frame change
    (120 values) of level-normalized 16 kHz audio: the parts differ in spectrum and dynamics."""
    import librosa

    from voxanon.eval.scoring import preprocess

    x = preprocess(samples, -30.0, 1.0)
    mel = np.log(librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512, hop_length=160, n_mels=N_MELS) + 1e-6)
    delta = np.abs(np.diff(mel, axis=1)).mean(axis=1) if mel.shape[1] > 1 else np.zeros(N_MELS)
    return np.concatenate([mel.mean(axis=1), mel.std(axis=1), delta]).astype(np.float32)


def features(data: DataDir, name: str, cache_dir: Path, utts=None) -> dict[str, np.ndarray]:
    """{utt: log-mel statistics} of ``data`` (all utterances, or ``utts``), cached per set."""
    stamps = {u: audio_stamp(data, u) for u in sorted(utts if utts is not None else data.utts)}
    cache = ArrayCache(cache_dir / f"{name}.npz", FEATURE_TAG)
    feats = cache.load(stamps)
    todo = [u for u in stamps if u not in feats]
    prog = Progress(len(todo), f"log-mel statistics {name}") if todo else None
    try:
        for utt in todo:
            feats[utt] = logmel_stats(data.audio(utt).samples)
            prog.step()
    finally:
        if todo:
            cache.save(feats, stamps)
    return feats


class Classifier:
    """Standardized features -> multinomial logistic regression; weights kept as plain numbers."""

    def __init__(self, mean, scale, coef, intercept):
        self.mean, self.scale = np.asarray(mean), np.asarray(scale)
        self.coef, self.intercept = np.asarray(coef), np.asarray(intercept)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> "Classifier":
        from sklearn.linear_model import LogisticRegression

        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        lr = LogisticRegression(max_iter=2000, C=1.0).fit((x - mean) / scale, y)
        coef, intercept = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:  # two classes: sklearn keeps one row (class 1 against class 0)
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        return cls(mean, scale, coef, intercept)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(((x - self.mean) / self.scale) @ self.coef.T + self.intercept, axis=1)

    def label(self, feats: dict[str, np.ndarray]) -> dict[str, int]:
        utts = sorted(feats)
        return dict(zip(utts, map(int, self.predict(np.stack([feats[u] for u in utts]))))) if utts else {}

    def to_json(self) -> dict:
        return {k: np.asarray(getattr(self, k)).tolist() for k in ("mean", "scale", "coef", "intercept")}

    @classmethod
    def from_json(cls, d: dict) -> "Classifier":
        return cls(d["mean"], d["scale"], d["coef"], d["intercept"])


def held_out_speakers(utt2spk: dict[str, str], seed: int = 1986) -> set[str]:
    spks = sorted(set(utt2spk.values()))
    n = max(1, int(round(HELD_OUT_SHARE * len(spks)))) if len(spks) > 1 else 0
    return set(np.random.default_rng(seed).permutation(spks)[:n].tolist())


def true_draws(record_dir: Path) -> dict[str, int]:
    """{utt: part} from the owner-only records of an admixture run (the evaluator's diagnostic)."""
    draws = {}
    for path in sorted(Path(record_dir).glob("records.*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                draws[row["utt"]] = int(row["component"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
    return draws


def accuracy_vs_draws(labels: dict[str, int], draws: dict[str, int]) -> dict:
    common = sorted(set(labels) & set(draws))
    if not common:
        return {"skipped": "no records of the true draws for these utterances"}
    return {"accuracy": float(np.mean([labels[u] == draws[u] for u in common])), "n_utts": len(common)}


def train_classifier(parts: list[DataDir], names: list[str], cache_dir: Path) -> tuple[Classifier, dict]:
    """Fit on every part's outputs (label = part); accuracy first measured on held-out speakers."""
    feats = [features(d, n, cache_dir) for d, n in zip(parts, names)]
    held = held_out_speakers(parts[0].utt2spk)
    rows = [(f[u], i, parts[i].utt2spk[u] in held) for i, f in enumerate(feats) for u in sorted(f)]
    x = np.stack([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    test = np.array([r[2] for r in rows])
    info: dict = {"n_utts": int(len(y)), "held_out_speakers": len(held)}
    if test.any() and len(set(y[~test])) == len(parts):
        pred = Classifier.fit(x[~test], y[~test]).predict(x[test])
        info["held_out_accuracy"] = float(np.mean(pred == y[test]))
        info["held_out_utts"] = int(test.sum())
    else:
        info["held_out_accuracy"] = None
        info["held_out_skipped"] = "too few speakers to hold some out"
    return Classifier.fit(x, y), info


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


# -- stage 7: scoring --------------------------------------------------------------------------------
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("confs", "classifier"))
    ap.add_argument("conf")
    ap.add_argument("--exp", required=True)
    ap.add_argument("--data-root", default="data")
    args = ap.parse_args(argv)
    setup_logging()
    try:
        if args.step == "confs":
            for i, path in enumerate(part_confs(args.conf, Path(args.exp))):
                print(f"{i}\t{path}")
        else:
            for i, path in enumerate(stage6_classifier(args.conf, Path(args.exp), Path(args.data_root))):
                print(f"{i}\t{path or '-'}")
    except (ConfigError, OSError, ValueError, AudioError) as err:
        print(f"mixture_attack: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
