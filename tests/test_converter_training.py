"""Converter training as a user meets it: loss falls on a tiny model, a killed run resumes to the
same state, bad input stops with a clear message (mismatched checkpoint, NaN loss); and the
training mechanics: whole-utterance batches (long utterances validate as well as
short ones), reconstruction items at small batches, one global batch for any number of
processes, per-rank dropout, separate gradient clipping, per-rank log buffers, strict extras,
ming024's Adam settings and schedule."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from converter_fixtures import (DIM, FEATURES, make_pairs_dir, one_thread, synthetic_features,  # noqa: F401
                                tiny_config)
from voxanon.config import to_dict
from voxanon.data.features import write_shard
from voxanon.data.kaldi import read_table
from voxanon.models.checkpoint import CheckpointMismatch, list_checkpoints
from voxanon.models.dataset import NO_SPEAKER, PairIndex, StepBatches
from voxanon.models.objectives import ConverterObjectives
from voxanon.models.training import (LogWindow, NonFiniteLoss, clip_gradients, lr_factor, step_seed, train)
from voxanon.models.units import fit_units

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Pairs from 26 utterances, 2 of them empty / one frame (skipped)."""
    extra = {"spk0-empty": np.zeros((0, DIM), np.float32), "spk0-one": np.ones((1, DIM), np.float32)}
    return make_pairs_dir(tmp_path_factory.mktemp("conv"), extra=extra)


def rows(out: Path, split: str) -> list[dict]:
    with open(out / "train_log.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["split"] == split]


def test_empty_and_one_frame_utterances_are_skipped_and_counted(pairs, caplog):
    skipped = {**read_table(pairs / "skipped.1"), **read_table(pairs / "skipped.2")}
    assert skipped == {"spk0-empty": "0 frame(s), need at least 2", "spk0-one": "1 frame(s), need at least 2"}
    frames = read_table(pairs / "utt2num_frames")
    assert len(frames) == 24 and "spk0-one" not in frames
    assert set(read_table(pairs / "utt2spk")) == set(frames)


def test_trains_with_falling_loss_and_same_state_after_a_kill(pairs, tmp_path):
    """An uninterrupted run, and a subprocess run killed after its step-100 checkpoint then
    resumed: same step, same optimizer state, same parameters."""
    cfg = tiny_config()
    cfg = replace(cfg, model=replace(cfg.model, dropout=0.1))  # the RNG state must carry over too
    ref = train(cfg, pairs, tmp_path / "ref")
    train_rows = rows(tmp_path / "ref", "train")
    assert [int(r["step"]) for r in train_rows] == [50, 100, 150, 200]
    assert float(train_rows[-1]["l1"]) < 0.6 * float(train_rows[0]["l1"])
    for half in ("valid_short", "valid_long"):
        valid_rows = rows(tmp_path / "ref", half)
        assert len(valid_rows) == 4 and float(valid_rows[-1]["l2"]) < float(valid_rows[0]["l2"])
    final = torch.load(ref, weights_only=True)
    assert final["features"] == FEATURES and final["target"] == "tgt"

    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump({"exp": "t", "train": to_dict(cfg)}))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "voxanon.bin.train_converter", "train", "--conf", str(conf), "--pairs-dir",
           str(pairs), "--out-dir", str(out), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "pyscripts")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "step_00000100.pt").is_file():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no step-100 checkpoint within 2 minutes"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "final.pt").is_file()
    killed_at = int(list_checkpoints(out / "checkpoints")[-1].stem.split("_")[1])
    assert 100 <= killed_at < 200

    subprocess.run(cmd, env=env, check=True, capture_output=True)
    a = torch.load(ref.parent / "checkpoints" / "step_00000200.pt", weights_only=True)
    b = torch.load(out / "checkpoints" / "step_00000200.pt", weights_only=True)
    assert a["step"] == b["step"] == 200
    assert a["optimizer"]["state"][0]["step"] == b["optimizer"]["state"][0]["step"] == 200
    for key, value in a["converter"].items():
        assert torch.allclose(value, b["converter"][key], atol=1e-6), key
    for key, value in a["optimizer"]["state"][0].items():
        assert torch.allclose(value, b["optimizer"]["state"][0][key], atol=1e-6), key
    # the killed run's rows past its last checkpoint were dropped: one row per step
    assert [int(r["step"]) for r in rows(out, "train")] == [50, 100, 150, 200]


