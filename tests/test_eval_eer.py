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
