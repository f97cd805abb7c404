"""Matching sets: silence trimming, minutes per target, unusable targets, reuse."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from knnvc_helpers import make_pool, save_tiny_models, voiced, one_torch_thread  # noqa: F401 (autouse fixture)
from voxanon.bin import make_wavlm
from voxanon.knn.config import TargetsConfig
from voxanon.knn.matching_set import MatchingSets, build_matching_sets, speech_range


def test_speech_range_trims_both_ends():
    x = voiced(1.0, 150, 0, lead=0.5, trail=0.3)
    n = (len(x) - 400) // 320 + 1
    start, stop = speech_range(x, n)
    assert abs(start - 25) <= 1 and abs(stop - 75) <= 2  # 20 ms frames: speech from 0.5 s to 1.5 s
    assert speech_range(np.zeros(16000, np.float32), 49) == (0, 0)
    assert speech_range(1e-5 * np.ones(16000, np.float32), 49) == (0, 0)  # below the -60 dBFS floor
    assert speech_range(x, 0) == (0, 0)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    wavlm, _ = save_tiny_models(root / "models")
    data = make_pool(root, {
        "spk1": [voiced(1.0, 120, 1, lead=0.4, trail=0.4), voiced(0.8, 125, 2)],
        "spk2": [voiced(0.9, 210, 3, trail=1.0)],
        "spk3": [np.zeros(12000, np.float32)],  # silence only: no usable audio
    })
    assert make_wavlm.main(["--checkpoint", str(wavlm), "--layer", "3", str(data), str(root / "feats")]) == 0
    assert make_wavlm.main(["--finalize", str(data), str(root / "feats")]) == 0
    return root, data


def test_build_trims_reports_and_leaves_out_unusable(pool, caplog):
    root, data = pool
    with caplog.at_level(logging.WARNING):
        infos = build_matching_sets(data, root / "feats", root / "sets", TargetsConfig(min_minutes=0.02))
    assert [i.speaker for i in infos] == ["spk1", "spk2"]
    assert "target spk3 has no usable audio" in caplog.text
    assert "target spk2 has 0.01 min of speech, less than targets.min_minutes=0.02" in caplog.text
    sets = MatchingSets(root / "sets")
    assert sets.speakers == ["spk1", "spk2"] and sets.layer == 3
    spk1 = sets.get("spk1")
    assert spk1.shape[1] == 64 and abs(spk1.shape[0] - (50 + 40)) <= 3  # 1.0 s + 0.8 s of speech, trimmed
    assert abs(infos[0].minutes - spk1.shape[0] / 3000) < 1e-3
    assert sets.info[0].gender == "m" and sets.info[0].utts == 2


def test_reused_when_up_to_date_and_guarded_otherwise(pool, caplog):
    root, data = pool
    cfg = TargetsConfig(min_minutes=0.0)
    build_matching_sets(data, root / "feats", root / "sets2", cfg)
    mtime = (root / "sets2" / "sets.1.ark").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        build_matching_sets(data, root / "feats", root / "sets2", cfg)
    assert "reused" in caplog.text and (root / "sets2" / "sets.1.ark").stat().st_mtime_ns == mtime
    capped = TargetsConfig(min_minutes=0.0, max_minutes=0.01)  # 30 frames
    with pytest.raises(ValueError, match="built differently"):
        build_matching_sets(data, root / "feats", root / "sets2", capped)
    build_matching_sets(data, root / "feats", root / "sets2", capped, overwrite=True)
    assert MatchingSets(root / "sets2").get("spk1").shape[0] == 30


def test_missing_inputs_are_named(pool, tmp_path):
    root, data = pool
    with pytest.raises(FileNotFoundError, match="run stage 2"):
        build_matching_sets(data, tmp_path / "nofeats", tmp_path / "out", TargetsConfig())
    with pytest.raises(FileNotFoundError, match="run stage 3"):
        MatchingSets(tmp_path / "nothing")
    with pytest.raises(ValueError, match="targets.speakers: not in"):
        build_matching_sets(data, root / "feats", tmp_path / "out", TargetsConfig(speakers=("nobody",)))
    with pytest.raises(ValueError, match="no target speaker has usable audio"):
        build_matching_sets(data, root / "feats", tmp_path / "out3", TargetsConfig(speakers=("spk3",)))
