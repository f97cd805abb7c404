"""Emotion UAR with the VPC 2024 SER: five wav2vec2 fold models, one per IEMOCAP fold.

Model dir (registry ``vpc-ser``: the release's ``ser.zip``): a ``fold_<k>`` folder per fold, each
holding a speechbrain model dir (``hyperparams.yaml``, ``wav2vec2.ckpt``, ``model.ckpt``,
``label_encoder.txt``; the release puts them in a ``CKPT+`` folder). Each is loaded by speechbrain
from its own hyperparams (``voxanon.asr.sb_pretrained``); an utterance is classified as the VPC's
``CustomEncoderWav2vec2Classifier.classify_batch`` does on it: wav2vec2 -> mean over frames
(``avg_pool``) -> ``output_mlp`` -> softmax -> the most probable label. The dir's
``custom_interface.py`` is not executed (the tests show the same predictions as that interface).

Per set, original and anonymized alike: every ``spk2fold`` row (speaker, fold) classifies that
speaker's utterances, one at a time, raw 16 kHz waveform (no loudness normalization, as the VPC),
with its fold's model, loaded once per run (shared by the emotion sets). Row UAR = scikit-learn's
macro recall (over the labels true or predicted in the row); ``ACC_<emo>`` = accuracy on the row's
utterances of that emotion. A set's UAR and ``ACC_<emo>`` are means over its rows, as the VPC's
``groupby(...).mean()``. ``utt2emo`` and ``spk2fold`` come from the original dir. Posteriors are
cached per fold model, keyed on the audio, one file per (audio dir, fold) holding all the fold's
speakers, so a killed run resumes.
"""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import torch

from voxanon.audio import AudioError
from voxanon.data.kaldi import DataDir
from voxanon.eval.cache import ArrayCache, audio_stamp
from voxanon.progress import Progress

log = logging.getLogger("voxanon.ser")


class SerError(ValueError):
    """Emotion labels, folds or utterances that do not fit (names the ids)."""


def fold_dir(root: Path, fold: str) -> Path:
    """``fold_<fold>`` under the SER model dir (at any depth; the shallowest)."""
    found = sorted((p for p in Path(root).rglob(f"fold_{fold}") if p.is_dir()), key=lambda p: len(p.parts))
    if not found:
        raise SerError(f"{root}: no fold_{fold} model dir (expected the VPC 2024 ser release layout)")
    return found[0]


class FoldModel:
    """One fold's classifier: ``posteriors(samples)`` -> (n_classes,), ``labels`` by index."""

    def __init__(self, model_dir: Path, device: str = "cpu"):
        from speechbrain.inference.interfaces import Pretrained

        from voxanon.asr.sb_pretrained import find_model_dir, load_pretrained

        self.dir = find_model_dir(model_dir)
        self.model = load_pretrained(Pretrained, self.dir, device)
        self.device = device
        enc = self.model.hparams.label_encoder
        self.labels = [enc.ind2lab[i] for i in range(len(enc))]
        files = sorted(p for p in self.dir.iterdir() if p.is_file())
        self.tag = hashlib.sha1("".join(f"{p.name}{p.stat().st_size}{p.stat().st_mtime_ns}" for p in files)
                                .encode()).hexdigest()[:16]

    @torch.no_grad()
    def posteriors(self, samples: np.ndarray) -> np.ndarray:
        mods, hp = self.model.mods, self.model.hparams
        wav = torch.from_numpy(np.asarray(samples, dtype=np.float32))[None].to(self.device)
        pooled = mods.avg_pool(mods.wav2vec2(wav), torch.ones(1, device=self.device)).view(1, -1)
        return hp.softmax(mods.output_mlp(pooled))[0].float().cpu().numpy()


def row_scores(ref: list[str], hyp: list[str]) -> dict:
    """UAR (sklearn macro recall) and per-emotion accuracy of one spk2fold row, in percent."""
    from sklearn.metrics import recall_score

    acc = {e: 100.0 * float(np.mean([h == e for r, h in zip(ref, hyp) if r == e])) for e in sorted(set(ref))}
    return {"uar": 100.0 * float(recall_score(ref, hyp, average="macro")), "acc": acc, "n_utts": len(ref)}


def summarize(rows: list[dict]) -> dict:
    emos = sorted({e for r in rows for e in r["acc"]})
    return {"uar": float(np.mean([r["uar"] for r in rows])),
            "per_class": {e: float(np.mean([r["acc"][e] for r in rows if e in r["acc"]])) for e in emos},
            "rows": rows}


