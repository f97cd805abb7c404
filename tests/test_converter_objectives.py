"""Each converter objective on its own: frame L1+L2 overfits a fixed batch; the adversary's
reversed gradient makes the converter harder to identify; CTC runs on collapsed k-means units."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from converter_fixtures import DIM, one_thread, synthetic_features, tiny_config  # noqa: F401
from voxanon.models.adversary import SpeakerAdversary, adversarial_loss, reverse_grad
from voxanon.models.config import AdversaryConfig
from voxanon.models.dataset import NO_SPEAKER, collate
from voxanon.models.objectives import ConverterObjectives
from voxanon.models.units import UnitCTC, UnitsError, collapse, fit_units
from voxanon.knn.matcher import knn_average


@pytest.fixture(scope="module")
def batch():
    """8 utterances of 4 speakers with their kNN-VC targets, padded (lengths differ)."""
    feats, utt2spk, target = synthetic_features(np.random.default_rng(1), n_spk=4, utts_per_spk=2)
    pool = torch.from_numpy(target)
    spk_ids = {s: i for i, s in enumerate(sorted(set(utt2spk.values())))}
    items = [(u, w[:40], knn_average(torch.from_numpy(w[:40]), pool, 4).numpy(), spk_ids[utt2spk[u]])
             for u, w in sorted(feats.items())]
    return collate(items), target


def run(model, b):
    return model(b["source"], b["target"], b["lengths"], b["speakers"])


def test_frame_losses_overfit_a_fixed_batch(batch):
    b, _ = batch
    torch.manual_seed(0)
    model = ConverterObjectives(tiny_config(), n_speakers=4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss, parts = run(model, b)
        first = first if first is not None else float(parts["loss"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert set(parts) == {"l1", "l2", "loss"}
    assert float(parts["loss"]) < 0.1 * first


def test_padding_does_not_leak_into_the_loss(batch):
    """Garbage in padded frames changes nothing: masks cover attention and losses."""
    b, _ = batch
    torch.manual_seed(0)
    model = ConverterObjectives(tiny_config(), n_speakers=4).eval()
    noisy = dict(b, source=b["source"].clone(), target=b["target"].clone())
    for i, n in enumerate(b["lengths"]):
        noisy["source"][i, n:] = 1e3
        noisy["target"][i, n:] = -1e3
    assert b["lengths"].min() < b["lengths"].max()
    assert torch.allclose(run(model, b)[0], run(model, noisy)[0])


def test_reverse_grad_flips_and_scales():
    x = torch.randn(3, 4, requires_grad=True)
    (reverse_grad(x, 0.5) * torch.arange(4.0)).sum().backward()
    assert torch.equal(x.grad, -0.5 * torch.arange(4.0).expand(3, 4))


def test_adversary_gradient_makes_the_converter_harder_to_identify(batch):
    """Train the adversary on the converter's output until it identifies the speakers; then update
    the converter with the reversed gradient alone: the adversary's loss rises, its accuracy falls."""
    b, _ = batch
    torch.manual_seed(0)
    cfg = tiny_config(adversary={"enabled": True, "channels": 16, "embedding_dim": 8})
    model = ConverterObjectives(cfg, n_speakers=4)
    adv, conv = model.adversary, model.converter
    args = (b["lengths"], b["speakers"])
    opt_adv = torch.optim.Adam(adv.parameters(), lr=1e-2)
    for _ in range(60):
        loss, acc = adversarial_loss(adv, conv(b["source"], b["lengths"]).detach(), *args, scale=1.0)
        opt_adv.zero_grad()
        loss.backward()
        opt_adv.step()
    adv.eval()  # fixed judge from here on

    def judge():
        with torch.no_grad():
            return adversarial_loss(adv, conv(b["source"], b["lengths"]), *args, scale=1.0)

    before_loss, before_acc = judge()
    assert before_acc == 1.0
    opt_conv = torch.optim.Adam(conv.parameters(), lr=1e-3)
    for _ in range(20):
        loss, _ = adversarial_loss(adv, conv(b["source"], b["lengths"]), *args, scale=1.0)
        opt_conv.zero_grad()
        loss.backward()  # reaches the converter reversed: it ascends the adversary's loss
        opt_conv.step()
    after_loss, after_acc = judge()
    assert after_loss > before_loss + 1.0
    assert after_acc < before_acc


def test_reconstruction_items_are_not_speakers(batch):
    b, _ = batch
    torch.manual_seed(0)
    adv = SpeakerAdversary(AdversaryConfig(channels=16, embedding_dim=8), DIM, 4)
    out = b["source"].requires_grad_(True)
    loss, acc = adversarial_loss(adv, out, b["lengths"], torch.full_like(b["speakers"], NO_SPEAKER), 1.0)
    assert float(loss.detach()) == 0.0 and float(acc) == 0.0
    loss.backward()  # still a graph: every adversary parameter is reached (DDP needs that)
    assert all(p.grad is not None for p in adv.parameters())


def test_collapse_merges_runs_only():
    assert collapse(torch.tensor([3, 3, 1, 1, 1, 3, 2, 2])).tolist() == [3, 1, 3, 2]
    assert collapse(torch.tensor([], dtype=torch.long)).numel() == 0


def test_units_targets_are_collapsed_and_ctc_trains(batch):
    b, target = batch
    centroids = fit_units(target, 8, 10000, seed=0, target="tgt")
    assert centroids.shape == (8, DIM)
    head = UnitCTC(torch.from_numpy(centroids), temperature=0.1)
    units, lengths = head.unit_targets(b["target"], b["lengths"])
    assert int(lengths.sum()) == len(units) and units.min() >= 1  # 0 is the blank
    seqs = torch.split(units, lengths.tolist())
    assert all(bool((s[1:] != s[:-1]).all()) for s in seqs)  # no repeats left
    assert all(len(s) < n for s, n in zip(seqs, b["lengths"]))  # runs were merged
    torch.manual_seed(0)
    cfg = tiny_config(l1_weight=0.0, l2_weight=0.0, discrete={"enabled": True, "units": 8, "weight": 1.0})
    model = ConverterObjectives(cfg, 4, torch.from_numpy(centroids))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss, parts = run(model, b)
        losses.append(float(parts["ctc"]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


def test_too_few_target_frames_for_kmeans():
    with pytest.raises(UnitsError, match=r"target 'spk9': 5 frames, fewer than the 8 k-means units"):
        fit_units(np.zeros((5, DIM), np.float32), 8, 1000, seed=0, target="spk9")
