"""ASV scoring of trial lists under the VPC 2024 attack scenarios.

Trial lists come from the conf's ``data.eval_sets``: every set whose dir has a ``trials`` file is
one trial list. Its enrollment comes from the same dir when that has an ``enrolls`` file (one dir
holding both, like the shared TIMIT set), else from the eval set with ``enrolls`` whose name
shares the longest prefix with it (VPC: ``libri_dev_trials_f`` -> ``libri_dev_enrolls``).
``enrolls`` / ``trials`` always come from the original dirs; audio comes from the original dir
or from the anonymized one, ``<set><suffix>``.

Scenarios (enrollment audio, trial audio, ASV model):

    original        original    original    ASV_orig   (privacy reference)
    ignorant        original    anonymized  ASV_orig
    lazy-informed   anonymized  anonymized  ASV_orig
    semi-informed   anonymized  anonymized  ASV_anon   (trained on anonymized data; ranks in VPC)
    semi-informed-finetuned  anonymized  anonymized  ASV_anon_ft  (fine-tuned from ASV_orig; opt-in)

Pre-processing before embedding (VPC): loudness to -30 LUFS, peak-normalize to 1.0, 16 kHz (an
asv_ssl model's WavLM branch gets the file's own signal). Utterance embeddings are normalized as
``eval.embedding_norm`` says (``normalize_embedding``; VPC 2024: not at all, VPC 2026: L2);
enrollment model = mean of the speaker's utterance embeddings; score = cosine similarity.
Each utterance is embedded once per model, whatever the number of trial lists and scenarios that
use it (``EmbeddingStore``); embeddings are cached per model and data dir (``emb/<model>/<set>.npz``)
with the stamp of each utterance's audio, so re-runs only embed what is new or replaced, a killed
run resumes, and a failing utterance does not lose the others.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from voxanon.audio import SAMPLE_RATE, Audio, AudioError, loudness_normalize, peak_normalize
from voxanon.data.kaldi import DataDir, DataDirError, Trial, load_data_dir
from voxanon.eval.asv_model import AsvModel, model_tag
from voxanon.eval.cache import ArrayCache, audio_stamp
from voxanon.eval.confidence import eer_interval, small_list_warning
from voxanon.eval.eer import MetricUndefined, all_metrics
from voxanon.fileio import atomic_write_text
from voxanon.progress import Progress

log = logging.getLogger("voxanon.scoring")

# scenario -> (enrollment anonymized, trials anonymized, model: "orig" | "anon")
SCENARIOS = {
    "original": (False, False, "orig"),
    "ignorant": (False, True, "orig"),
    "lazy-informed": (True, True, "orig"),
    "semi-informed": (True, True, "anon"),
    "semi-informed-finetuned": (True, True, "anon_ft"),
}


class TrialError(ValueError):
    """Trials or enrollment that do not fit the data (names the ids)."""


@dataclass(frozen=True)
class TrialList:
    name: str  # the trials set (its dir name)
    enroll_set: str
    trial_set: str


def _few(ids, n: int = 10) -> str:
    ids = sorted(ids)
    return " ".join(ids[:n]) + (f" ... ({len(ids)} in all)" if len(ids) > n else "")


def find_trial_lists(eval_sets: tuple[str, ...] | list[str], data_root: str | Path) -> list[TrialList]:
    root = Path(data_root)
    has = {s: ((root / s / "enrolls").is_file(), (root / s / "trials").is_file()) for s in eval_sets}
    missing = [s for s in eval_sets if not (root / s / "wav.scp").is_file()]
    if missing:
        raise DataDirError(f"eval set(s) not prepared under {root}: {' '.join(missing)} (run stage 1)")
    enroll_sets = [s for s, (e, _) in has.items() if e]
    lists = []
    for s, (e, t) in has.items():
        if not t:
            continue
        if e:
            lists.append(TrialList(s, s, s))
            continue
        if not enroll_sets:
            raise TrialError(f"{root / s}/trials: no eval set has an 'enrolls' file to enroll its speakers")
        prefix = {c: len(os.path.commonprefix([c, s])) for c in enroll_sets}
        best = max(prefix.values())
        cands = [c for c, n in prefix.items() if n == best]
        if len(cands) > 1:
            raise TrialError(f"{s}: enrollment set is ambiguous ({' '.join(cands)}); keep one 'enrolls' "
                             "set per trials prefix, or put enrolls into the trials dir")
        lists.append(TrialList(s, cands[0], s))
    if not lists:
        raise TrialError(f"none of the eval sets ({' '.join(eval_sets)}) has a 'trials' file")
    return lists


def enrollment(data: DataDir) -> dict[str, list[str]]:
    """Speaker -> enrollment utterances (the ``enrolls`` list, else every utterance of the dir)."""
    utts = data.enrolls if data.enrolls is not None else tuple(data.utts)
    unknown = [u for u in utts if u not in data.utt2spk]
    if unknown:
        raise TrialError(f"{data.path}/enrolls: utterance(s) not in utt2spk: {_few(unknown)}")
    spk2utts: dict[str, list[str]] = {}
    for u in utts:
        spk2utts.setdefault(data.utt2spk[u], []).append(u)
    return spk2utts


def check_trials(trials: tuple[Trial, ...], enroll: dict[str, list[str]], enroll_dir: DataDir,
                 trial_dir: DataDir, where: str) -> None:
    """Every trial's speaker is enrolled and its utterance exists; clear errors listing the ids."""
    spks = {t.enroll_spk for t in trials}
    no_utts = [s for s in spks if s not in enroll and s in set(enroll_dir.utt2spk.values())]
    unknown = [s for s in spks if s not in enroll and s not in no_utts]
    problems = []
    if unknown:
        problems.append(f"trials name speaker(s) unknown to the enrollment dir {enroll_dir.path}: {_few(unknown)}")
    if no_utts:
        problems.append(f"enrollment speaker(s) with no utterances in {enroll_dir.path}/enrolls: {_few(no_utts)}")
    bad_utts = {t.utt for t in trials if t.utt not in trial_dir.utt2spk}
    if bad_utts:
        problems.append(f"trials name utterance(s) missing from {trial_dir.path}: {_few(bad_utts)}")
    if problems:
        raise TrialError(f"{where}: " + "; ".join(problems))


