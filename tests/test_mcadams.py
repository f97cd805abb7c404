"""McAdams anonymizer (VPC 2024 B2): exact length, formants moved as φ -> φ^α, content kept, α seeded."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from librosa import lpc as librosa_lpc
from scipy.signal import lfilter

from voxanon.anonymize.base import BuildContext, Utterance, build_system
from voxanon.anonymize.mcadams import mcadams, mcadams_poles, poly_from_roots, poly_roots
from voxanon.audio import Audio, read_audio
from voxanon.config import ConfigError

SR = 16000
TIMIT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "timit"


def vowel(formants_hz=(500.0, 1500.0, 2500.0), f0=120.0, seconds=1.0, seed=0) -> np.ndarray:
    """A pulse train through resonators at ``formants_hz`` (bandwidth 80 Hz), plus a little noise."""
    n = int(seconds * SR)
    x = np.zeros(n)
    x[:: int(SR / f0)] = 1.0
    x += 1e-3 * np.random.default_rng(seed).standard_normal(n)
    for f in formants_hz:
        r, phi = np.exp(-np.pi * 80.0 / SR), 2 * np.pi * f / SR
        x = lfilter([1.0], [1.0, -2 * r * np.cos(phi), r * r], x)
    return 0.5 * x / np.abs(x).max()


def formants(x: np.ndarray, order: int = 20) -> np.ndarray:
    """Sorted frequencies (Hz) of the sharp LPC poles (|z| > 0.9) of the signal's middle 40 ms."""
    mid = len(x) // 2
    frame = x[mid - 320: mid + 320] * np.hanning(640)
    roots = poly_roots(librosa_lpc(frame[None], order=order, axis=1))[0]
    sharp = roots[(roots.imag > 0) & (np.abs(roots) > 0.9)]
    return np.sort(np.angle(sharp) * SR / (2 * np.pi))


def anonymizer(**params):
    return build_system("mcadams", params, BuildContext(seed=1986, device="cpu", work_dir=Path("/nonexistent")))


def utt(x: np.ndarray, utt_id: str = "spk1-utt1") -> Utterance:
    return Utterance(utt_id, "spk1", Audio(x.astype(np.float32), SR))


@pytest.mark.parametrize("n", [1, 100, 319, 320, 321, 16000, 16001, 23457])
def test_length_is_kept_exactly(n):
    x = vowel(seconds=1.5)[:n]
    out = anonymizer(alpha=0.7)(utt(x))
    assert out.audio.samples.shape == (n,)
    assert out.audio.sample_rate == SR
    assert np.all(np.isfinite(out.audio.samples))


def test_alpha_one_reconstructs_the_input():
    """With α = 1 only analysis, residual filtering and overlap-add remain: the input comes back,
    scaled by B2's window sum (symmetric Hann over K: 1.003 on average, rippling by 0.5 %), except
    in the first and last 10 ms (one window: a fade) and a tail of under one shift (silent)."""
    x = vowel()
    y = mcadams(x, SR, 1.0)
    end = (len(x) - 320) // 160 * 160 + 320  # past the last complete frame
    inner = slice(160, end - 160)
    assert np.max(np.abs(y[inner] - x[inner])) < 0.01 * np.abs(x).max()
    assert np.all(y[end:] == 0)
    assert np.abs(y[:160]).max() < np.abs(x[:160]).max()  # faded in


def test_formants_move_to_phi_power_alpha():
    x = vowel()
    alpha = 0.8
    y = anonymizer(alpha=alpha)(utt(x)).audio.samples.astype(np.float64)
    before, after = formants(x), formants(y)
    expected = (2 * np.pi * before / SR) ** alpha * SR / (2 * np.pi)
    assert len(before) >= 3
    # Every input formant's moved frequency shows up as an output formant (within 40 Hz).
    for f in expected[expected < 7000]:
        assert np.min(np.abs(after - f)) < 40, (before, after, expected)
    # and the spectral envelope really changed: F1 500 -> ~690 Hz
    assert abs(after[0] - before[0]) > 150


