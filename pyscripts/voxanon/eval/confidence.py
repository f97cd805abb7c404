"""How far an EER can be trusted: a speaker-level bootstrap interval and a small-list warning.

The VPC 2024 toolkit reports no interval, so voxanon uses a documented, seeded bootstrap over
speakers (trials of one enrolled speaker are not independent, so resampling trials alone would
give intervals that are too narrow). Each of ``RESAMPLES`` resamples draws the trial list's
enrolled speakers with replacement and takes every trial of each drawn speaker (target and
non-target); a resample without target or without non-target trials is drawn again. The interval
is the 2.5th and 97.5th percentile of the resampled EERs (``LEVEL`` = 95 %), seed ``SEED``.

The resampled EERs use the threshold where |FAR - FRR| is smallest, in float64, without the VPC's
float32 tie rule (``voxanon.eval.eer``): the interval is about the spread, not the last digit.

A list with fewer than ``MIN_TRIALS`` target or non-target trials is flagged: its EER moves in
steps of 100 / #target (or 100 / #non-target) percent, which the interval shows too.
"""
from __future__ import annotations

import numpy as np

from voxanon.data.kaldi import Trial

RESAMPLES = 1000
LEVEL = 95.0
SEED = 0
MIN_TRIALS = 100
MAX_DRAWS = 20  # redraws of a resample that lacks target or non-target trials
MIN_SPEAKERS = 3  # with 2 enrolled speakers only the draws of both have non-targets: no spread to see


def fast_eer(tar: np.ndarray, non: np.ndarray) -> float:
    """EER in percent: the mean of FAR and FRR at the score threshold where they are closest."""
    thresholds = np.unique(np.concatenate([tar, non]))
    frr = np.searchsorted(np.sort(tar), thresholds, side="right") / len(tar)
    far = 1.0 - np.searchsorted(np.sort(non), thresholds, side="right") / len(non)
    i = int(np.argmin(np.abs(far - frr)))
    return 50.0 * (far[i] + frr[i])


def eer_interval(trials: tuple[Trial, ...], scores: np.ndarray, resamples: int = RESAMPLES,
                 seed: int = SEED) -> list[float] | None:
    """[low, high] EER percent (``LEVEL`` % bootstrap over enrolled speakers), or None when the
    list has fewer than ``MIN_SPEAKERS`` enrolled speakers (too few to resample)."""
    by_spk: dict[str, list[int]] = {}
    for i, t in enumerate(trials):
        by_spk.setdefault(t.enroll_spk, []).append(i)
    groups = [np.array(v) for v in by_spk.values()]
    if len(groups) < MIN_SPEAKERS:
        return None
    target = np.array([t.target for t in trials])
    scores = np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng(seed)
    eers = []
    for _ in range(resamples):
        for _ in range(MAX_DRAWS):
            idx = np.concatenate([groups[k] for k in rng.integers(0, len(groups), len(groups))])
            tar, non = scores[idx][target[idx]], scores[idx][~target[idx]]
            if len(tar) and len(non):
                eers.append(fast_eer(tar, non))
                break
    if not eers:
        return None
    tail = (100.0 - LEVEL) / 2
    low, high = np.percentile(eers, [tail, 100.0 - tail])
    return [float(low), float(high)]


def small_list_warning(n_target: int, n_nontarget: int) -> str | None:
    """Why an EER on so few trials means little, or None when there are enough."""
    if n_target >= MIN_TRIALS and n_nontarget >= MIN_TRIALS:
        return None
    step = 100.0 / max(1, min(n_target, n_nontarget))
    return (f"only {n_target} target / {n_nontarget} non-target trials (fewer than {MIN_TRIALS}): "
            f"the EER moves in steps of up to {step:.1f} points; read it with its interval")
