"""HiFi-GAN generator: the published checkpoint layout, shapes, loudness."""
from __future__ import annotations

import numpy as np
import pytest
import pyloudnorm
import torch

from knnvc_helpers import tiny_generator, one_torch_thread  # noqa: F401 (autouse fixture)
from voxanon.vocoder.hifigan import Generator, load_generator, save_generator, vocode


def test_published_layout_keys_and_size():
    sd = Generator().state_dict()
    for key in ("lin_pre.weight", "conv_pre.weight_g", "conv_pre.weight_v", "ups.3.weight_v",
                "resblocks.11.convs1.2.weight_g", "resblocks.0.convs2.0.bias", "conv_post.weight_g"):
        assert key in sd
    assert sd["lin_pre.weight"].shape == (512, 1024)
    assert sd["ups.0.weight_v"].shape == (512, 256, 20) and sd["ups.3.weight_v"].shape == (64, 32, 4)
    assert len([k for k in sd if k.startswith("resblocks.")]) == 12 * 3 * 2 * 3


def test_round_trip_and_wrong_layout(tmp_path):
    gen = tiny_generator(seed=4)
    save_generator(gen, tmp_path / "g.pt")
    assert set(torch.load(tmp_path / "g.pt", weights_only=True)) == {"generator"}
    loaded = load_generator(tmp_path / "g.pt")
    feats = torch.randn(1, 7, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(feats), gen(feats), rtol=0, atol=0)
    sd = torch.load(tmp_path / "g.pt", weights_only=True)
    del sd["generator"]["conv_post.weight_g"]
    torch.save(sd, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match=r"missing keys: conv_post\.weight_g"):
        load_generator(tmp_path / "broken.pt")
    torch.save({"cfg": {}, "model": {}}, tmp_path / "wavlm.pt")
    with pytest.raises(ValueError, match="expected a dict with key 'generator'"):
        load_generator(tmp_path / "wavlm.pt")


def test_vocode_length_and_loudness():
    gen = tiny_generator()
    # Random weights give a bass-heavy signal: -16 LUFS would clip it (next test), -30 does not.
    audio = vocode(gen, torch.randn(40, 64) * 3, target_lufs=-30.0)
    assert audio.sample_rate == 16000 and len(audio.samples) == 40 * 320
    assert np.isfinite(audio.samples).all()
    loudness = pyloudnorm.Meter(16000).integrated_loudness(audio.samples.astype(np.float64))
    assert abs(loudness - (-30.0)) < 0.5 and np.abs(audio.samples).max() < 0.99


def test_chunked_vocoding_has_exact_seams():
    gen = tiny_generator(seed=3)
    feats = torch.randn(45, 64)
    whole = vocode(gen, feats, target_lufs=None, chunk_frames=1000)
    chunked = vocode(gen, feats, target_lufs=None, chunk_frames=10, context_frames=16)
    assert len(chunked.samples) == len(whole.samples) == 45 * 320
    np.testing.assert_allclose(chunked.samples, whole.samples, rtol=1e-4, atol=1e-5)


def test_loudness_target_never_clips():
    gen = tiny_generator()
    with torch.no_grad():
        gen.conv_post.weight_g.mul_(1e-3)  # a very quiet output needs a gain that would clip its peaks
    feats = torch.randn(60, 64)
    quiet = vocode(gen, feats, target_lufs=None)
    loud = vocode(gen, feats, target_lufs=3.0)
    assert np.abs(loud.samples).max() == pytest.approx(0.99, abs=1e-4)
    np.testing.assert_allclose(loud.samples / np.abs(loud.samples).max(), quiet.samples / np.abs(quiet.samples).max(),
                               rtol=1e-4, atol=1e-6)
