"""Stage 6 beyond the VPC 2024 recipe: fine-tuning a pre-trained ASV (``asv.init_model``: our own
ECAPA-TDNN, the VPC 2026 asv_ssl with its WavLM frozen) and the validation EER after every epoch
with the convergence warning."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from voxanon.data.kaldi import load_data_dir
from voxanon.eval.asv_model import load_asv
from voxanon.eval.asv_ssl import WAVLM_FILE, AsvSslModel
from voxanon.eval.asv_train import crop_start, train_asv
from voxanon.eval.config import AsvConfig
from voxanon.eval.convergence import convergence, validation_eer, warning
from voxanon.testing.datadirs import make_dir
from voxanon.testing.vpc_models import make_vpc_asv_ssl

TINY = dict(n_mels=40, channels=16, emb_dim=16, attention_channels=8, epochs=2, batch_size=8, chunk_s=0.5,
            step_size=20, num_workers=0, device="cpu", valid_share=0.3)


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    return make_dir(tmp_path_factory.mktemp("ft") / "train", n_spk=4, n_utt=6, n_enroll=0)


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_validation_eer_trials_are_each_utterance_against_speaker_means():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8))
    emb = {f"s{s}-{i}": centres[s] + 0.1 * rng.normal(size=8) for s in range(3) for i in range(3)}
    utt2spk = {u: u.split("-")[0] for u in emb}
    assert validation_eer(emb, utt2spk) == 0.0  # well separated speakers
    noise = {u: rng.normal(size=8) for u in emb}
    assert 20 < validation_eer(noise, utt2spk) < 80
    # one utterance per speaker: no "other utterances" to enroll a target from
    assert validation_eer({f"s{s}-0": centres[s] for s in range(3)}, {f"s{s}-0": f"s{s}" for s in range(3)}) is None


def test_convergence_warns_while_the_eer_still_falls():
    falling = convergence([{"valid_eer": e} for e in (40.0, 30.0, 22.0, 18.0)], margin=1.0, epochs=2)
    assert falling["converged"] is False and falling["fell_by"] == pytest.approx(12.0)
    assert "had not converged: the EER overstates privacy" in warning("asv_anon", falling)
    flat = convergence([{"valid_eer": e} for e in (40.0, 20.0, 19.5, 19.8)], margin=1.0, epochs=2)
    assert flat["converged"] is True and warning("asv_anon", flat) is None
    short = convergence([{"valid_eer": 30.0}, {"valid_eer": 20.0}], margin=1.0, epochs=2)
    assert short["converged"] is None and warning("asv_anon", short) is None


def test_wavlm_crop_is_random_or_zero_padded():
    assert crop_start(10, 4, 0.0) == 0 and crop_start(10, 4, 0.999) == 6  # samples 0-3, 6-9
    assert crop_start(3, 5, 0.5) == 0  # shorter: the whole utterance, zero-padded by ChunkSet


def test_finetuning_starts_from_the_initial_ecapa_with_a_new_classifier(train_dir, tmp_path):
    data = load_data_dir(train_dir)
    scratch = train_asv(AsvConfig(**{**TINY, "epochs": 1}), data, tmp_path / "orig")
    init = params(load_asv(tmp_path / "orig").ecapa)
    # a learning rate of ~0: the fine-tuned weights are the initial ones (its shape wins over the conf's)
    still = AsvConfig(**{**TINY, "channels": 8, "emb_dim": 12, "init_model": str(tmp_path / "orig"), "lr": 1e-12,
                         "base_lr": 1e-12})
    info = train_asv(still, data, tmp_path / "ft0")
    model = load_asv(tmp_path / "ft0")
    assert model.shape == load_asv(tmp_path / "orig").shape and info["init_model"] == str(tmp_path / "orig")
    for k, v in params(model.ecapa).items():
        torch.testing.assert_close(v, init[k])
    assert torch.load(tmp_path / "ft0" / "classifier.ckpt", weights_only=True)["weight"].shape == (4, 16)
    # the validation EER of every epoch, and the convergence verdict, are in asv.json
    assert len(info["history"]) == 2 and all(h["valid_eer"] is not None for h in info["history"])
    assert info["convergence"]["valid_eer"] == [h["valid_eer"] for h in info["history"]]
    assert len(scratch["history"]) == 1 and scratch["convergence"]["converged"] is None
    # a real learning rate moves them, and the initial model is part of the key
    moved = train_asv(AsvConfig(**{**TINY, "init_model": str(tmp_path / "orig")}), data, tmp_path / "ft1")
    assert moved["key"] != info["key"] and moved["steps"] == info["steps"]
    assert any(not torch.equal(v, init[k]) for k, v in params(load_asv(tmp_path / "ft1").ecapa).items())


def test_finetuning_asv_ssl_keeps_wavlm_frozen(train_dir, tmp_path):
    init_dir = make_vpc_asv_ssl(tmp_path / "asv_ssl", channels=16)
    init = load_asv(init_dir)
    cfg = AsvConfig(**{**TINY, "epochs": 1, "init_model": str(init_dir), "wavlm_crop_s": 0.7, "optimizer": "adamw",
                       "weight_decay": 0.01, "drop_last": True})
    info = train_asv(cfg, load_data_dir(train_dir), tmp_path / "ft")
    model = load_asv(tmp_path / "ft")
    assert isinstance(model, AsvSslModel) and (tmp_path / "ft" / WAVLM_FILE).is_file()
    assert info["steps"] > 0 and info["history"][0]["valid_eer"] is not None
    for k, v in model.wavlm.state_dict().items():  # frozen
        torch.testing.assert_close(v, init.wavlm.state_dict()[k])
    changed = [k for k, v in params(model.ecapa).items() if not torch.equal(v, params(init.ecapa)[k])]
    assert "weighted_sum.layer_weights" in changed and len(changed) > 10
    # training mode leaves the frozen WavLM in eval mode (no dropout)
    assert not model.train().wavlm.training and model.ecapa.training


# The augmentation block of the VPC 2026 recipe (evaluation/privacy/asv/asv_train/hparams/
# train_ecapa_ssl_tdnn_small.yaml), as released.
RECIPE_AUGMENT = """
wav_augment: !new:speechbrain.augment.augmenter.Augmenter
    parallel_augment: False
    concat_original: False
    min_augmentations: 4
    max_augmentations: 4
    augment_prob: 1.0
    augmentations: [
        !ref <drop_freq>,
        !ref <drop_chunk>]
