"""Verification metrics on score lists: EER (VPC 2024 algorithm), minDCF, Cllr / min-Cllr,
linkability.

All functions take ``tar`` (scores of target = same-speaker trials) and ``non`` (non-target
scores) as 1-d arrays; higher score = more likely the same speaker. A metric that is undefined
for the given scores (no target or no non-target trials) raises ``MetricUndefined``.

EER, exactly as VPC 2024 computes it: speechbrain's ``EER`` on ``torch.tensor`` of the score
lists, so scores, thresholds and rates are float32. Candidate thresholds are the unique scores and
the midpoints between neighbours; at threshold t, FRR = share of target scores <= t and FAR = share
of non-target scores > t; walking the thresholds upwards, t replaces the kept one only if its
float32 |FAR - FRR| is strictly below the kept one's, and the EER is (FAR + FRR) / 2 there. Scores
closer than float32 resolution therefore tie (target [1.0], non-target [0.999999999]: 50 %). Here
the rates are counted with ``searchsorted`` instead of speechbrain's loop over thresholds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class MetricUndefined(ValueError):
    """The metric cannot be computed from these trials (e.g. only target trials)."""


def _check(tar, non) -> tuple[np.ndarray, np.ndarray]:
    tar = np.asarray(tar, dtype=np.float64).ravel()
    non = np.asarray(non, dtype=np.float64).ravel()
    if len(tar) == 0 or len(non) == 0:
        have = "no target" if len(tar) == 0 else "no non-target"
        raise MetricUndefined(f"{have} trials ({len(tar)} target, {len(non)} non-target): "
                              "the error rates need both kinds")
    if not (np.all(np.isfinite(tar)) and np.all(np.isfinite(non))):
        raise MetricUndefined("scores contain NaN or inf")
    return tar, non


def eer_thresholds(tar: np.ndarray, non: np.ndarray) -> np.ndarray:
    """VPC candidate thresholds: unique scores plus midpoints of neighbours, ascending (in the
    scores' dtype)."""
    uniq = np.unique(np.concatenate([tar, non]))
    return np.sort(np.concatenate([uniq, (uniq[:-1] + uniq[1:]) / 2]))


def error_counts(tar: np.ndarray, non: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(#target <= t, #non-target > t) for every threshold t."""
    fr = np.searchsorted(np.sort(tar), thresholds, side="right")
    fa = len(non) - np.searchsorted(np.sort(non), thresholds, side="right")
    return fr, fa


def speechbrain_pick(far: np.ndarray, frr: np.ndarray) -> int:
    """speechbrain ``EER``'s threshold index: the first one is kept, and a later one replaces it
    only if its float32 |FAR - FRR| is strictly below the kept rates' |FAR - FRR| (in double)."""
    gaps = np.abs(far - frr).tolist()
    far, frr = far.tolist(), frr.tolist()
    best_i, best = 0, abs(far[0] - frr[0])
    for i in range(1, len(gaps)):
        if gaps[i] < best:
            best_i, best = i, abs(far[i] - frr[i])
    return best_i


def compute_eer(tar, non) -> tuple[float, float]:
    """(EER as a fraction in [0, 1], its threshold) by the VPC 2024 algorithm (float32)."""
    tar, non = (x.astype(np.float32) for x in _check(tar, non))
    thresholds = eer_thresholds(tar, non)
    fr, fa = error_counts(tar, non, thresholds)
    frr = fr.astype(np.float32) / np.float32(len(tar))
    far = fa.astype(np.float32) / np.float32(len(non))
    i = speechbrain_pick(far, frr)
    return (float(far[i]) + float(frr[i])) / 2, float(thresholds[i])


def min_dcf(tar, non, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Normalized minimum detection cost (NIST SRE): min over thresholds of
    (c_miss·P_miss·p + c_fa·P_fa·(1-p)) / min(c_miss·p, c_fa·(1-p))."""
    tar, non = _check(tar, non)
    thresholds = np.concatenate([[-np.inf], eer_thresholds(tar, non)])
    fr, fa = error_counts(tar, non, thresholds)
    cost = c_miss * fr / len(tar) * p_target + c_fa * fa / len(non) * (1 - p_target)
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


def cllr(tar, non) -> float:
    """Log-likelihood-ratio cost in bits, reading the scores as natural-log LRs (only
    meaningful for calibrated scores; cosine scores are not, see ``min_cllr``)."""
    tar, non = _check(tar, non)
    c_tar = np.mean(np.logaddexp(0.0, -tar))
    c_non = np.mean(np.logaddexp(0.0, non))
    return float((c_tar + c_non) / (2 * np.log(2)))


def pav(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pool-adjacent-violators: the non-decreasing weighted least-squares fit to ``values``."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values.astype(np.float64), weights.astype(np.float64)):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (v1, w1, n1), (v2, w2, n2) = blocks[-2], blocks[-1]
            blocks[-2:] = [[(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2]]
    return np.repeat([b[0] for b in blocks], [b[2] for b in blocks])


def min_cllr(tar, non) -> float:
    """Cllr after the optimal monotonic calibration: PAV of the labels ordered by score, with tied
    scores pooled into one point. This is the discrimination loss alone."""
    tar, non = _check(tar, non)
    scores = np.concatenate([tar, non])
    labels = np.concatenate([np.ones(len(tar)), np.zeros(len(non))])
    uniq, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    share = np.bincount(inverse, weights=labels) / counts  # target share per distinct score
    post = pav(share, counts)[inverse]  # calibrated P(target | score), per trial
    prior_logodds = np.log(len(tar) / len(non))
    with np.errstate(divide="ignore"):
        llr = np.log(post) - np.log1p(-post) - prior_logodds
    c_tar = np.mean(np.logaddexp(0.0, -llr[labels == 1]))
    c_non = np.mean(np.logaddexp(0.0, llr[labels == 0]))
    return float((c_tar + c_non) / (2 * np.log(2)))


LINKABILITY_MIN_BINS = 10


def linkability(tar, non, omega: float = 1.0, bins: int = 0) -> float:
    """Global linkability D<->sys of Gomez-Barrero et al. (2018), as the VPC toolkit and
    anonymization_metrics compute it (Maouche et al. 2020), in [0, 1].

    Score densities of mated (target) and non-mated trials are histograms over the common score
    range; per bin D(s) = 2·c(s) - 1 with c = ω·LR / (1 + ω·LR), LR = p(s|mated) / p(s|non-mated),
    set to 0 where ω·LR <= 1 and to 1 where only mated scores fall; D<->sys = ∫ D(s)·p(s|mated) ds.

    Two small-sample corrections to the reference code, which gives 0 below 20 mated scores
    whatever the scores: ``bins`` defaults to #mated/10 as there (at most 100) but at least
    ``LINKABILITY_MIN_BINS`` (it has 0 or 1 bin), and the integral is the exact one of the
    histogram, Σ D·p(s|mated)·width, where the reference's trapezoid rule over bin centres drops
    half of the first and last bins (0.5 for a perfect separation with every mated score in the
    top bin). From 100 mated scores the bins are the reference's, and the two differ by half the
    end bins' D·p(s|mated)·width.
    """
    tar, non = _check(tar, non)
    n_bins = bins if bins > 0 else min(max(len(tar) // 10, LINKABILITY_MIN_BINS), 100)
    lo, hi = min(tar.min(), non.min()), max(tar.max(), non.max())
    if hi <= lo:
        return 0.0
    edges = np.linspace(lo, hi, n_bins + 1)
    p_m = np.histogram(tar, bins=edges, density=True)[0]
    p_n = np.histogram(non, bins=edges, density=True)[0]
    lr = np.divide(p_m, p_n, out=np.ones_like(p_m), where=p_n > 0)
    d = np.where(omega * lr > 1, 2 * omega * lr / (1 + omega * lr) - 1, 0.0)
    d[(p_n == 0) & (p_m > 0)] = 1.0
    return float(np.sum(d * p_m * np.diff(edges)))


@dataclass(frozen=True)
class TrialMetrics:
    eer: float  # percent
    eer_threshold: float
    min_dcf: float
    cllr: float
    min_cllr: float
    linkability: float
    n_target: int
    n_nontarget: int


def all_metrics(tar, non, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0,
                omega: float = 1.0) -> TrialMetrics:
    eer, thr = compute_eer(tar, non)
    return TrialMetrics(
        eer=100.0 * eer,
        eer_threshold=thr,
        min_dcf=min_dcf(tar, non, p_target, c_miss, c_fa),
        cllr=cllr(tar, non),
        min_cllr=min_cllr(tar, non),
        linkability=linkability(tar, non, omega),
        n_target=len(np.ravel(tar)),
        n_nontarget=len(np.ravel(non)),
    )


def read_scores(path) -> tuple[list[tuple[str, str, float, bool]], np.ndarray, np.ndarray]:
    """Score file lines ``<enroll-spk> <utt> <score> target|nontarget`` -> (rows, tar, non)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4 or parts[3] not in ("target", "nontarget"):
                raise ValueError(f"{path}:{lineno}: expected '<enroll-spk> <utt> <score> target|nontarget', "
                                 f"got {line.strip()!r}")
            try:
                score = float(parts[2])
            except ValueError:
                raise ValueError(f"{path}:{lineno}: score {parts[2]!r} is not a number") from None
            rows.append((parts[0], parts[1], score, parts[3] == "target"))
    tar = np.array([r[2] for r in rows if r[3]], dtype=np.float64)
    non = np.array([r[2] for r in rows if not r[3]], dtype=np.float64)
    return rows, tar, non
