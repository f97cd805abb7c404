"""Emotion UAR: how much emotion survives anonymization (offline recipe classifier).

No pretrained emotion recognizer can be fetched offline, so the recipe trains one on the
*original* emotion-labelled set (``utt2emo``) and applies it to the anonymized set, with
speaker-independent folds as VPC 2024 scores IEMOCAP: the folds are ``spk2fold`` when the set has
it, else ``ser_folds`` groups of whole speakers (speakers sorted, dealt round-robin). For each
fold a classifier is trained on the original utterances of the other folds and tested on the
fold's original and anonymized utterances.

Features (``utterance_features``): after the ASV pre-processing (-30 LUFS, peak-normalized),
80-band log-mel fbank (speechbrain ``Fbank``) and its time deltas; per utterance the mean and
standard deviation over frames of both, i.e. a 320-d vector. Classifier: standardization +
multinomial logistic regression (scikit-learn, L2, ``ser_c``), class-balanced.

UAR of a fold = macro-averaged recall over the emotions present in that fold; the set's UAR and
per-class recalls are means over folds (VPC 2024: macro recall per fold, averaged over folds).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from voxanon.audio import AudioError, load_16k
from voxanon.data.kaldi import DataDir, resolve_wav
from voxanon.eval.scoring import preprocess
from voxanon.progress import Progress

log = logging.getLogger("voxanon.ser")


def speaker_folds(data: DataDir, n_folds: int) -> dict[str, str]:
    """Speaker -> fold: the dir's spk2fold, else whole speakers dealt round-robin."""
    spk2fold = data.table("spk2fold")
    if spk2fold:
        return dict(spk2fold)
    spks = sorted(set(data.utt2spk.values()))
    if len(spks) < 2:
        raise ValueError(f"{data.path}: speaker-independent folds need at least 2 speakers")
    k = max(2, min(n_folds, len(spks)))
    return {s: str(i % k + 1) for i, s in enumerate(spks)}


class FeatureExtractor:
    def __init__(self, target_lufs: float = -30.0, peak: float = 1.0, allow_pipes: bool = False):
        from speechbrain.lobes.features import Fbank

        self.fbank = Fbank(n_mels=80)
        self.target_lufs, self.peak, self.allow_pipes = target_lufs, peak, allow_pipes

    @torch.no_grad()
    def utterance_features(self, samples: np.ndarray) -> np.ndarray:
        """(samples,) 16 kHz -> (320,) log-mel and delta mean/std."""
        x = preprocess(samples, self.target_lufs, self.peak)
        feats = self.fbank(torch.from_numpy(np.array(x, dtype=np.float32)).unsqueeze(0))[0].numpy()
        delta = np.diff(feats, axis=0) if len(feats) > 1 else np.zeros_like(feats)
        return np.concatenate([feats.mean(0), feats.std(0), delta.mean(0), delta.std(0)]).astype(np.float32)

    def features(self, data: DataDir, utts: list[str], cache: Path) -> tuple[dict[str, np.ndarray], list[str]]:
        """Features of ``utts`` (cached in ``cache`` .npz); returns (features, failed)."""
        feats: dict[str, np.ndarray] = {}
        if cache.is_file():
            with np.load(cache) as z:
                feats = {k: z[k] for k in z.files}
        todo = [u for u in utts if u not in feats]
        failed = []
        if todo:
            prog = Progress(len(todo), f"emotion features {data.path.name if data.path else ''}")
            try:
                for utt in todo:
                    try:
                        feats[utt] = self.utterance_features(
                            load_16k(resolve_wav(data, utt), data.path, self.allow_pipes).samples)
                    except AudioError as err:
                        failed.append(f"{utt} ({err})")
                    prog.step()
            finally:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp.npz")
                np.savez(tmp, **feats)
                os.replace(tmp, cache)
        return {u: feats[u] for u in utts if u in feats}, failed


def fold_recalls(y_true: list[str], y_pred: list[str]) -> dict[str, float]:
    """Recall (percent) of each class present in ``y_true``."""
    out = {}
    for c in sorted(set(y_true)):
        idx = [i for i, y in enumerate(y_true) if y == c]
        out[c] = 100.0 * sum(y_pred[i] == c for i in idx) / len(idx)
    return out


def summarize(folds: list[dict]) -> dict:
    """Mean UAR and per-class recall over folds."""
    classes = sorted({c for f in folds for c in f["recall"]})
    return {
        "uar": float(np.mean([f["uar"] for f in folds])),
        "per_class": {c: float(np.mean([f["recall"][c] for f in folds if c in f["recall"]])) for c in classes},
        "folds": folds,
    }


def evaluate_uar(orig: DataDir, anon: DataDir | None, n_folds: int, classes: tuple[str, ...], c: float,
                 extractor: FeatureExtractor, cache_dir: Path, name: str) -> dict:
    """UAR of the recipe classifier on the original set and (when given) its anonymized version."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    utt2emo = orig.table("utt2emo")
    if not utt2emo:
        return {"skipped": f"{orig.path}: no 'utt2emo' file (emotion labels)"}
    utts = [u for u in orig.utts if u in utt2emo and (not classes or utt2emo[u] in classes)]
    spk2fold = speaker_folds(orig, n_folds)
    no_fold = sorted({orig.utt2spk[u] for u in utts} - set(spk2fold))
    if no_fold:
        raise ValueError(f"{orig.path}/spk2fold: no fold for speaker(s) {' '.join(no_fold[:10])}")
    x_orig, failed = extractor.features(orig, utts, cache_dir / f"{name}.npz")
    sides = {"original": x_orig}
    result: dict = {"classes": sorted({utt2emo[u] for u in utts}), "n_utts": len(utts),
                    "folds": {f: sorted(s for s, g in spk2fold.items() if g == f) for f in sorted(set(spk2fold.values()))},
                    "failed": failed}
    if anon is not None:
        lost = [u for u in utts if u not in anon.utt2spk]
        x_anon, failed_anon = extractor.features(anon, [u for u in utts if u in anon.utt2spk],
                                                 cache_dir / f"{name}_anon_{anon.path.name}.npz")
        sides["anon"] = x_anon
        result["failed_anon"] = failed_anon + [f"{u} (not in {anon.path})" for u in lost]
    fold_of = {u: spk2fold[orig.utt2spk[u]] for u in utts}
    per_side: dict[str, list] = {s: [] for s in sides}
    for fold in sorted(set(fold_of.values())):
        train = [u for u in utts if fold_of[u] != fold and u in x_orig]
        if len({utt2emo[u] for u in train}) < 2:
            continue
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, class_weight="balanced"))
        clf.fit(np.stack([x_orig[u] for u in train]), [utt2emo[u] for u in train])
        for side, x in sides.items():
            test = [u for u in utts if fold_of[u] == fold and u in x]
            if not test:
                continue
            pred = clf.predict(np.stack([x[u] for u in test]))
            rec = fold_recalls([utt2emo[u] for u in test], list(pred))
            per_side[side].append({"fold": fold, "uar": float(np.mean(list(rec.values()))), "recall": rec,
                                   "n_utts": len(test)})
    for side, folds in per_side.items():
        result[side] = summarize(folds) if folds else {"skipped": "no fold could be scored"}
    result["chance"] = 100.0 / len(result["classes"])
    for side in per_side:
        if "uar" in result[side]:
            log.info("UAR %s (%s): %.2f %% (chance %.2f %%)", name, side, result[side]["uar"], result["chance"])
    return result
