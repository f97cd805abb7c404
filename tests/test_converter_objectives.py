"""Each converter objective on its own: frame L1+L2 overfits a fixed batch; the adversary's
reversed gradient makes the converter harder to identify; CTC runs on collapsed spherical k-means
units, in one (cosine) geometry, with a blank that is a class logit, not a feature vector."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from converter_fixtures import DIM, one_thread, synthetic_features, tiny_config  # noqa: F401
from voxanon.models.adversary import SpeakerAdversary, adversarial_loss, reverse_grad
from voxanon.models.config import AdversaryConfig
from voxanon.models.dataset import NO_SPEAKER, collate
from voxanon.models.objectives import ConverterObjectives
from voxanon.models.units import UnitCTC, UnitsError, collapse, fit_units, spherical_kmeans
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


def test_logged_loss_is_the_converters_objective_not_the_adversarys(batch):
    b, _ = batch
    torch.manual_seed(0)
    cfg = tiny_config(adversary={"enabled": True, "channels": 16, "embedding_dim": 8, "weight": 0.1})
    total, parts = run(ConverterObjectives(cfg, n_speakers=4), b)
    assert torch.isclose(parts["loss"], parts["l1"] + parts["l2"])
    assert torch.isclose(total.detach(), parts["loss"] + parts["adv"])
    assert float(parts["adv"]) > 0.5  # an untrained 4-way classifier: cross-entropy near log 4


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
        loss, acc = adversarial_loss(adv, conv(b["source"], b["lengths"])[0].detach(), *args, scale=1.0)
        opt_adv.zero_grad()
        loss.backward()
        opt_adv.step()
    adv.eval()  # fixed judge from here on

    def judge():
        with torch.no_grad():
            return adversarial_loss(adv, conv(b["source"], b["lengths"])[0], *args, scale=1.0)

    before_loss, before_acc = judge()
    assert before_acc == 1.0
    opt_conv = torch.optim.Adam(conv.parameters(), lr=1e-3)
    for _ in range(20):
        loss, _ = adversarial_loss(adv, conv(b["source"], b["lengths"])[0], *args, scale=1.0)
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
    head = UnitCTC(torch.from_numpy(centroids), temperature=0.1, hidden=32)
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


def test_spherical_kmeans_recovers_directions_whatever_the_norms():
    """Three directions, each frame at a random norm (0.2-5): Euclidean k-means would split by
    norm; spherical k-means finds the directions, and its centroids are unit vectors."""
    gen = torch.Generator().manual_seed(0)
    dirs = torch.nn.functional.normalize(torch.randn(3, DIM, generator=gen), dim=-1)
    truth = torch.randint(0, 3, (600,), generator=gen)
    norms = 0.2 + 4.8 * torch.rand(600, 1, generator=gen)
    frames = norms * (dirs[truth] + 0.05 * torch.randn(600, DIM, generator=gen))
    centroids = spherical_kmeans(frames, 3, seed=0)
    assert torch.allclose(centroids.norm(dim=-1), torch.ones(3), atol=1e-5)
    found = (torch.nn.functional.normalize(frames, dim=-1) @ centroids.T).argmax(1)
    mapping = {int(t): int(found[truth == t].mode().values) for t in range(3)}
    assert sorted(mapping.values()) == [0, 1, 2]
    assert all(int(found[i]) == mapping[int(truth[i])] for i in range(600))


def test_a_perfect_knnvc_output_is_the_best_ctc_path(batch):
    """One geometry: labels by cosine, unit logits by cosine, so on the kNN-VC targets themselves
    every frame's best unit is its label.
    The blank is a class logit read from the decoder state: it has no direction in feature space,
    and once it has learned to stay low, greedy decoding of the perfect output gives the targets'
    unit sequences exactly."""
    b, target = batch
    centroids = torch.from_numpy(fit_units(target, 8, 10000, seed=0, target="tgt"))
    torch.manual_seed(0)
    head = UnitCTC(centroids, temperature=0.1, hidden=DIM)
    assert [n for n, p in head.named_parameters()] == ["blank.weight", "blank.bias"]  # no feature-space blank
    assert head.blank.weight.shape == (1, DIM)  # read-out of a (B, T, hidden) state, here hidden = DIM
    perfect, lengths = b["target"], b["lengths"]
    logits = head.logits(perfect, perfect)
    labels = (torch.nn.functional.normalize(perfect, dim=-1) @ head.centroids.T).argmax(-1) + 1
    real = torch.arange(perfect.size(1))[None] < lengths[:, None]
    assert bool((logits[..., 1:].argmax(-1) + 1 == labels)[real].all())
    before = float(head(perfect, perfect, lengths, perfect).detach())
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(100):  # only the blank head learns; the output frames stay the kNN-VC targets
        loss = head(perfect, perfect, lengths, perfect)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < before
    units, unit_lengths = head.unit_targets(perfect, lengths)
    best = head.logits(perfect, perfect).argmax(-1)
    for i, (n, seq) in enumerate(zip(lengths.tolist(), torch.split(units, unit_lengths.tolist()))):
        decoded = collapse(best[i, :n])
        assert torch.equal(decoded[decoded != 0], seq)


def test_ctc_logits_are_float32_under_autocast(batch):
    b, target = batch
    head = UnitCTC(torch.from_numpy(fit_units(target, 8, 10000, seed=0, target="tgt")), 0.1, hidden=DIM)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        frames = torch.nn.Linear(DIM, DIM)(b["target"])  # bf16 under autocast, as the converter's output
        assert frames.dtype == torch.bfloat16
        logits = head.logits(frames, frames)
    assert logits.dtype == torch.float32
    exact = head.logits(frames.float(), frames.float())
    assert torch.allclose(logits, exact)


def test_too_few_target_frames_for_kmeans():
    with pytest.raises(UnitsError, match=r"target 'spk9': 5 frames, fewer than the 8 k-means units"):
        fit_units(np.zeros((5, DIM), np.float32), 8, 1000, seed=0, target="spk9")
