"""EER (VPC 2024 algorithm: speechbrain's EER as the VPC calls it) and the other verification
metrics, against speechbrain itself and independent code."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from voxanon.bin import compute_eer as cli
from voxanon.eval.eer import MetricUndefined, all_metrics, cllr, compute_eer, linkability, min_cllr, min_dcf


def vpc_eer(tar, non) -> tuple[float, float]:
    """The VPC 2024 figure: ``EER(torch.tensor(positive_scores), torch.tensor(negative_scores))``
    on lists of Python floats (float32 tensors)."""
    from speechbrain.utils.metric_stats import EER

    torch.set_num_threads(1)  # its per-threshold loop crawls with contended OpenMP threads
    return EER(torch.tensor([float(x) for x in tar]), torch.tensor([float(x) for x in non]))


@pytest.mark.parametrize("seed", range(6))
def test_eer_equals_speechbrain_on_normal_scores(seed):
    rng = np.random.default_rng(seed)
    tar = rng.normal(rng.uniform(0, 2), 1, rng.integers(5, 80))
    non = rng.normal(0, 1, rng.integers(5, 200))
    if seed % 2:  # many ties
        tar, non = np.round(tar, 1), np.round(non, 1)
    assert compute_eer(tar, non) == vpc_eer(tar, non)


@pytest.mark.parametrize("seed", range(8))
def test_eer_equals_speechbrain_on_near_one_cosine_scores(seed):
    """Cosine-like scores near 1 with 1e-5 gaps: float32 ties and rounded rates decide the figure."""
    rng = np.random.default_rng(100 + seed)
    tar = 1 - rng.integers(0, 30, rng.integers(2, 40)) * 1e-5 - rng.uniform(0, 1e-7, 1)
    non = 1 - rng.integers(5, 60, rng.integers(2, 90)) * 1e-5
    assert compute_eer(tar, non) == vpc_eer(tar, non)


@pytest.mark.parametrize("tar, non, eer", [
    ([1.0], [0.999999999], 0.5),  # one float32 value: a tie
    ([0.2, 0.9], [0.1, 0.4, 0.6], 5 / 12),  # strict < on float32 |FAR - FRR| keeps the later threshold
])
def test_eer_issue_examples(tar, non, eer):
    assert compute_eer(tar, non) == vpc_eer(tar, non)
    assert compute_eer(tar, non)[0] == pytest.approx(eer, abs=1e-7)


def test_min_dcf_matches_speechbrain():
    from speechbrain.utils.metric_stats import minDCF

    rng = np.random.default_rng(11)
    tar = rng.normal(1, 1, 60).astype(np.float32)
    non = rng.normal(-0.5, 1, 300).astype(np.float32)
    sb_dcf, _ = minDCF(torch.tensor(tar), torch.tensor(non), p_target=0.01)
    assert abs(min_dcf(tar, non, p_target=0.01) * 0.01 - sb_dcf) < 1e-6  # ours is normalized


def test_eer_edge_cases():
    assert compute_eer([2, 3], [0, 1])[0] == 0.0
    assert compute_eer([0, 1], [2, 3])[0] == 1.0
    assert compute_eer([1.0, 1.0], [1.0, 1.0])[0] == 0.5
    with pytest.raises(MetricUndefined, match="no non-target"):
        compute_eer([1.0, 2.0], [])
    with pytest.raises(MetricUndefined, match="no target"):
        all_metrics([], [0.5])


def test_min_cllr_and_linkability_limits():
    from sklearn.isotonic import IsotonicRegression

    assert min_cllr([2.0, 3.0], [0.0, 1.0]) == pytest.approx(0.0, abs=1e-12)
    assert linkability(np.arange(50, 100.0), np.arange(0, 5.0)) == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    same = rng.normal(0, 1, 4000)
    assert 0.0 < linkability(same[:2000], same[2000:]) < 0.15
    assert 0.97 < min_cllr(same[:2000], same[2000:]) <= 1.0 + 1e-9
    # min-Cllr against scikit-learn's isotonic regression (continuous scores, no ties)
    tar, non = rng.normal(1.5, 1, 400), rng.normal(0, 1, 900)
    s = np.concatenate([tar, non])
    y = np.concatenate([np.ones(400), np.zeros(900)])
    p = IsotonicRegression(y_min=0, y_max=1).fit(s, y).predict(s)
    with np.errstate(divide="ignore"):
        llr = np.log(p) - np.log1p(-p) - np.log(400 / 900)
    ref = (np.mean(np.logaddexp(0, -llr[y == 1])) + np.mean(np.logaddexp(0, llr[y == 0]))) / (2 * np.log(2))
    assert min_cllr(tar, non) == pytest.approx(ref, abs=1e-9)
    assert min_cllr(tar, non) <= cllr(tar, non)


def reference_linkability(mated, non_mated, omega=1.0) -> tuple[float, np.ndarray, np.ndarray]:
    """D<->sys as the VPC toolkit / anonymization_metrics compute it: #mated/10 bins (at most 100)
    over the score range, D per bin from the histogram LR, trapezoid rule over the bin centres.
    Returns (Dsys, D·p(s|mated) per bin, bin edges)."""
    n_bins = min(len(mated) // 10, 100)
    edges = np.linspace(min(min(mated), min(non_mated)), max(max(mated), max(non_mated)), n_bins + 1)
    y1 = np.histogram(mated, bins=edges, density=True)[0]
    y2 = np.histogram(non_mated, bins=edges, density=True)[0]
    lr = np.divide(y1, y2, out=np.ones_like(y1), where=y2 != 0)
    d = 2 * (omega * lr / (1 + omega * lr)) - 1
    d[omega * lr <= 1] = 0
    d[(y2 == 0) & (y1 != 0)] = 1
    centres = (edges[1:] + edges[:-1]) / 2
    f = d * y1
    dsys = float(np.sum((f[1:] + f[:-1]) / 2 * np.diff(centres)))  # np.trapz(x=centres, y=f)
    return dsys, f, edges


def test_linkability_on_a_tiny_list():
    """4 mated, 24 non-mated scores, fully separated (EER 0): linkable, where the reference's
    #mated/10 bins give no bin at all and 0."""
    mated, non_mated = [0.8, 0.82, 0.85, 0.9], list(np.linspace(0.1, 0.4, 24))
    assert compute_eer(mated, non_mated)[0] == 0.0
    assert reference_linkability(mated, non_mated)[0] == 0.0
    assert linkability(mated, non_mated) == pytest.approx(1.0)
    overlapping = [0.3, 0.5, 0.85, 0.9]  # two mated scores among the non-mated ones
    assert 0.3 < linkability(overlapping, non_mated) < 0.9
    assert linkability([0.5, 0.5], [0.5, 0.5, 0.5]) == 0.0  # no score range: nothing tells them apart


