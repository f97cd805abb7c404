"""Matching sets: target audio trimmed by the reference's VAD before WavLM (stage 2), minutes per
target, short targets dropped, the index over the stage-2 features, reuse, float16 storage."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
import torchaudio.transforms as T

from corpora_fakes import speechlike
from knnvc_helpers import make_pool, one_torch_thread, save_tiny_models  # noqa: F401 (autouse fixture)
from voxanon.audio import Audio
from voxanon.bin import make_wavlm
from voxanon.data.kaldi import read_table
from voxanon.knn.config import TargetsConfig
from voxanon.audio import trim_silence
from voxanon.knn.matching_set import FRAMES_PER_MINUTE, MatchingSets, build_matching_sets


def reference_trim(x: np.ndarray) -> np.ndarray:
    """bshall/knn-vc matcher.py get_features(vad_trigger_level=7), verbatim in effect."""
    transform = T.Vad(sample_rate=16000, trigger_level=7)
    front = transform(torch.from_numpy(x)[None])
    return torch.flip(transform(torch.flip(front, (-1,))), (-1,))[0].numpy()


def test_trim_silence_is_the_references_vad_and_removes_low_noise():
    # 0.5 s of -50 dBFS noise each side: the level trimming used before (frames within 40 dB of the
    # loudest, above -60 dBFS) kept all of it; the reference's VAD keeps at most ~0.15 s of it
    x = speechlike(1.0, seed=3, lead=0.5, trail=0.5, noise_dbfs=-50)
    speech = len(speechlike(1.0, seed=3, lead=0.0, trail=0.0)) / 16000
    trimmed = trim_silence(Audio(x, 16000), 7.0)
    np.testing.assert_array_equal(trimmed.samples, reference_trim(x))
    assert speech - 0.1 <= trimmed.duration <= speech + 0.2 < len(x) / 16000 - 0.75
    assert trim_silence(Audio(np.zeros(16000, np.float32), 16000)).samples.size == 0
    assert trim_silence(Audio(1e-3 * np.random.default_rng(0).standard_normal(16000).astype(np.float32),
                              16000)).samples.size == 0  # noise only


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """spk1: 2 utts (~2.5 s of speech), spk2: 1 utt (~1.1 s), spk3: silence only."""
    root = tmp_path_factory.mktemp("pool")
    wavlm, _ = save_tiny_models(root / "models")
    data = make_pool(root, {
        "spk1": [speechlike(1.0, 1, lead=0.5, trail=0.5, noise_dbfs=-50), speechlike(1.2, 2)],
        "spk2": [speechlike(1.0, 3, trail=1.0)],
        "spk3": [np.zeros(12000, np.float32)],
    })
    for dtype in ("float32", "float16"):
        feats = root / f"feats_{dtype}"
        assert make_wavlm.main(["--checkpoint", str(wavlm), "--layer", "3", "--vad-trigger-level", "7",
                                "--dtype", dtype, str(data), str(feats)]) == 0
        assert make_wavlm.main(["--finalize", str(data), str(feats)]) == 0
    return root, data


def test_stage2_trims_pool_audio_and_counts_silent_utterances(pool):
    root, data = pool
    feats = root / "feats_float32"
    frames = {u: int(n) for u, n in read_table(feats / "utt2num_frames").items()}
    assert sorted(frames) == ["spk1-00", "spk1-01", "spk2-00"]  # spk3-00 is silence only: left out, no failure
    for utt, x in (("spk1-00", speechlike(1.0, 1, lead=0.5, trail=0.5, noise_dbfs=-50)),
                   ("spk2-00", speechlike(1.0, 3, trail=1.0))):
        assert frames[utt] == (len(trim_silence(Audio(x, 16000)).samples) - 400) // 320 + 1
    assert json.loads((feats / ".wavlm.json").read_text())["vad_trigger_level"] == 7.0


def test_short_targets_dropped_with_a_count(pool, caplog):
    root, data = pool
    with caplog.at_level(logging.WARNING):
        infos = build_matching_sets(data, root / "feats_float32", root / "sets", TargetsConfig(min_minutes=0.03))
    assert [i.speaker for i in infos] == ["spk1"]  # spk2 has ~0.02 min (1.1 s), spk3 nothing
    assert "1 pool utterance(s) have no features" in caplog.text
    assert "2 of 3 target speaker(s) have less than targets.min_minutes=0.03 min" in caplog.text
    assert "spk2 (0.02 min)" in caplog.text
    sets = MatchingSets(root / "sets")
    assert sets.speakers == ["spk1"] and sets.layer == 3 and sets.info[0].gender == "m" and sets.info[0].utts == 2
    spk1 = sets.get("spk1")
    frames = {u: int(n) for u, n in read_table(root / "feats_float32" / "utt2num_frames").items()}
    assert spk1.dtype == torch.float32 and spk1.shape == (frames["spk1-00"] + frames["spk1-01"], 64)
    assert abs(infos[0].minutes - spk1.shape[0] / FRAMES_PER_MINUTE) < 1e-3
    assert not list((root / "sets").glob("*.ark"))  # an index over the stage-2 features, no copy


def test_reused_when_up_to_date_and_guarded_otherwise(pool, caplog):
    root, data = pool
    cfg = TargetsConfig(min_minutes=0.0)
    build_matching_sets(data, root / "feats_float32", root / "sets2", cfg)
    assert MatchingSets(root / "sets2").speakers == ["spk1", "spk2"]
    mtime = (root / "sets2" / "spk2utt").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        build_matching_sets(data, root / "feats_float32", root / "sets2", cfg)
    assert "reused" in caplog.text and (root / "sets2" / "spk2utt").stat().st_mtime_ns == mtime
    capped = TargetsConfig(min_minutes=0.0, max_minutes=0.01)  # 30 frames
    with pytest.raises(ValueError, match="built differently"):
        build_matching_sets(data, root / "feats_float32", root / "sets2", capped)
    build_matching_sets(data, root / "feats_float32", root / "sets2", capped, overwrite=True)
    assert MatchingSets(root / "sets2").get("spk1").shape[0] == 30


def test_features_remade_after_stage3_are_refused_until_it_runs_again(pool, tmp_path):
    root, data = pool
    feats = tmp_path / "feats"
    for f in (root / "feats_float32").iterdir():
        if f.is_file():
            (feats / f.name).parent.mkdir(exist_ok=True)
            (feats / f.name).write_bytes(f.read_bytes())
    build_matching_sets(data, feats, tmp_path / "sets", TargetsConfig(min_minutes=0.0))
    for name in ("feats.scp", "utt2num_frames"):  # spk2-00 renamed, as if the pool and its features were re-made
        (feats / name).write_text((feats / name).read_text().replace("spk2-00", "spk2-0x"))
    with pytest.raises(FileNotFoundError, match="re-made since; re-run stage 3"):
        MatchingSets(tmp_path / "sets")
    build_matching_sets(data, feats, tmp_path / "sets", TargetsConfig(min_minutes=0.0))  # redone, no --overwrite
    assert MatchingSets(tmp_path / "sets").speakers == ["spk1"]  # spk2-00 has no features now


def test_float16_features_and_matching_sets_match_float32(pool):
    root, data = pool
    build_matching_sets(data, root / "feats_float32", root / "sets32", TargetsConfig(min_minutes=0.0))
    build_matching_sets(data, root / "feats_float16", root / "sets16", TargetsConfig(min_minutes=0.0))
    s32, s16 = MatchingSets(root / "sets32"), MatchingSets(root / "sets16")
    assert s16.stamp["wavlm"]["dtype"] == "float16" and s16.info == s32.info
    a, b = s32.get("spk1"), s16.get("spk1")
    assert b.dtype == torch.float32
    rel = ((b - a).abs() / a.abs().clamp_min(1e-3)).max()
    assert rel <= 2 ** -11 + 1e-6  # round to nearest: half an ulp of the 11-bit significand
    ark = (root / "feats_float16" / "wavlm.1.ark").stat().st_size
    assert ark < 0.6 * (root / "feats_float32" / "wavlm.1.ark").stat().st_size


def test_missing_inputs_are_named(pool, tmp_path):
    root, data = pool
    with pytest.raises(FileNotFoundError, match="run stage 2"):
        build_matching_sets(data, tmp_path / "nofeats", tmp_path / "out", TargetsConfig())
    with pytest.raises(FileNotFoundError, match="run stage 3"):
        MatchingSets(tmp_path / "nothing")
    with pytest.raises(ValueError, match="targets.speakers: not in"):
        build_matching_sets(data, root / "feats_float32", tmp_path / "out", TargetsConfig(speakers=("nobody",)))
    with pytest.raises(ValueError, match="no target speaker has 0.0 min of usable speech"):
        build_matching_sets(data, root / "feats_float32", tmp_path / "out3", TargetsConfig(speakers=("spk3",),
                                                                                           min_minutes=0.0))