def classify_set(orig: DataDir, audio: DataDir, models: dict[str, FoldModel], cache_dir: Path,
                 allow_pipes: bool = False, allow_partial: bool = False, save_every_s: float = 60.0) -> dict:
    """Scores of ``audio`` (the original dir or its anonymized version) with the fold models.

    Posteriors are cached per fold model in ``<cache_dir>/<audio dir>.fold_<k>.npz``, one file for
    all the speakers of the fold, saved atomically every ``save_every_s`` seconds and after each
    speaker: a re-run classifies only what is new or replaced."""
    utt2emo, spk2fold = orig.table("utt2emo"), orig.table("spk2fold")
    failed: list[str] = []
    rows = []
    caches: dict[str, ArrayCache] = {}
    for spk, fold in spk2fold.items():
        model = models[fold]
        utts = [u for u in orig.utts if orig.utt2spk[u] == spk]
        lost = [u for u in utts if u not in audio.utt2spk]
        unknown = [u for u in utts if utt2emo.get(u) not in model.labels]
        if unknown:
            raise SerError(f"{orig.path}: utterance(s) whose emotion the fold_{fold} model does not know "
                           f"({' '.join(model.labels)}): " + " ".join(f"{u}={utt2emo.get(u)}" for u in unknown[:10]))
        if lost and not allow_partial:
            raise SerError(f"{audio.path}: lacks {len(lost)} utterance(s) of speaker {spk}: {' '.join(lost[:10])}")
        failed += [f"{u} (not in {audio.path})" for u in lost]
        utts = [u for u in utts if u in audio.utt2spk]
        stamps = {u: audio_stamp(audio, u) for u in utts}
        if fold not in caches:
            caches[fold] = ArrayCache(cache_dir / f"{audio.path.name}.fold_{fold}.npz", model.tag)
        cache = caches[fold]
        probs = cache.load(stamps)
        todo = [u for u in utts if u not in probs]
        prog = Progress(len(todo), f"SER {audio.path.name} {spk}")
        last_save = time.monotonic()
        try:
            for utt in todo:
                try:
                    probs[utt] = model.posteriors(audio.audio(utt, allow_pipes).samples)
                    cache.put(utt, stamps[utt], probs[utt])
                except AudioError as err:
                    if not allow_partial:
                        raise AudioError(f"{audio.path}: {utt}: {err}") from None
                    failed.append(f"{utt} ({str(err).splitlines()[0][:100]})")
                prog.step()
                if time.monotonic() - last_save >= save_every_s:
                    cache.save()
                    last_save = time.monotonic()
        finally:
            cache.save()
        scored = [u for u in utts if u in probs]
        if not scored:
            if allow_partial:
                continue
            raise SerError(f"{audio.path}: speaker {spk} (spk2fold) has no utterances to classify")
        hyp = [model.labels[int(np.argmax(probs[u]))] for u in scored]
        rows.append({"speaker": spk, "fold": fold, **row_scores([utt2emo[u] for u in scored], hyp)})
    if not rows:
        return {"skipped": f"no utterance could be classified ({len(failed)} failed)", "failed": failed[:20]}
    return {**summarize(rows), "partial": bool(failed), "failed": failed}


def evaluate_uar(orig: DataDir, anon: DataDir | None, model_root: Path, cache_dir: Path, device: str = "cpu",
                 allow_pipes: bool = False, allow_partial: bool = False,
                 loaded: dict[str, FoldModel] | None = None) -> dict:
    """UAR of the original set and (when given) of its anonymized version.

    ``loaded``: fold models already loaded from ``model_root`` (fold -> model), shared by the
    emotion sets of one run; the models this call loads are added to it."""
    if not orig.table("utt2emo"):
        return {"skipped": f"{orig.path}: no 'utt2emo' file (emotion labels)"}
    spk2fold = orig.table("spk2fold")
    if not spk2fold:
        return {"skipped": f"{orig.path}: no 'spk2fold' file (which fold model scores which speaker)"}
    loaded = {} if loaded is None else loaded
    for f in sorted(set(spk2fold.values()) - set(loaded)):
        loaded[f] = FoldModel(fold_dir(model_root, f), device)
    models = {f: loaded[f] for f in sorted(set(spk2fold.values()))}
    result: dict = {"model": str(model_root), "folds": {f: sorted(s for s, g in spk2fold.items() if g == f)
                                                       for f in models}}
    for side, data in (("original", orig), ("anon", anon)):
        if data is not None:
            result[side] = classify_set(orig, data, models, cache_dir, allow_pipes, allow_partial)
            if "uar" in result[side]:
                log.info("UAR %s (%s): %.3f %%", orig.path.name, side, result[side]["uar"])
    return result
