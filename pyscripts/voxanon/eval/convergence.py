"""Has an attacker converged? Its validation EER after every epoch of stage 6, and the warning.

Validation trials come from the attacker's own held-out utterances (the 10 % valid split of its
training speakers): every validation utterance against every speaker's mean of the *other*
validation utterances (target when the speaker is its own), cosine of L2-normalized embeddings.
A speaker needs two validation utterances to give target trials.

An attacker whose validation EER still fell by more than ``margin`` points over its last
``epochs`` epochs had not converged: a longer-trained one would do better, so its EER on the
anonymized trials overstates privacy.
"""
from __future__ import annotations

import numpy as np

from voxanon.eval.eer import compute_eer


def validation_eer(emb: dict[str, np.ndarray], utt2spk: dict[str, str]) -> float | None:
    """EER % of the validation trials of ``emb`` (utt -> embedding); None without both kinds of trial."""
    utts = sorted(emb)
    spks = sorted({utt2spk[u] for u in utts})
    if len(spks) < 2:
        return None
    e = np.stack([emb[u] for u in utts]).astype(np.float64)
    e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    own = np.array([spks.index(utt2spk[u]) for u in utts])
    sums = np.zeros((len(spks), e.shape[1]))
    np.add.at(sums, own, e)
    counts = np.bincount(own, minlength=len(spks))

    def cos(a, b):
        return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)

    non = cos(e[:, None, :], sums[None, :, :])[own[:, None] != np.arange(len(spks))[None, :]]
    has_others = counts[own] >= 2
    tar = cos(e[has_others], sums[own[has_others]] - e[has_others])
    if not len(tar) or not len(non):
        return None
    return 100 * compute_eer(tar, non)[0]


def convergence(history: list[dict], margin: float, epochs: int) -> dict:
    """``{"valid_eer": [per epoch], "fell_by", "epochs", "margin", "converged"}``; ``converged`` is
    None when fewer than ``epochs`` + 1 epochs have a validation EER."""
    eers = [h.get("valid_eer") for h in history]
    tail = eers[-epochs - 1:]
    fell = None if len(tail) < epochs + 1 or None in tail else tail[0] - tail[-1]
    return {"valid_eer": eers, "fell_by": fell, "epochs": epochs, "margin": margin,
            "converged": None if fell is None else fell <= margin}


def warning(attacker: str, conv: dict) -> str | None:
    """The console / results.json warning for an attacker that had not converged, else None."""
    if conv.get("converged") is not False:
        return None
    return (f"{attacker}: this attacker had not converged: the EER overstates privacy (its validation EER "
            f"fell by {conv['fell_by']:.2f} points over its last {conv['epochs']} epochs, more than "
            f"asv.convergence_margin {conv['margin']}; train longer: asv.epochs)")
