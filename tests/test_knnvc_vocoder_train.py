"""Vocoder training: prematching against the same speaker's other utterances, and a resumable
HiFi-GAN run (a few steps, narrow generator) whose checkpoints load as published ones."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from knnvc_helpers import make_pool, voiced, one_torch_thread  # noqa: F401 (autouse fixture)
from voxanon.bin import train_vocoder
from voxanon.data.features import read_scp, write_shard
from voxanon.data.kaldi import load_data_dir
from voxanon.vocoder.hifigan import load_generator


def brute_knn_mean(q, pool, k=4):
    sims = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(pool, dim=1).T
    return pool[sims.topk(k, dim=1).indices].mean(1)


def test_prematch_uses_other_utterances_only(tmp_path, capsys):
    data = load_data_dir(make_pool(tmp_path, {"a": [voiced(0.3, 100, i) for i in range(3)], "b": [voiced(0.3, 200, 9)]}))
    gen = torch.Generator().manual_seed(0)
    feats = {u: torch.randn(10 + i, 16, generator=gen) for i, u in enumerate(data.utts)}
    scp = write_shard(tmp_path / "feats", "f", 1, ((u, m.numpy()) for u, m in feats.items()))
    assert train_vocoder.main(["prematch", "--device", "cpu", str(tmp_path / "pool"), str(scp), str(tmp_path / "pm")]) == 0
    out = dict(read_scp(tmp_path / "pm" / "prematch.1.scp"))
    assert sorted(out) == ["a-00", "a-01", "a-02"]  # b has a single utterance: skipped
    assert "speaker b has one utterance" in capsys.readouterr().err
    pool = torch.cat([feats["a-00"], feats["a-02"]])
    np.testing.assert_allclose(out["a-01"], brute_knn_mean(feats["a-01"], pool).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_train_saves_published_layout_and_resumes(tmp_path, capsys):
    """Two steps with the full MPD/MSD discriminators: minutes on a loaded 2-core CPU."""
    data_dir = make_pool(tmp_path, {"a": [voiced(0.4, 120, 1), voiced(0.5, 130, 2)]})
    gen = torch.Generator().manual_seed(1)
    data = load_data_dir(data_dir)
    scp = write_shard(tmp_path / "pm", "prematch", 1, ((u, torch.randn(20, 16, generator=gen).numpy()) for u in data.utts))
    args = ["train", "--device", "cpu", "--batch-size", "2", "--segment-frames", "4", "--channels", "16",
            "--workers", "0", "--save-every", "1"]
    assert train_vocoder.main([*args, "--steps", "1", str(data_dir), str(scp), str(tmp_path / "out")]) == 0
    assert train_vocoder.main([*args, "--steps", "2", str(data_dir), str(scp), str(tmp_path / "out")]) == 0
    assert "at step 1" in capsys.readouterr().err.split("resumed from")[1]
    state = torch.load(tmp_path / "out" / "state.pt", weights_only=True)
    assert state["step"] == 2
    g1, g2 = load_generator(tmp_path / "out" / "g_00000001.pt"), load_generator(tmp_path / "out" / "g_00000002.pt")
    assert g2.cfg.in_dim == 16 and g2.cfg.initial_channels == 16
    assert any(not torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values()))