@pytest.mark.parametrize("seed", range(3))
def test_linkability_against_reference(seed):
    """From 100 mated scores the bins are the reference's; ours integrates the histogram exactly,
    the reference's trapezoid over bin centres drops half of the first and last bins."""
    rng = np.random.default_rng(seed)
    mated = rng.normal(rng.uniform(0.5, 3), 1, rng.integers(100, 1500))
    non_mated = rng.normal(0, 1, 3000)
    ref, f, edges = reference_linkability(mated, non_mated)
    half_end_bins = (f[0] + f[-1]) / 2 * (edges[1] - edges[0])
    assert linkability(mated, non_mated) == pytest.approx(ref + half_end_bins, abs=1e-12)
    # non-mated scores at both ends leave no mated mass in the end bins: the two agree exactly
    non_mated = np.concatenate([non_mated, [mated.min() - 1, mated.max() + 1]])
    ref, f, _ = reference_linkability(mated, non_mated)
    assert f[0] == f[-1] == 0 and linkability(mated, non_mated) == pytest.approx(ref, abs=1e-12)


def test_compute_eer_command(tmp_path, capsys):
    rng = np.random.default_rng(5)
    lines = [f"s{i % 3} u{i} {rng.normal(1 if i % 4 == 0 else 0):.5f} {'target' if i % 4 == 0 else 'nontarget'}"
             for i in range(200)]
    scores = tmp_path / "scores"
    scores.write_text("\n".join(lines) + "\n")
    assert cli.main([str(scores), "--all"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    tar = [float(x.split()[2]) for x in lines if x.endswith(" target")]
    non = [float(x.split()[2]) for x in lines if x.endswith("nontarget")]
    assert out[-1] == f"{100 * vpc_eer(tar, non)[0]:.3f}"
    tie = tmp_path / "tie"  # the issue's example: the VPC's 41.667, not the first minimum's 58.333
    tie.write_text("a u1 0.2 target\na u2 0.9 target\nb u3 0.1 nontarget\nb u4 0.4 nontarget\n"
                   "b u5 0.6 nontarget\n")
    assert cli.main([str(tie)]) == 0
    assert capsys.readouterr().out.strip() == "41.667"
    only_target = tmp_path / "only_target"
    only_target.write_text("s1 u1 0.5 target\ns1 u2 0.7 target\n")
    assert cli.main([str(only_target)]) == 1
    assert "EER undefined" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.write_text("s1 u1 high target\n")
    assert cli.main([str(bad)]) == 1
    assert "bad:1" in capsys.readouterr().err


def test_eer_interval_over_speakers_and_small_list_warning():
    from voxanon.data.kaldi import Trial
    from voxanon.eval.confidence import eer_interval, fast_eer, small_list_warning

    def trial_list(n_spk: int, utts: int, seed: int):
        rng = np.random.default_rng(seed)
        trials = tuple(Trial(f"s{e}", f"s{u}-{k}", e == u) for u in range(n_spk) for k in range(utts) for e in range(n_spk))
        return trials, np.array([rng.normal(1.5 if t.target else 0.0) for t in trials])

    small, big = trial_list(4, 3, 0), trial_list(40, 3, 0)
    lo, hi = eer_interval(*small)
    assert eer_interval(*small) == [lo, hi]  # seeded: the same interval every run
    tar, non = (big[1][[t.target == want for t in big[0]]] for want in (True, False))
    b_lo, b_hi = eer_interval(*big)
    assert b_lo <= 100 * compute_eer(tar, non)[0] <= b_hi and b_hi - b_lo < hi - lo  # more speakers: narrower
    assert abs(fast_eer(tar, non) - 100 * compute_eer(tar, non)[0]) < 1.0
    one = [i for i, t in enumerate(small[0]) if t.enroll_spk == "s0"]
    assert eer_interval(tuple(small[0][i] for i in one), small[1][one]) is None  # one speaker: nothing to resample
    assert "only 12 target / 36 non-target" in small_list_warning(12, 36) and small_list_warning(100, 100) is None
