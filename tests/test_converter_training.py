"""Converter training as a user meets it: loss falls on a tiny model, a killed run resumes to the
same state, and bad input stops with a clear message (mismatched checkpoint, NaN loss)."""
from __future__ import annotations

import csv
import json
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

from converter_fixtures import DIM, make_pairs_dir, one_thread, synthetic_features, tiny_config  # noqa: F401
from voxanon.config import to_dict
from voxanon.data.features import write_shard
from voxanon.data.kaldi import read_table
from voxanon.models.checkpoint import CheckpointMismatch, list_checkpoints
from voxanon.models.training import NonFiniteLoss, train
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
    valid_rows = rows(tmp_path / "ref", "valid")
    assert len(valid_rows) == 4 and float(valid_rows[-1]["l2"]) < float(valid_rows[0]["l2"])

    conf = tmp_path / "conf.yaml"
    conf.write_text(json.dumps({"exp": "t", "train": to_dict(cfg)}))
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
    assert any(k.startswith("adversary.") for k in a["extras"]) and "units.blank" in a["extras"]
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
    for name in ("utt2num_frames", "utt2spk", "feats_scp", "recon.npy"):
        (bad / name).write_bytes((pairs / name).read_bytes())
    frames = read_table(pairs / "utt2num_frames")
    scp = write_shard(bad, "nan", 1, [(u, np.full((int(n), DIM), np.nan, np.float32)) for u, n in sorted(frames.items())])
    scp.rename(bad / "targets.scp")
    more = replace(cfg, optim=replace(cfg.optim, max_steps=100))
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss at step 51 .*batch utterances: recon-50-0 .*spk\d-utt\d"):
        train(more, bad, out)
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step_00000050.pt"]


@pytest.mark.slow
def test_ddp_with_torchrun_on_cpu(pairs, tmp_path):
    """Two gloo processes via torchrun train the adversarial config and resume from its checkpoint."""
    cfg = tiny_config(adversary={"enabled": True, "channels": 16, "embedding_dim": 8})
    cfg = replace(cfg, optim=replace(cfg.optim, max_steps=40, log_every=20, checkpoint_every=20, valid_every=20))
    conf = tmp_path / "conf.yaml"
    conf.write_text(json.dumps({"exp": "t", "train": to_dict(cfg)}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "voxanon.bin.train_converter", "train", "--conf", str(conf), "--pairs-dir", str(pairs), "--out-dir",
           str(tmp_path / "out"), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "pyscripts")}
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert torch.load(tmp_path / "out" / "final.pt", weights_only=True)["step"] == 40
    assert [int(r["step"]) for r in rows(tmp_path / "out", "train")] == [20, 40]
    longer = replace(cfg, optim=replace(cfg.optim, max_steps=60))
    conf.write_text(json.dumps({"exp": "t", "train": to_dict(longer)}))
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert run.returncode == 0 and "resumed from" in run.stderr and "(step 40)" in run.stderr
    assert torch.load(tmp_path / "out" / "final.pt", weights_only=True)["step"] == 60