def test_conjugate_symmetry_and_real_poles():
    rng = np.random.default_rng(3)
    a = librosa_lpc(rng.standard_normal((50, 320)) * np.hanning(320), order=20, axis=1)
    roots = poly_roots(a)
    moved = mcadams_poles(roots, 0.6)
    real = roots.imag == 0
    assert np.array_equal(moved[real].real, roots[real].real)
    assert np.allclose(np.abs(moved), np.abs(roots))  # magnitudes kept: the filter stays stable
    # the product of (1 - r z^-1) over the moved poles is a real polynomial
    for f in range(len(moved)):
        assert np.max(np.abs(np.poly(moved[f]).imag)) < 1e-9
    assert np.allclose(poly_from_roots(roots), a, atol=1e-8)


def test_energy_envelope_is_kept():
    """Content proxy: the 20 ms energy envelope of a syllabic signal (bursts and pauses) survives."""
    x = vowel(seconds=2.0)
    gate = (np.sin(2 * np.pi * 3.0 * np.arange(len(x)) / SR) > 0).astype(float)
    x = x * gate
    y = anonymizer()(utt(x)).audio.samples.astype(np.float64)

    def envelope(s):
        return np.log(np.square(s[: len(s) // 320 * 320]).reshape(-1, 320).mean(axis=1) + 1e-8)

    assert np.corrcoef(envelope(x), envelope(y))[0, 1] > 0.9
    assert np.isclose(np.abs(y).max(), 32766 / 32768, rtol=1e-6)  # B2's level: full scale


def test_alpha_is_drawn_per_utterance_and_reproducible():
    x = vowel(seconds=0.3)
    first = [anonymizer()(utt(x, f"u{i}")).record["alpha"] for i in range(20)]
    again = [anonymizer()(utt(x, f"u{i}")).record["alpha"] for i in range(20)]
    assert first == again
    assert all(0.5 <= a <= 0.9 for a in first)
    assert len(set(first)) == 20
    other = build_system("mcadams", {}, BuildContext(seed=7, device="cpu", work_dir=Path("/nonexistent")))
    assert other(utt(x, "u0")).record["alpha"] != first[0]
    assert anonymizer(alpha=0.65)(utt(x, "u3")).record == {"alpha": 0.65}
    assert {anonymizer(alpha_range=[0.7, 0.7])(utt(x, f"u{i}")).record["alpha"] for i in range(3)} == {0.7}


@pytest.mark.parametrize("params, message", [
    ({"alpha": 0.0}, "must be in"),
    ({"alpha_range": [0.9, 0.5]}, "low <= high"),
    ({"shift_ms": 30.0}, "shift_ms"),
    ({"alfa": 0.8}, "unknown key"),
])
def test_bad_params_are_rejected(params, message):
    with pytest.raises(ConfigError, match=message):
        anonymizer(**params)


def test_silence_and_digital_zero():
    x = np.zeros(8000)
    x[3000:4000] = vowel(seconds=0.1)[:1000]
    y = anonymizer()(utt(x)).audio.samples
    # B2 adds float32 eps to every sample: the silence before the burst is eps-level, below one
    # 16-bit step after normalization to the burst's peak
    assert np.all(np.isfinite(y)) and np.abs(y[:2500]).max() < 0.5 / 32768
    assert np.all(anonymizer()(utt(np.zeros(500))).audio.samples == 0)  # not eps noise at full scale


@pytest.mark.skipif(not TIMIT.is_dir(), reason="../shared/data/timit not present")
def test_real_speech_envelope_changes_and_energy_envelope_kept():
    entry = (TIMIT / "wav.scp").read_text().split("\n")[0].split()
    x = read_audio(entry[1], TIMIT).samples.astype(np.float64)
    y = anonymizer()(utt(x, entry[0])).audio.samples.astype(np.float64)
    assert len(y) == len(x)

    def frames(s):
        s = s[: len(s) // 320 * 320].reshape(-1, 320)
        return s * np.hanning(320)

    fx, fy = frames(x), frames(y)
    energy_x, energy_y = np.log((fx ** 2).mean(1) + 1e-9), np.log((fy ** 2).mean(1) + 1e-9)
    assert np.corrcoef(energy_x, energy_y)[0, 1] > 0.9
    # log spectral envelope distance (LPC order 20) on voiced frames, vs. a tiny α change
    voiced = energy_x > np.percentile(energy_x, 50)

    def envelopes(f):
        a = librosa_lpc(f[voiced], order=20, axis=1)
        return np.log(np.abs(np.fft.rfft(a, 512)) ** -2)

    y_same = mcadams(x, SR, 0.99)
    d_anon = np.mean((envelopes(fx) - envelopes(fy)) ** 2)
    d_small = np.mean((envelopes(fx) - envelopes(frames(y_same))) ** 2)
    assert d_anon > 10 * d_small


def test_long_input_memory_is_per_block_with_the_same_output(monkeypatch):
    """A 2-hour utterance must not need the whole utterance's FFTs at once (~25 GB): the analysis
    goes block by block, and the blocks give exactly the one-pass output."""
    import tracemalloc

    from voxanon.anonymize import mcadams as mc

    x = (0.1 * np.random.default_rng(0).standard_normal(60 * 16000)).astype(np.float32)
    tracemalloc.start()
    blocked = mc.mcadams(x, 16000, 0.8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100e6, f"{peak / 1e6:.0f} MB for 60 s"  # all at once: ~200 MB, growing with the length
    monkeypatch.setattr(mc, "BLOCK_FRAMES", 10 ** 9)
    np.testing.assert_array_equal(blocked, mc.mcadams(x, 16000, 0.8))


def b2_reference(samples: np.ndarray, freq: int, alpha: float, order: int = 20) -> np.ndarray:
    """The VPC 2024 release's B2 (``anonym_v2``, then its int16 write) step by step, one frame at a
    time: librosa's framing and Burg LPC, scipy's tf2zpk and lfilter, numpy's poly."""
    import librosa

    eps = np.finfo(np.float32).eps
    samples = samples.astype(np.float32) + eps
    winlen, shift = int(np.floor(0.02 * freq)), int(np.floor(0.01 * freq))
    hann = np.hanning(winlen)
    win = np.sqrt(hann / (np.sum(hann) / shift))
    frames = librosa.util.frame(samples, frame_length=winlen, hop_length=shift).T * win
    out = np.zeros_like(samples)
    for m, frame in enumerate(frames):
        a = librosa.lpc(frame + eps, order=order)
        poles = scipy.signal.tf2zpk(np.array([1]), a)[1]
        angles = np.angle(poles)
        moved = angles.copy()
        complex_pole = ~np.isreal(poles)
        moved[complex_pole & (angles < 0)] = -((-angles[complex_pole & (angles < 0)]) ** alpha)
        moved[complex_pole & (angles > 0)] = angles[complex_pole & (angles > 0)] ** alpha
        new_a = np.real(np.poly(np.abs(poles) * np.exp(1j * moved)))
        res = lfilter(a, np.array(1), frame)
        out[m * shift: m * shift + winlen] += lfilter(np.array([1]), new_a, res) * win
    return (out / np.max(np.abs(out)) * (np.iinfo(np.int16).max - 1)).astype(np.int16)


@pytest.mark.parametrize("source, rate", [("vowel", SR), ("noise", SR), ("speech", SR), ("noise", 8000),
                                          ("noise", 22050)])
def test_equals_the_vpc2024_b2_per_frame_computation(source, rate):
    """voxanon's batched McAdams, written as 16-bit PCM, against B2 computed frame by frame with
    the libraries B2 calls: the same 16-bit samples."""
    import soundfile as sf

    if source == "speech":
        if not TIMIT.is_dir():
            pytest.skip("../shared/data/timit not present")
        x = read_audio((TIMIT / "wav.scp").read_text().split()[1], TIMIT).samples
    else:
        x = vowel(seconds=1.3) if source == "vowel" else 0.1 * np.random.default_rng(1).standard_normal(20000)
    x = x.astype(np.float32)
    ref = b2_reference(x, rate, 0.73)
    y = anonymizer(alpha=0.73)(Utterance("spk1-utt1", "spk1", Audio(x, rate))).audio.samples
    buf = io.BytesIO()
    sf.write(buf, y, rate, subtype="PCM_16", format="WAV")
    ours = sf.read(io.BytesIO(buf.getvalue()), dtype="int16")[0]
    assert ours.shape == ref.shape == x.shape
    np.testing.assert_array_equal(ours, ref)
    assert np.abs(y).max() == pytest.approx(32766 / 32768, rel=1e-6)