def test_all_objectives_resume_to_the_same_state(tmp_path):
    """Adversary and CTC head included (their parameters and optimizer state): 20 steps at once
    equal 10 steps, a stop, and 10 more."""
    _, _, target = synthetic_features(np.random.default_rng(0))
    pairs = make_pairs_dir(tmp_path, centroids=fit_units(target, 8, 1000, seed=0, target="tgt"))
    cfg = tiny_config(adversary={"enabled": True, "channels": 16, "embedding_dim": 8},
                      discrete={"enabled": True, "units": 8})
    cfg = replace(cfg, model=replace(cfg.model, dropout=0.1),
                  optim=replace(cfg.optim, max_steps=20, checkpoint_every=10, valid_every=10, log_every=10))
    train(cfg, pairs, tmp_path / "once")
    train(replace(cfg, optim=replace(cfg.optim, max_steps=10)), pairs, tmp_path / "twice")
    train(cfg, pairs, tmp_path / "twice")
    a, b = (torch.load(tmp_path / d / "checkpoints" / "step_00000020.pt", weights_only=True) for d in ("once", "twice"))
    assert any(k.startswith("adversary.") for k in a["extras"]) and "units.blank.weight" in a["extras"]
    for part in ("converter", "extras"):
        for key, value in a[part].items():
            assert torch.allclose(value.float(), b[part][key].float(), atol=1e-6), key
    for i, state in a["optimizer"]["state"].items():
        assert torch.allclose(state["exp_avg"], b["optimizer"]["state"][i]["exp_avg"], atol=1e-6)


def test_checkpoint_from_another_config_is_refused(pairs, tmp_path):
    cfg = replace(tiny_config(), optim=replace(tiny_config().optim, max_steps=50))
    train(cfg, pairs, tmp_path)
    longer = replace(cfg, optim=replace(cfg.optim, max_steps=60))  # schedule changes may resume
    train(longer, pairs, tmp_path)
    assert torch.load(tmp_path / "final.pt", weights_only=True)["step"] == 60
    wider = replace(cfg, model=replace(cfg.model, hidden=48))
    with pytest.raises(CheckpointMismatch, match=r"train\.model\.hidden: 32 in the checkpoint, 48 in the conf"):
        train(wider, pairs, tmp_path)


def test_nan_loss_stops_with_step_and_ids_and_keeps_the_checkpoint(pairs, tmp_path):
    cfg = replace(tiny_config(), optim=replace(tiny_config().optim, max_steps=50))
    out = tmp_path / "out"
    train(cfg, pairs, out)
    # The same pairs, with NaN targets from now on
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("utt2num_frames", "utt2spk", "feats_scp", "recon.npy", "features.json"):
        (bad / name).write_bytes((pairs / name).read_bytes())
    frames = read_table(pairs / "utt2num_frames")
    scp = write_shard(bad, "nan", 1, [(u, np.full((int(n), DIM), np.nan, np.float32)) for u, n in sorted(frames.items())])
    scp.rename(bad / "targets.scp")
    more = replace(cfg, optim=replace(cfg.optim, max_steps=100))
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss at step 51 .*batch utterances: .*spk\d-utt\d"):
        train(more, bad, out)
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step_00000050.pt"]