drop_chunk: !new:speechbrain.augment.time_domain.DropChunk
    drop_length_low: 1000
    drop_length_high: 2000
    drop_count_low: 1
    drop_count_high: 5
drop_freq: !new:speechbrain.augment.time_domain.DropFreq
    drop_freq_low: 0
    drop_freq_high: 1
    drop_freq_count_low: 1
    drop_freq_count_high: 3
    drop_freq_width: 0.05
"""


def test_augmentation_equals_the_2026_recipe_and_is_seeded_per_batch():
    from hyperpyyaml import load_hyperpyyaml

    from voxanon.eval.asv_augment import augment_batch, vpc2026_augmenter

    waves = torch.from_numpy(np.random.default_rng(0).normal(size=(4, 8000)).astype(np.float32))
    ours, recipe = vpc2026_augmenter(), load_hyperpyyaml(RECIPE_AUGMENT)["wav_augment"]
    outs = []
    for aug in (ours, recipe):
        torch.manual_seed(5)
        outs.append(aug(waves, torch.ones(4))[0])
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    assert not torch.equal(outs[0], waves) and (outs[0] == 0).sum() >= 4 * 1000  # chunks zeroed in every row

    state = torch.get_rng_state()
    a = augment_batch(ours, waves, 1986, 0, 3)
    torch.testing.assert_close(torch.get_rng_state(), state)  # the training's own draws are untouched
    torch.testing.assert_close(augment_batch(ours, waves, 1986, 0, 3), a, rtol=0, atol=0)
    assert not torch.equal(augment_batch(ours, waves, 1986, 0, 4), a)


def test_augmented_finetuning_trains_and_needs_online_features(train_dir, tmp_path):
    cfg = AsvConfig(**{**TINY, "epochs": 1})
    plain = train_asv(cfg, load_data_dir(train_dir), tmp_path / "plain")
    aug = train_asv(AsvConfig(**{**TINY, "epochs": 1, "augment": True}), load_data_dir(train_dir), tmp_path / "aug")
    assert aug["steps"] == plain["steps"] and aug["key"] != plain["key"]
    assert aug["history"][0]["loss"] != plain["history"][0]["loss"]  # the chunks it learned from differ
    with pytest.raises(ValueError, match="asv.augment needs asv.features: online"):
        train_asv(AsvConfig(**{**TINY, "augment": True, "features": "precomputed"}), load_data_dir(train_dir),
                  tmp_path / "pre")
