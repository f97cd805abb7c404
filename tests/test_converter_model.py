"""The converter network: ming024's FFT blocks by default (ESPnet-style pre-LN as the option),
padding masks, deprecated conf keys, checkpoint loading, and the paper's size."""
from __future__ import annotations

import time

import pytest
import torch

from converter_fixtures import one_thread  # noqa: F401
from voxanon.config import ConfigError, from_dict, to_dict
from voxanon.models.config import ModelConfig, PairsConfig, TrainConfig
from voxanon.models.converter import Converter, load_converter, sinusoids
from voxanon.models.objectives import ConverterObjectives


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{"feat_dim": 16, "hidden": 32, "heads": 2, "ffn_dim": 32, "encoder_layers": 2,
                          "decoder_layers": 2, **kw})


def perturbed(cfg: ModelConfig) -> Converter:
    """Random weights, norm gains and biases included (a zero LayerNorm bias would hide padding leaks)."""
    torch.manual_seed(0)
    model = Converter(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


BLOCKS = [{"block": "fft"}, {"block": "fft", "ffn_kernels": (3, 3)},
          {"block": "transformer", "heads": 4, "ffn_kernels": (3, 3), "dropout": 0.1}]


@pytest.mark.parametrize("kw", BLOCKS, ids=["fft-9-1", "fft-3-3", "espnet-pre-ln-3-3"])
def test_padded_item_converts_like_the_utterance_alone(kw):
    """Masks after every sublayer and zeros into every conv: batched = alone, to float rounding
    (the ESPnet-module version differed by up to 0.54 at the last frames)."""
    model = perturbed(tiny(**kw))
    x, lengths = torch.randn(3, 40, 16), torch.tensor([40, 23, 9])
    y, states = model(x, lengths)
    assert y.shape == (3, 40, 16) and states.shape == (3, 40, 32)
    for i, n in enumerate(lengths.tolist()):
        alone = model.convert(x[i, :n])
        assert (y[i, :n] - alone).abs().max() < 1e-5
        assert torch.equal(y[i, n:], torch.zeros(40 - n, 16)) and torch.equal(states[i, n:], torch.zeros(40 - n, 32))
    garbage = x.clone()
    garbage[1, 23:] = 1e3
    assert torch.allclose(model(garbage, lengths)[0], y, atol=1e-6)


def test_default_is_ming024_fft_at_the_paper_size(tmp_path):
    cfg = ModelConfig()
    assert (cfg.block, cfg.heads, cfg.ffn_kernels, cfg.dropout, cfg.ffn_dim) == ("fft", 2, (9, 1), 0.2, 1024)
    model = Converter(cfg)
    assert len(model.encoder.blocks) == 4 and len(model.decoder.blocks) == 6
    assert model.inp.in_features == 1024 and model.out.out_features == 1024 and model.out.in_features == 512
    block = model.encoder.blocks[0]
    assert not block.pre_norm and model.encoder.final_norm is None  # post-LN, as FastSpeech2
    assert block.ffn.w1.kernel_size == (9,) and block.ffn.w2.kernel_size == (1,)
    assert block.dropout.p == 0.2 and block.attention.heads == 2
    path = tmp_path / "final.pt"
    torch.save({"target": "id10001", "features": {"wavlm": "abc", "layer": 6}, "model_config": to_dict(cfg),
                "converter": model.state_dict()}, path)
    loaded, meta = load_converter(path)
    assert meta == {"target": "id10001", "features": {"wavlm": "abc", "layer": 6}} and not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_post_and_pre_norm_blocks_differ_as_documented():
    post, pre = Converter(tiny()), Converter(tiny(block="transformer"))
    assert post.encoder.final_norm is None and pre.encoder.final_norm is not None
    assert not post.encoder.blocks[0].pre_norm and pre.encoder.blocks[0].pre_norm


def test_positions_are_defined_past_any_training_length():
    table = sinusoids(2000, 8, torch.device("cpu"))
    assert table.shape == (2000, 8) and torch.isfinite(table).all()
    assert torch.allclose(table[:, 0], torch.sin(torch.arange(2000.0)))
    assert torch.allclose(table[:, 1], torch.cos(torch.arange(2000.0)))
    assert torch.allclose(sinusoids(50, 8, torch.device("cpu")), table[:50])


def test_conf_keys_of_the_first_version_are_named_and_kernels_checked():
    """pairs.max_frames (crops) and model.ffn_kernel are gone: whole utterances, two kernels."""
    with pytest.raises(ConfigError, match=r"unknown key\(s\) max_frames"):
        from_dict(TrainConfig, {"pairs": {"max_frames": 400}}, "train")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) ffn_kernel "):
        from_dict(TrainConfig, {"model": {"ffn_kernel": 3}}, "train")
    assert from_dict(ModelConfig, {"ffn_kernels": [3, 3]}).ffn_kernels == (3, 3)
    with pytest.raises(ConfigError, match="ffn_kernels must be two odd sizes"):
        from_dict(ModelConfig, {"ffn_kernels": [4, 1]})
    assert PairsConfig().recon_share == 0.0  # the paper's base: no target reconstruction


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="run.sh stage 4"):
        load_converter(tmp_path / "missing.pt")
    torch.save({"generator": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other.pt: not a converter checkpoint \(missing model_config, converter\)"):
        load_converter(tmp_path / "other.pt")


def test_full_size_config_runs_one_training_step():
    """All objectives at the paper's size (4 + 6 layers, hidden 512, 1024-d, ECAPA 512 channels)."""
    cfg = from_dict(TrainConfig, {"objectives": {"adversary": {"enabled": True}, "discrete": {"enabled": True}}})
    torch.manual_seed(0)
    model = ConverterObjectives(cfg, n_speakers=10, centroids=torch.randn(cfg.objectives.discrete.units, 1024))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(2, 50, 1024)
    start = time.monotonic()
    loss, parts = model(x, x + 0.1 * torch.randn_like(x), torch.tensor([50, 37]), torch.tensor([3, -100]))
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and set(parts) == {"l1", "l2", "adv", "adv_acc", "ctc", "loss"}
    assert all(p.grad is not None for p in model.parameters())
    print(f"paper-size step: {time.monotonic() - start:.1f} s")