@pytest.mark.slow
def test_ddp_with_torchrun_on_cpu(pairs, tmp_path):
    """Two gloo processes via torchrun train the adversarial config (one batch of 8 split 4 + 4,
    log windows flushed collectively on both ranks) and resume from its checkpoint."""
    cfg = tiny_config(adversary={"enabled": True, "channels": 16, "embedding_dim": 8})
    cfg = replace(cfg, optim=replace(cfg.optim, max_steps=40, log_every=20, checkpoint_every=20, valid_every=20))
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump({"exp": "t", "train": to_dict(cfg)}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "voxanon.bin.train_converter", "train", "--conf", str(conf), "--pairs-dir", str(pairs), "--out-dir",
           str(tmp_path / "out"), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "pyscripts")}
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "batch 8 over 2 process(es)" in run.stderr  # 4 items per rank: the batch of one process
    # The log window is flushed by all-reducing it on every rank: had rank 1 kept its buffer
    # (not flushed), rank 0's flush would wait for it forever instead of logging these rows.
    assert torch.load(tmp_path / "out" / "final.pt", weights_only=True)["step"] == 40
    assert [int(r["step"]) for r in rows(tmp_path / "out", "train")] == [20, 40]
    longer = replace(cfg, optim=replace(cfg.optim, max_steps=60))
    conf.write_text(yaml.safe_dump({"exp": "t", "train": to_dict(longer)}))
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert run.returncode == 0 and "resumed from" in run.stderr and "(step 40)" in run.stderr
    assert torch.load(tmp_path / "out" / "final.pt", weights_only=True)["step"] == 60


def valid_l1(final: Path, pairs: Path, utts: list[str]) -> dict[str, float]:
    """Frame L1 of a trained converter on whole held-out utterances, per half (short / long)."""
    from voxanon.models.converter import load_converter, pad_mask
    from voxanon.models.dataset import valid_batches

    model, _ = load_converter(final)
    sums: dict[str, list[float]] = {}
    with torch.no_grad():
        for group, b in valid_batches(PairIndex.load(pairs), utts, 8):
            mask = pad_mask(b["lengths"], b["source"].size(1)).unsqueeze(-1)
            err = ((model(b["source"], b["lengths"])[0] - b["target"]).abs() * mask).sum() / (mask.sum() * DIM)
            sums.setdefault(group, []).append(float(err))
    return {g: float(np.mean(v)) for g, v in sums.items()}


def test_long_utterances_validate_as_well_as_short_ones(tmp_path):
    """Training on whole utterances (length buckets): the validation loss on the longer half (60-180
    frames) is not worse than on the shorter half (9-42). Trained on short utterances only, as with
    the old 8 s crops, the same model is much worse on the long ones (positions it never saw)."""
    rng = np.random.default_rng(0)
    short, spk_short, target = synthetic_features(rng, 4, 6, segments=(3, 7))
    long, spk_long, _ = synthetic_features(rng, 4, 6, segments=(20, 30))
    feats = {**short, **{f"{u}L": m for u, m in long.items()}}
    utt2spk = {**spk_short, **{f"{u}L": s for u, s in spk_long.items()}}
    cfg = tiny_config()
    cfg = replace(cfg, pairs=replace(cfg.pairs, valid_utts=12, recon_share=0.0),
                  optim=replace(cfg.optim, max_steps=150, valid_every=150, log_every=150, checkpoint_every=150))
    pairs = make_pairs_dir(tmp_path / "all", data=(feats, utt2spk, target))
    _, valid = PairIndex.load(pairs).split(12)
    assert max(len(feats[u]) for u in valid) > 3 * min(len(feats[u]) for u in valid)
    train(cfg, pairs, tmp_path / "whole")
    logged = {r["split"]: float(r["l1"]) for r in rows(tmp_path / "whole", "valid_short") + rows(tmp_path / "whole",
                                                                                                 "valid_long")}
    assert logged["valid_long"] <= 1.1 * logged["valid_short"]
    assert valid_l1(tmp_path / "whole" / "final.pt", pairs, valid) == pytest.approx(
        {"short": logged["valid_short"], "long": logged["valid_long"]}, rel=1e-3)

    short_pairs = make_pairs_dir(tmp_path / "short", data=(dict(short), dict(spk_short), target))
    only_short = train(replace(cfg, pairs=replace(cfg.pairs, valid_utts=0)), short_pairs, tmp_path / "crops")
    contrast = valid_l1(only_short, pairs, valid)
    assert contrast["long"] > 1.3 * contrast["short"]


def batches(pairs: Path, batch_size: int, recon_share: float, world: int = 1, rank: int = 0, steps: int = 1,
            seed: int = 0) -> StepBatches:
    index = PairIndex.load(pairs)
    return StepBatches(index, list(index.utts), np.load(pairs / "recon.npy"), recon_share, batch_size, seed, rank,
                       world, 0, steps)