def preprocess(samples: np.ndarray, target_lufs: float, peak: float) -> np.ndarray:
    """VPC scoring pre-processing of 16 kHz samples: loudness to ``target_lufs``, then peak."""
    audio = loudness_normalize(Audio(samples, SAMPLE_RATE), target_lufs)
    return peak_normalize(audio, peak).samples


class EmbeddingStore:
    """Embeddings of one model, each utterance embedded once (``voxanon.eval.cache``).

    Kept across requests: every trial list and scenario that needs an utterance's audio with this
    model gets the same embedding, computed once (VPC: ``libri_dev_enrolls`` serves both trial lists
    and the ignorant / lazy-informed attackers). Values are keyed on the model's weights and on each
    utterance's audio stamp; audio reached through several data dirs (the same file) is embedded
    once too. Persisted per data dir as ``<cache_dir>/<set>.npz``, every ``save_every_s`` seconds
    and at the end of each request, atomically, so a killed stage 7 resumes where it stopped.

    Embedding is per utterance, as the VPC's ``extract_vector`` (a batch of one, no padding):
    padding utterances to a common length changes their fbank means and ECAPA statistics, hence
    the embeddings and the EERs.
    """

    def __init__(self, model: AsvModel, model_dir: Path, cache_dir: Path, target_lufs: float, peak: float,
                 allow_pipes: bool = False, save_every_s: float = 60.0):
        self.model, self.cache_dir = model, Path(cache_dir)
        self.tag = model_tag(model_dir)
        self.target_lufs, self.peak, self.allow_pipes = target_lufs, peak, allow_pipes
        self.save_every_s = save_every_s
        self._sets: dict[str, ArrayCache] = {}  # set name -> its cache file, read once
        self._by_stamp: dict[str, np.ndarray] = {}  # audio stamp -> embedding, across sets
        self.n_embedded = 0  # model calls made by this store (the bench and tests read it)

    def _cache(self, set_name: str) -> ArrayCache:
        if set_name not in self._sets:
            self._sets[set_name] = ArrayCache(self.cache_dir / f"{set_name}.npz", self.tag)
        return self._sets[set_name]

    def get(self, data: DataDir, set_name: str, utts: set[str]) -> dict[str, np.ndarray]:
        """{utt: embedding} of exactly ``utts`` of ``data`` (its audio under the name ``set_name``)."""
        stamps = {u: audio_stamp(data, u) for u in sorted(utts)}
        cache = self._cache(set_name)
        emb = cache.load(stamps)
        self._by_stamp.update((stamps[u], e) for u, e in emb.items())
        for u, s in stamps.items():  # the same audio seen through another dir
            if u not in emb and s in self._by_stamp:
                emb[u] = self._by_stamp[s]
                cache.put(u, s, emb[u])
        todo = [u for u in stamps if u not in emb]
        if not todo:
            cache.save()
            return emb
        errors = []
        prog = Progress(len(todo), f"embed {set_name}")
        last_save = time.monotonic()
        try:
            for utt in todo:
                try:
                    audio = data.audio(utt, self.allow_pipes)
                    emb[utt] = self.model.embed(preprocess(audio.samples, self.target_lufs, self.peak),
                                                raw=audio.samples)
                    self.n_embedded += 1
                    self._by_stamp[stamps[utt]] = emb[utt]
                    cache.put(utt, stamps[utt], emb[utt])
                except AudioError as err:
                    errors.append(f"{utt} ({err})")
                prog.step()
                if time.monotonic() - last_save >= self.save_every_s:
                    cache.save()
                    last_save = time.monotonic()
        finally:
            cache.save()  # keep finished work even when interrupted
        if errors:
            raise AudioError(f"{data.path}: {len(errors)} utterance(s) could not be embedded: {_few(errors, 5)}")
        return emb


