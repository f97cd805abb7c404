"""EER (VPC 2024 algorithm) and the other verification metrics, against independent code."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from voxanon.bin import compute_eer as cli
from voxanon.eval.eer import MetricUndefined, all_metrics, cllr, compute_eer, linkability, min_cllr, min_dcf


def reference_eer(tar, non) -> float:
    """Straight from the protocol text, exact arithmetic: thresholds = unique scores and
    midpoints; FRR = share of target <= t; FAR = share of non-target > t; first t minimizing
    |FAR - FRR|; EER = (FAR + FRR) / 2."""
    uniq = sorted(set(tar) | set(non))
    thresholds = sorted(uniq + [(a + b) / 2 for a, b in zip(uniq, uniq[1:])])
    best = None
    for t in thresholds:
        frr = Fraction(sum(1 for s in tar if s <= t), len(tar))
        far = Fraction(sum(1 for s in non if s > t), len(non))
        if best is None or abs(far - frr) < best[0]:
            best = (abs(far - frr), (far + frr) / 2)
    return float(best[1])


@pytest.mark.parametrize("seed", range(6))
def test_eer_matches_independent_implementation(seed):
    rng = np.random.default_rng(seed)
    n_tar, n_non = rng.integers(5, 120), rng.integers(5, 400)
    tar = rng.normal(rng.uniform(0, 2), 1, n_tar)
    non = rng.normal(0, 1, n_non)
    if seed % 2:  # many ties
        tar, non = np.round(tar, 1), np.round(non, 1)
    eer, _ = compute_eer(tar, non)
    assert abs(eer - reference_eer(list(tar), list(non))) < 1e-9


def test_eer_matches_speechbrain_as_used_by_vpc():
    torch = pytest.importorskip("torch")
    from speechbrain.utils.metric_stats import EER, minDCF

    torch.set_num_threads(1)  # its per-threshold loop crawls with contended OpenMP threads
    rng = np.random.default_rng(11)
    tar = rng.normal(1, 1, 60).astype(np.float32)
    non = rng.normal(-0.5, 1, 300).astype(np.float32)
    sb_eer, sb_thr = EER(torch.tensor(tar), torch.tensor(non))
    eer, thr = compute_eer(tar, non)
    assert abs(eer - sb_eer) < 1e-6 and abs(thr - sb_thr) < 1e-6
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
    assert linkability(same[:2000], same[2000:]) < 0.15
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
    assert float(out[-1]) == pytest.approx(100 * reference_eer(tar, non), abs=1e-3)
    only_target = tmp_path / "only_target"
    only_target.write_text("s1 u1 0.5 target\ns1 u2 0.7 target\n")
    assert cli.main([str(only_target)]) == 1
    assert "EER undefined" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.write_text("s1 u1 high target\n")
    assert cli.main([str(bad)]) == 1
    assert "bad:1" in capsys.readouterr().err