def test_reconstruction_items_exist_at_small_batches(pairs):
    """Batch 2, share 0.1: round(0.2) = 0 would give none ever; the random rounding gives 10 %."""
    data = batches(pairs, 2, 0.1, steps=1000)
    recon = np.load(pairs / "recon.npy")
    flags = [r for step in range(1000) for _, r, _ in data.plan(step)]
    assert 0.07 < np.mean(flags) < 0.13
    step = next(s for s in range(1000) if any(r for _, r, _ in data.plan(s)))
    b = data[step]
    i = int(np.flatnonzero(b["speakers"].numpy() == NO_SPEAKER)[0])
    n = int(b["lengths"][i])
    assert torch.equal(b["source"][i, :n], b["target"][i, :n])  # the target's own speech, in and out
    window = b["source"][i, :n].numpy()
    assert any(np.array_equal(window, recon[a:a + n]) for a in range(len(recon) - n + 1))
    utt = data.plan(step)[i][0]
    assert n == min(data.index.frames[utt], len(recon))  # as long as the utterance it replaced
    assert not any(r for s in range(50) for _, r, _ in batches(pairs, 2, 0.0, steps=50).plan(s))


def test_one_global_batch_whatever_the_number_of_processes(pairs):
    """batch_size is over all ranks: 2 ranks take half each of the very batch 1 process takes,
    whole utterances (no crops) of one length bucket."""
    one = batches(pairs, 8, 0.25, steps=5)
    ranks = [batches(pairs, 8, 0.25, world=2, rank=r, steps=5) for r in (0, 1)]
    index = PairIndex.load(pairs)
    for step in range(5):
        whole = one[step]
        halves = [r[step] for r in ranks]
        assert [len(h["ids"]) for h in halves] == [4, 4]
        assert sorted(whole["ids"]) == sorted(halves[0]["ids"] + halves[1]["ids"])
        for b in (whole, *halves):
            for utt, n in zip(b["ids"], b["lengths"].tolist()):
                if not utt.startswith("recon-"):
                    assert n == index.frames[utt]
    with pytest.raises(ValueError, match="batch_size 8 is the batch over all 3 processes"):
        batches(pairs, 8, 0.0, world=3)


def test_each_rank_draws_its_own_dropout_masks_also_after_a_resume():
    """Dropout is seeded from (seed, rank, step): no RNG state to restore, so a resumed rank 1
    does not take rank 0's masks; the same rank at the same step draws the same mask again."""
    def mask(rank: int, step: int) -> torch.Tensor:
        torch.manual_seed(step_seed(1986, rank, step))
        return torch.nn.functional.dropout(torch.ones(1000), 0.2)

    assert not torch.equal(mask(0, 100), mask(1, 100))
    assert not torch.equal(mask(0, 100), mask(0, 101))
    assert torch.equal(mask(1, 100), mask(1, 100))


