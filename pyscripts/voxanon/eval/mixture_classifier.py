"""The mixture-aware attacker's component classifier: which part of an admixture made an utterance.

Logistic regression on log-mel statistics, trained on the attacker's own part outputs (label =
part), its accuracy first measured on held-out speakers; the owner-only records of the true draws
serve only as a diagnostic (``true_draws``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from voxanon.data.kaldi import DataDir
from voxanon.eval.cache import ArrayCache, audio_stamp
from voxanon.progress import Progress

FEATURE_TAG = "logmel40-stats-v1"
N_MELS = 40
HELD_OUT_SHARE = 0.2  # speakers held out to measure the classifier


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
