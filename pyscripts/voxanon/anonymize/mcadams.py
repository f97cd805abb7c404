"""McAdams-coefficient anonymization: the VoicePrivacy 2024 baseline B2 (``anonym_v2`` of the
release's ``anonymise_dir_mcadams_rand_seed.py``); no model weights.

Each 20 ms frame (10 ms shift, square-root Hann window scaled so that analysis x synthesis
overlap-adds to ~1) is analysed by linear prediction of order 20 with Burg's method
(``librosa.lpc``, as B2). The angles φ of the complex LPC poles are moved to φ^α (α < 1 raises low
formants and lowers high ones, which shifts the formant pattern that carries much of a speaker's
identity); magnitudes and real poles stay. The frame's LPC residual, which keeps pitch and timing,
excites the modified all-pole filter, and the frames are overlap-added into a float32 signal of
the input's length, peak-normalized to B2's 16-bit full scale. As B2: float32 eps is added to the
samples (and again before the LPC), only complete frames are analysed (the first and last 10 ms
fade in and out, a tail under one shift stays silent).

Deviations, each for a reason (docs/systems.md#mcadams-vpc-2024-b2): α comes from the seed and the
utterance id, not from one generator per data dir in ``wav.scp`` order; an input shorter than a
frame is padded to one (B2 fails on it); an all-zero input stays zero (B2 would scale eps noise to
full scale); poles, the new polynomial and the filters run batched over frames (equal to B2's
per-frame numpy / scipy calls to float rounding, tests/test_mcadams.py).
"""
from __future__ import annotations

import librosa
import numpy as np

from voxanon.anonymize.base import BuildContext, Converted, Utterance
from voxanon.anonymize.params import McAdamsParams as Params
from voxanon.audio import Audio
from voxanon.rng import utt_rng


def frames_of(x: np.ndarray, length: int, shift: int) -> np.ndarray:
    """(num_samples,) -> (num_frames, length) view of frames every ``shift`` samples."""
    num = 1 + (len(x) - length) // shift
    return np.lib.stride_tricks.as_strided(x, (num, length), (x.strides[0] * shift, x.strides[0]), writeable=False)


def fir_frames(b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each row of x (F, N) through its own FIR filter b (F, p + 1), zero initial state:
    ``lfilter(b[f], [1], x[f])`` for every f at once."""
    y = x * b[:, :1]
    for k in range(1, b.shape[1]):
        y[:, k:] += b[:, k: k + 1] * x[:, :-k]
    return y


def all_pole_frames(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each row of x (F, N) through its own all-pole filter 1 / a (F, p + 1), a[:, 0] = 1, zero
    initial state: ``lfilter([1], a[f], x[f])`` for every f at once. The recursion runs over the
    N samples of a frame; each step serves every frame."""
    p = a.shape[1] - 1
    y = np.zeros((x.shape[0], x.shape[1] + p))  # p leading zeros: the initial state
    taps = a[:, :0:-1]  # (F, p): a[p] .. a[1], to meet y[n - p] .. y[n - 1]
    for n in range(x.shape[1]):
        y[:, n + p] = x[:, n] - np.einsum("fk,fk->f", taps, y[:, n: n + p])
    return y[:, p:]


def poly_roots(a: np.ndarray) -> np.ndarray:
    """Roots of each monic polynomial A[f] (F, p + 1) as (F, p) complex, via the batched
    eigenvalues of companion matrices (LAPACK returns exact conjugate pairs for real input)."""
    f, p = a.shape[0], a.shape[1] - 1
    comp = np.zeros((f, p, p))
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, p), np.arange(p - 1)] = 1.0
    return np.linalg.eigvals(comp)


def poly_from_roots(roots: np.ndarray) -> np.ndarray:
    """(F, p) roots -> (F, p + 1) real monic coefficients, batched over frames."""
    f, p = roots.shape
    a = np.zeros((f, p + 1), dtype=complex)
    a[:, 0] = 1.0
    for k in range(p):  # multiply by (1 - r z^-1)
        a[:, 1:] = a[:, 1:] - roots[:, k: k + 1] * a[:, :-1]
    return a.real


def mcadams_poles(roots: np.ndarray, alpha: float) -> np.ndarray:
    """φ -> sign(φ)|φ|^α for complex poles (a conjugate pair stays a conjugate pair); real
    poles (φ = 0 or π) are left alone."""
    angle = np.angle(roots)
    complex_pole = roots.imag != 0
    new_angle = np.where(complex_pole, np.sign(angle) * np.abs(angle) ** alpha, angle)
    return np.abs(roots) * np.exp(1j * new_angle)


BLOCK_FRAMES = 1000  # frames analysed at once (10 s): a 2-hour utterance's frames and companion
# matrices at once would take GBs; per block they take ~35 MB
EPS = np.finfo(np.float32).eps  # B2's guard against silent frames


def mcadams(x: np.ndarray, sample_rate: int, alpha: float, order: int = 20, frame_ms: float = 20.0,
            shift_ms: float = 10.0) -> np.ndarray:
    """B2's ``anonym_v2`` on signal x (num_samples,): float32 of the same length, not normalized."""
    length = int(np.floor(frame_ms * 0.001 * sample_rate))
    shift = int(np.floor(shift_ms * 0.001 * sample_rate))
    samples = np.zeros(max(len(x), length), dtype=np.float32)  # B2 reads float32
    samples[: len(x)] = x
    samples += EPS
    hann = np.hanning(length)
    window = np.sqrt(hann / (hann.sum() / shift))
    frames = frames_of(samples, length, shift)  # complete frames only, a view
    out = np.zeros_like(samples)  # float32, as B2's overlap-add buffer
    for first in range(0, len(frames), BLOCK_FRAMES):  # memory per block, not per utterance
        block = frames[first: first + BLOCK_FRAMES] * window  # float64 from here, as B2
        a = librosa.lpc(block + EPS, order=order, axis=1)
        new_a = poly_from_roots(mcadams_poles(poly_roots(a), alpha))
        synth = all_pole_frames(new_a, fir_frames(a, block)) * window  # residual -> the new filter
        for i, frame in enumerate(synth):
            start = (first + i) * shift
            out[start: start + length] += frame
    return out[: len(x)]


class McAdams:
    def __init__(self, params: Params, seed: int):
        self.params = params
        self.seed = seed

    def alpha_for(self, utt_id: str) -> float:
        if self.params.alpha is not None:
            return self.params.alpha
        low, high = self.params.alpha_range
        return float(utt_rng(self.seed, utt_id, "mcadams").uniform(low, high))

    def __call__(self, utt: Utterance) -> Converted:
        x = utt.audio.samples
        alpha = self.alpha_for(utt.id)
        p = self.params
        y = mcadams(x, utt.audio.sample_rate, alpha, p.lpc_order, p.frame_ms, p.shift_ms)
        peak = np.abs(y).max(initial=0.0)
        # B2's level: every utterance at full scale; silence (or a few samples under the window's
        # zero end) stays silent instead of eps noise scaled up or a division by zero
        if np.any(x) and peak > 0:
            # B2's int16 values (scaled to 32766, truncated toward zero), exactly: the 16-bit
            # writer floors, which would move every negative sample one step down
            y = np.trunc(y / peak * np.float32(32766)) / np.float32(32768)
        else:
            y = np.zeros_like(y)
        return Converted(Audio(y.astype(np.float32), utt.audio.sample_rate), {"alpha": round(alpha, 6)})


def build(params: Params, ctx: BuildContext) -> McAdams:
    return McAdams(params, ctx.seed)