def normalize_embedding(emb: np.ndarray, norm: str) -> np.ndarray:
    """An utterance embedding as the scorer uses it. ``l2``: unit length (the VPC 2026 repository's
    fixed ``F.normalize(vec, dim=-1)``); ``sign``: its pre-fix ``F.normalize(vec, dim=1)`` on the
    model's (1, 1, emb_dim) output, which divides each value by its own magnitude; ``none``."""
    emb = np.asarray(emb, dtype=np.float32)
    if norm == "l2":
        return emb / max(float(np.linalg.norm(emb)), 1e-12)
    if norm == "sign":
        return emb / np.maximum(np.abs(emb), 1e-12)
    if norm == "none":
        return emb
    raise ValueError(f"unknown embedding normalization {norm!r}; known: none, l2, sign")


def cosine_scores(trials: tuple[Trial, ...], spk_emb: dict[str, np.ndarray],
                  utt_emb: dict[str, np.ndarray]) -> np.ndarray:
    spks = sorted({t.enroll_spk for t in trials})
    utts = sorted({t.utt for t in trials})
    def unit(m):
        return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    e = unit(np.stack([spk_emb[s] for s in spks]).astype(np.float64))
    u = unit(np.stack([utt_emb[x] for x in utts]).astype(np.float64))
    sim = e @ u.T
    si, ui = {s: i for i, s in enumerate(spks)}, {x: i for i, x in enumerate(utts)}
    return np.array([sim[si[t.enroll_spk], ui[t.utt]] for t in trials])


def write_scores(path: Path, trials: tuple[Trial, ...], scores: np.ndarray) -> None:
    atomic_write_text(path, "".join(f"{t.enroll_spk} {t.utt} {s:.6f} {'target' if t.target else 'nontarget'}\n"
                                    for t, s in zip(trials, scores)))


@dataclass(frozen=True)
class ListAudio:
    """The audio a trial list is scored on in one scenario."""
    trials: tuple[Trial, ...]
    enroll: dict[str, list[str]]  # enrolled speaker -> enrollment utterances
    enroll_dir: DataDir
    enroll_name: str
    trial_dir: DataDir
    trial_name: str

    def embeddings(self, store: EmbeddingStore) -> tuple[dict, dict]:
        """(enrollment, trial) utterance embeddings of ``store``'s model."""
        e_utts = {u for s in {t.enroll_spk for t in self.trials} for u in self.enroll[s]}
        t_utts = {t.utt for t in self.trials}
        if self.enroll_name == self.trial_name:  # one dir: embed once
            emb = store.get(self.enroll_dir, self.enroll_name, e_utts | t_utts)
            return emb, emb
        return store.get(self.enroll_dir, self.enroll_name, e_utts), store.get(self.trial_dir, self.trial_name, t_utts)


def list_audio(tl: TrialList, data_root: Path, suffix: str, enroll_anon: bool, trial_anon: bool,
               skip_missing: bool = False) -> ListAudio:
    """Trials, enrollment and audio dirs of one trial list, checked against each other. Utterances
    the trials need but the audio dirs lack stop it, naming them; ``skip_missing`` leaves out the
    trials that need them instead (and enrollment utterances that are missing), with a warning."""
    orig_enroll = load_data_dir(data_root / tl.enroll_set)
    orig_trial = orig_enroll if tl.trial_set == tl.enroll_set else load_data_dir(data_root / tl.trial_set)
    trials = orig_trial.trials
    enroll = enrollment(orig_enroll)
    check_trials(trials, enroll, orig_enroll, orig_trial, tl.name)

    def audio_dir(set_name: str, anon: bool) -> tuple[DataDir, str]:
        name = f"{set_name}{suffix}" if anon else set_name
        path = data_root / name
        if not (path / "wav.scp").is_file():
            raise DataDirError(f"{path}: anonymized data dir missing (run stage 5)")
        return load_data_dir(path), name

    e_dir, e_name = audio_dir(tl.enroll_set, enroll_anon)
    t_dir, t_name = audio_dir(tl.trial_set, trial_anon)
    spks = {t.enroll_spk for t in trials}
    lost = {d.path: needed - set(d.utt2spk) for d, needed in
            ((e_dir, {u for s in spks for u in enroll[s]}), (t_dir, {t.utt for t in trials}))}
    for path, utts in lost.items():
        if utts and not skip_missing:
            raise TrialError(f"{path}: lacks {len(utts)} utterance(s) the trials need: {_few(utts)} "
                             "(eval.skip_missing_trials: true leaves their trials out)")
        if utts:
            log.warning("%s: lacks %d utterance(s), their trials are left out: %s", path, len(utts), _few(utts))
    enroll = {s: [u for u in enroll[s] if u not in lost[e_dir.path]] for s in spks}
    kept = tuple(t for t in trials if enroll[t.enroll_spk] and t.utt not in lost[t_dir.path])
    if not kept:
        raise TrialError(f"{tl.name}: no trial left with its audio in {e_dir.path} and {t_dir.path}")
    spks = {t.enroll_spk for t in kept}
    return ListAudio(kept, {s: enroll[s] for s in spks}, e_dir, e_name, t_dir, t_name)


