"""McAdams-coefficient anonymization (VoicePrivacy 2024 baseline B2); no model weights.

Each 20 ms frame (10 ms shift) is analysed by linear prediction (order 20). The angles φ of the
complex LPC poles are moved to φ^α (α < 1 raises low formants and lowers high ones, which
shifts the formant pattern that carries much of a speaker's identity); magnitudes and real
poles stay. The frame's LPC residual, which keeps pitch and timing, excites the modified
all-pole filter, and the frames are put back by overlap-add. The output has exactly the input's
length and the input's peak level.

α is fixed (``alpha``) or drawn per utterance uniformly from ``alpha_range`` (B2 draws it from
[0.5, 0.9]); the record holds the α used.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import get_window

from voxanon.anonymize.base import BuildContext, Converted, Utterance
from voxanon.anonymize.params import McAdamsParams as Params
from voxanon.audio import Audio
from voxanon.rng import utt_rng


def frames_of(x: np.ndarray, length: int, shift: int) -> np.ndarray:
    """(num_samples,) -> (num_frames, length) view of frames every ``shift`` samples."""
    num = 1 + (len(x) - length) // shift
    return np.lib.stride_tricks.as_strided(x, (num, length), (x.strides[0] * shift, x.strides[0]), writeable=False)


def lpc(frames: np.ndarray, order: int) -> np.ndarray:
    """Autocorrelation-method LPC. frames (F, N) -> A (F, order + 1), A[:, 0] = 1, so that
    frame[n] ≈ -sum_k A[k] frame[n - k] (k >= 1). Silent frames get A = [1, 0, ..., 0]."""
    n_fft = 1 << int(np.ceil(np.log2(2 * frames.shape[1])))
    spec = np.fft.rfft(frames, n_fft)
    r = np.fft.irfft(spec.real ** 2 + spec.imag ** 2, n_fft)[:, : order + 1]
    a = np.zeros((len(frames), order + 1))
    a[:, 0] = 1.0
    voiced = r[:, 0] > 1e-10
    r = r[voiced]
    r[:, 0] *= 1.0 + 1e-9  # white-noise correction: keeps near-singular frames solvable
    a[voiced] = levinson(r, order)
    return a


def levinson(r: np.ndarray, order: int) -> np.ndarray:
    """Levinson-Durbin on autocorrelations r (F, >= order + 1), all frames at once -> (F, order + 1)
    monic predictors: the solution of the Toeplitz normal equations (scipy's solve_toeplitz per
    frame gives the same to rounding, tests/test_mcadams.py), without a Python call per frame."""
    a = np.zeros((len(r), order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        k = -(a[:, :i] * r[:, i:0:-1]).sum(axis=1) / err
        a[:, 1:i + 1] += k[:, None] * a[:, i - 1::-1]
        err *= 1.0 - k * k
    return a


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


BLOCK_FRAMES = 1000  # frames analysed at once (10 s): the FFTs and companion matrices of a
# 2-hour utterance would take ~25 GB at once; per block they take ~35 MB


def mcadams(x: np.ndarray, sample_rate: int, alpha: float, order: int = 20, frame_ms: float = 20.0,
            shift_ms: float = 10.0) -> np.ndarray:
    """Transform signal x (num_samples,) with McAdams coefficient alpha; same length out."""
    length = int(round(frame_ms * sample_rate / 1000))
    shift = int(round(shift_ms * sample_rate / 1000))
    # sqrt-Hann at analysis and synthesis: the product is a Hann window, whose periodic form
    # sums to a constant at 50 % overlap; the general case is normalized below.
    window = np.sqrt(get_window("hann", length))
    num = max(1, int(np.ceil((len(x) + length) / shift)))
    padded = np.zeros((num - 1) * shift + length)
    padded[length // 2: length // 2 + len(x)] = x  # half a frame of lead-in: edges get full weight
    frames = frames_of(padded, length, shift)  # a view: windowed block by block below
    out = np.zeros_like(padded)
    weight = np.zeros_like(padded)
    for first in range(0, len(frames), BLOCK_FRAMES):  # memory per block, not per utterance
        block = frames[first: first + BLOCK_FRAMES] * window
        a = lpc(block, order)
        new_a = poly_from_roots(mcadams_poles(poly_roots(a), alpha))
        synth = all_pole_frames(new_a, fir_frames(a, block)) * window  # residual -> the new filter
        for i in range(len(block)):
            start = (first + i) * shift
            out[start: start + length] += synth[i]
            weight[start: start + length] += window ** 2
    out = out / np.maximum(weight, 1e-3)
    return out[length // 2: length // 2 + len(x)]


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
        x = utt.audio.samples.astype(np.float64)
        alpha = self.alpha_for(utt.id)
        p = self.params
        y = mcadams(x, utt.audio.sample_rate, alpha, p.lpc_order, p.frame_ms, p.shift_ms)
        peak_in, peak_out = np.abs(x).max(initial=0.0), np.abs(y).max(initial=0.0)
        if peak_out > 0:
            y *= peak_in / peak_out  # keep the input's level; the new filter's gain differs
        return Converted(Audio(y.astype(np.float32), utt.audio.sample_rate), {"alpha": round(alpha, 6)})


def build(params: Params, ctx: BuildContext) -> McAdams:
    return McAdams(params, ctx.seed)
