"""The converter network: ESPnet blocks, padding masks, checkpoint loading, and the paper's size."""
from __future__ import annotations

import time

import pytest
import torch

from converter_fixtures import one_thread  # noqa: F401
from voxanon.config import from_dict, to_dict
from voxanon.models.config import ModelConfig, TrainConfig
from voxanon.models.converter import Converter, load_converter
from voxanon.models.objectives import ConverterObjectives


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{"feat_dim": 16, "hidden": 32, "heads": 2, "ffn_dim": 32, "encoder_layers": 2,
                          "decoder_layers": 2, **kw})


@pytest.mark.parametrize("block", ["transformer", "conformer"])
def test_padding_never_reaches_real_frames(block):
    torch.manual_seed(0)
    model = Converter(tiny(block=block)).eval()
    x, lengths = torch.randn(2, 30, 16), torch.tensor([30, 18])
    garbage = x.clone()
    garbage[1, 18:] = 1e3
    y = model(x, lengths)
    assert y.shape == (2, 30, 16)
    assert torch.equal(y[1, 18:], torch.zeros(12, 16))
    assert torch.allclose(model(garbage, lengths), y)


def test_pointwise_ffn_converts_batched_like_alone():
    torch.manual_seed(0)
    model = Converter(tiny(ffn_kernel=1)).eval()
    x, lengths = torch.randn(2, 30, 16), torch.tensor([30, 18])
    assert torch.allclose(model(x, lengths)[1, :18], model.convert(x[1, :18]), atol=1e-5)


def test_paper_size_and_checkpoint_round_trip(tmp_path):
    model = Converter(ModelConfig())
    assert len(model.encoder.encoders) == 4 and len(model.decoder.encoders) == 6
    assert model.encoder.embed[0].in_features == 1024 and model.out.out_features == 1024
    assert model.out.in_features == 512
    path = tmp_path / "final.pt"
    torch.save({"target": "103", "model_config": to_dict(ModelConfig()), "converter": model.state_dict()}, path)
    loaded, target = load_converter(path)
    assert target == "103" and not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


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