def score_list(tl: TrialList, scenario: str, store: EmbeddingStore, data_root: Path, suffix: str,
               norm: str = "none", skip_missing: bool = False) -> tuple:
    """(trials, scores) of one trial list in one scenario (embeddings normalized by ``norm``)."""
    enroll_anon, trial_anon, _ = SCENARIOS[scenario]
    audio = list_audio(tl, data_root, suffix, enroll_anon, trial_anon, skip_missing)
    e_emb, t_emb = audio.embeddings(store)
    e_emb = {u: normalize_embedding(e, norm) for u, e in e_emb.items()}
    t_emb = {u: normalize_embedding(e, norm) for u, e in t_emb.items()}
    spk_emb = {s: np.mean([e_emb[u] for u in utts], axis=0) for s, utts in audio.enroll.items()}
    return audio.trials, cosine_scores(audio.trials, spk_emb, t_emb)


def list_metrics(trials: tuple[Trial, ...], scores: np.ndarray, path: Path, metric_args: dict, where: str) -> dict:
    """Write the score file; the privacy metrics of the scores (or why the EER is undefined)."""
    write_scores(path, trials, scores)
    target = np.array([t.target for t in trials])
    try:
        m = asdict(all_metrics(scores[target], scores[~target], **metric_args))
        m["eer_ci"] = eer_interval(trials, scores)
    except MetricUndefined as err:
        m = {"error": f"EER undefined: {err}", "n_target": int(target.sum()), "n_nontarget": int((~target).sum())}
        log.warning("%s: %s", where, m["error"])
    warning = small_list_warning(m["n_target"], m["n_nontarget"])
    if warning:
        m["warning"] = warning
    m["scores"] = str(path)
    ci = f" (95 % interval {m['eer_ci'][0]:.1f}-{m['eer_ci'][1]:.1f})" if m.get("eer_ci") else ""
    log.info("%s: EER %s%s", where, f"{m['eer']:.3f} %" if "eer" in m else "undefined", ci)
    return m


def evaluate_asv(lists: list[TrialList], scenarios, stores: dict[str, EmbeddingStore | str],
                 data_root: str | Path, suffix: str, out_dir: str | Path, metric_args: dict,
                 norm: str = "none", skip_missing: bool = False) -> dict:
    """Score every list in every scenario; write ``scores/<scenario>/<list>``; return the results.

    ``stores`` maps "orig" / "anon" to an EmbeddingStore, or to a string saying why that model is
    unavailable (its scenarios are then skipped with that reason).
    """
    data_root, out_dir = Path(data_root), Path(out_dir)
    results: dict = {"trial_sets": {tl.name: {} for tl in lists}, "average": {}, "skipped": {}}
    for scenario in scenarios:
        store = stores.get(SCENARIOS[scenario][2], f"no {SCENARIOS[scenario][2]} model given")
        if isinstance(store, str):
            results["skipped"][scenario] = store
            log.warning("scenario %s skipped: %s", scenario, store)
            continue
        for tl in lists:
            trials, scores = score_list(tl, scenario, store, data_root, suffix, norm, skip_missing)
            results["trial_sets"][tl.name][scenario] = list_metrics(
                trials, scores, out_dir / "scores" / scenario / tl.name, metric_args, f"{tl.name} / {scenario}")
        results["average"][scenario] = average(results["trial_sets"], scenario)
    return results


def average(per_set: dict, scenario: str) -> dict:
    """Mean of each metric over the trial lists where it is defined (VPC: mean of the four EERs)."""
    rows = [r[scenario] for r in per_set.values() if scenario in r and "eer" in r[scenario]]
    if not rows:
        return {"error": "no trial list with a defined EER"}
    keys = ("eer", "min_dcf", "cllr", "min_cllr", "linkability")
    out = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    out["n_lists"] = len(rows)
    return out