def test_converter_and_adversary_gradients_are_clipped_separately():
    """A batch where the adversary's gradient norm is far above the converter's: the converter's
    gradient is clipped by its own norm only, not shrunk by the adversary's."""
    torch.manual_seed(0)
    cfg = tiny_config(adversary={"enabled": True, "channels": 16, "embedding_dim": 8, "weight": 0.1})
    model = ConverterObjectives(cfg, n_speakers=4)
    x = torch.randn(4, 30, DIM)
    loss, _ = model(x, x, torch.tensor([30, 25, 20, 30]), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    conv = [p for n, p in model.named_parameters() if not n.startswith("adversary.")]
    adv = list(model.adversary.parameters())
    norm = lambda ps: float(torch.cat([p.grad.flatten() for p in ps]).norm())  # noqa: E731
    conv_before, adv_before = norm(conv), norm(adv)
    assert adv_before > 4 * conv_before
    clip = (conv_before + adv_before) / 2  # above the converter's norm, below the adversary's
    conv_norm, adv_norm = clip_gradients(model, clip)
    assert float(conv_norm) == pytest.approx(conv_before, rel=1e-5)
    assert float(adv_norm) == pytest.approx(adv_before, rel=1e-5)
    assert norm(conv) == pytest.approx(conv_before, rel=1e-5)  # untouched: one joint clip would shrink it
    assert norm(adv) == pytest.approx(clip, rel=1e-4)


def test_log_window_is_emptied_at_each_flush():
    """The window every rank keeps is flushed (and emptied) at each log step; with DDP the flush
    is a collective, so rank 0 could not log unless all ranks flush (test_ddp_with_torchrun_on_cpu)."""
    window = LogWindow(world=1)
    for v in (1.0, 2.0, 6.0):
        window.add({"loss": torch.tensor(v), "l1": torch.tensor(2 * v)})
    values, rate = window.flush()
    assert values == {"l1": 6.0, "loss": 3.0} and rate > 0 and window.parts == []


def test_schedule_and_adam_are_ming024s(pairs, tmp_path):
    cfg = replace(tiny_config(), optim=replace(tiny_config().optim, max_steps=20, warmup_steps=10))
    assert (cfg.optim.schedule, cfg.optim.betas, cfg.optim.eps) == ("noam", (0.9, 0.98), 1e-9)
    noam = lr_factor(cfg.optim)
    assert [noam(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])  # warm-up
    assert noam(39) == pytest.approx(0.5) and noam(159) == pytest.approx(0.25)  # then sqrt(warmup / step)
    flat = lr_factor(replace(cfg.optim, schedule="constant"))
    assert flat(4) == pytest.approx(0.5) and flat(9) == flat(159) == 1.0
    train(cfg, pairs, tmp_path)
    ckpt = torch.load(tmp_path / "checkpoints" / "step_00000020.pt", weights_only=True)
    group = ckpt["optimizer"]["param_groups"][0]
    assert tuple(group["betas"]) == (0.9, 0.98) and group["eps"] == 1e-9
    assert group["lr"] == pytest.approx(cfg.optim.lr * (10 / 21) ** 0.5)  # the factor of the next step, 21


def test_extras_load_strictly_on_resume(tmp_path):
    """A checkpoint whose adversary state lacks a tensor is an error, not a silent fresh start."""
    pairs = make_pairs_dir(tmp_path)
    cfg = tiny_config(adversary={"enabled": True, "channels": 16, "embedding_dim": 8})
    cfg = replace(cfg, optim=replace(cfg.optim, max_steps=5, checkpoint_every=5, valid_every=5, log_every=5))
    train(cfg, pairs, tmp_path / "out")
    path = tmp_path / "out" / "checkpoints" / "step_00000005.pt"
    ckpt = torch.load(path, weights_only=True)
    dropped = next(k for k in ckpt["extras"] if k.startswith("adversary."))
    del ckpt["extras"][dropped]
    torch.save(ckpt, path)
    with pytest.raises(RuntimeError, match=f"Missing key.*{dropped}"):
        train(replace(cfg, optim=replace(cfg.optim, max_steps=10)), pairs, tmp_path / "out")


def test_pairs_stored_as_float16(tmp_path):
    """train.pairs.dtype float16: the kNN-VC targets take half the disk, within float16's rounding of
    the float32 ones, and train as float32 tensors."""
    from voxanon.data.features import load_scp
    from voxanon.knn.matcher import knn_average
    from voxanon.models.pairs import make_shard

    feats, _, target = synthetic_features(np.random.default_rng(3))
    scp = write_shard(tmp_path / "feats", "feats", 1, sorted(feats.items()))
    pool = torch.from_numpy(target)
    for dtype in ("float32", "float16"):
        make_shard(scp, sorted(feats), pool, 4, knn_average, tmp_path / dtype, 1, dtype)
    full, half = (load_scp(tmp_path / d / "targets.1.scp") for d in ("float32", "float16"))
    utt = sorted(feats)[0]
    assert np.asarray(half[utt]).dtype == np.float16 and np.asarray(full[utt]).dtype == np.float32
    for u in feats:
        np.testing.assert_allclose(np.asarray(half[u], np.float32), full[u], rtol=2 ** -11, atol=1e-7)
    sizes = [sum(f.stat().st_size for f in (tmp_path / d).glob("*.ark")) for d in ("float32", "float16")]
    assert sizes[1] < 0.6 * sizes[0]
