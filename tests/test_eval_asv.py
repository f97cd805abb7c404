"""ASV attacker: model loading (ours / VPC release layouts), training with resume, scoring of
trial lists under the attack scenarios, and the bad-input errors."""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from voxanon.data.kaldi import Trial, load_data_dir, write_trials
from voxanon.eval.asv_model import AsvModelError, EcapaShape, build_ecapa, load_asv
from voxanon.eval.asv_train import (chunk_rows, count_rows, cyclic_lr, epoch_plan, global_batches, rank_slice,
                                    split_utts, train_asv)
from voxanon.eval.config import AsvConfig
from voxanon.eval.eer import compute_eer, read_scores
from voxanon.eval.scoring import EmbeddingStore, TrialError, evaluate_asv, find_trial_lists
from voxanon.testing.datadirs import make_dir

TINY = dict(n_mels=40, channels=32, emb_dim=24, attention_channels=16, epochs=1, batch_size=8, chunk_s=1.0,
            lr=0.01, step_size=20, features="precomputed", num_workers=0)


def test_loads_vpc_and_speechbrain_layouts(tmp_path):
    shape = EcapaShape(n_mels=80, channels=48, attention_channels=16, emb_dim=40)
    torch.manual_seed(0)
    ecapa = build_ecapa(shape).eval()
    vpc = tmp_path / "asv_orig"
    vpc.mkdir()
    torch.save(ecapa.state_dict(), vpc / "embedding_model.ckpt")  # VPC release: file at the top
    sb = tmp_path / "sb_out"
    (sb / "CKPT+2024-01-01+00-00-00+00").mkdir(parents=True)
    torch.save(ecapa.state_dict(), sb / "CKPT+2024-01-01+00-00-00+00" / "embedding_model.ckpt")
    wav = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    for d in (vpc, sb):
        model = load_asv(d)
        assert model.shape == shape
        with torch.no_grad():
            feats = model.frontend(torch.from_numpy(wav)[None])
            ref = ecapa(feats).squeeze().numpy()
        np.testing.assert_allclose(model.embed(wav), ref, rtol=1e-5, atol=1e-6)
    # speechbrain's global embedding normalization next to the weights is not applied: the VPC's
    # EncoderClassifier.encode_batch leaves it out (normalize=False)
    torch.save({"count": 5, "glob_mean": torch.randn(1, 40), "glob_std": torch.ones(1, 40)},
               vpc / "mean_var_norm_emb.ckpt")
    np.testing.assert_allclose(load_asv(vpc).embed(wav), ref, rtol=1e-5, atol=1e-6)
    bad = tmp_path / "bad"
    bad.mkdir()
    torch.save({"weight": torch.zeros(3)}, bad / "embedding_model.ckpt")
    with pytest.raises(AsvModelError, match="not a speechbrain ECAPA-TDNN"):
        load_asv(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AsvModelError, match="no embedding_model.ckpt"):
        load_asv(tmp_path / "empty")


def test_cyclic_lr_matches_speechbrain():
    from speechbrain.nnet.schedulers import CyclicLRScheduler

    sched = CyclicLRScheduler(base_lr=1e-8, max_lr=0.01, step_size=5)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-8)
    for it in range(1, 23):
        sched.on_batch_end(opt)
        assert opt.param_groups[0]["lr"] == pytest.approx(cyclic_lr(it, 1e-8, 0.01, 5))


def test_split_keeps_the_vpc_share_of_training_utterances():
    """The VPC's libri_prepare keeps int(0.01 * 90 * n) training utterances (split_ratio [90, 10])."""
    for n in [*range(1, 400), 104014]:  # train-clean-360: one fewer than n - round(0.1 * n)
        utts = [f"u{i:06d}" for i in range(n)]
        train, valid = split_utts(utts, 0.1, seed=3)
        assert len(train) == int(0.01 * 90 * n)
        assert sorted(train + valid) == utts
    assert split_utts(utts, 0.1, seed=3) == (train, valid) != split_utts(utts, 0.1, seed=4)


def test_epoch_plan_is_the_vpc_chunk_rows(tmp_path):
    """eval_post: floor(dur / 3 s) rows per utterance; under 3 s and chunks with mean |x| < 5e-4 give
    none; every row is cropped afresh each epoch, rows in a seeded order."""
    rate, chunk = 16000, 3 * 16000
    loud = np.random.default_rng(0).uniform(-0.1, 0.1, 10 * rate).astype(np.float32)
    assert chunk_rows(loud[:int(9.99 * rate)], chunk, 5e-4) == 3
    assert chunk_rows(loud[:chunk], chunk, 5e-4) == 1 and chunk_rows(loud[:chunk - 1], chunk, 5e-4) == 0
    quiet_middle = loud[:9 * rate].copy()
    quiet_middle[chunk:2 * chunk] *= 1e-3  # mean |x| ~ 5e-5
    assert chunk_rows(quiet_middle, chunk, 5e-4) == 2
    d = tmp_path / "d"
    (d / "wav").mkdir(parents=True)
    lengths = {"a-1": 10.0, "a-2": 2.9, "b-1": 6.5}
    for utt, sec in lengths.items():
        sf.write(d / "wav" / f"{utt}.wav", loud[:int(sec * rate)], rate)
    (d / "wav.scp").write_text("".join(f"{u} wav/{u}.wav\n" for u in lengths))
    (d / "utt2spk").write_text("".join(f"{u} {u[0]}\n" for u in lengths))
    counted = count_rows(load_data_dir(d), sorted(lengths), chunk, 5e-4, False)
    assert {u: r for u, (r, _) in counted.items()} == {"a-1": 3, "a-2": 0, "b-1": 2}
    rows = [0, 0, 0, 2, 2]
    e0, e1 = epoch_plan(rows, 1986, 0), epoch_plan(rows, 1986, 1)
    assert sorted(u for u, _ in e0) == rows and e0 == epoch_plan(rows, 1986, 0) and e0 != e1
    assert len({r for _, r in e0}) == 5  # each row its own crop position
    # a global batch is split over processes, not dealt out batch by batch
    assert global_batches(10, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [rank_slice([4, 5, 6, 7, 8], r, 2) for r in (0, 1)] == [[4, 5, 6], [7, 8]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny attacker trained on 6 generated speakers, and an eval dir of 4 other speakers."""
    root = tmp_path_factory.mktemp("asv")
    data = root / "data"
    make_dir(data / "train", n_spk=6, n_utt=6, n_enroll=0)
    make_dir(data / "ev", n_spk=4, n_utt=5, n_enroll=2, spk_offset=10)
    shutil.copytree(data / "ev", data / "ev_anon")  # the "anonymized" version: same audio
    cfg = AsvConfig(**TINY)
    info1 = train_asv(cfg, load_data_dir(data / "train"), root / "asv_orig")
    return root, data, cfg, info1


def test_training_resumes_and_keeps_finished_model(trained, caplog):
    root, data, cfg, info1 = trained
    assert len(info1["history"]) == 1 and info1["speakers"] == [f"spk{i:02d}" for i in range(6)]
    assert info1["train_utts"] + info1["valid_utts"] == 36
    first = (root / "asv_orig" / "embedding_model.ckpt").stat().st_mtime_ns
    more = AsvConfig(**{**TINY, "epochs": 2})
    with caplog.at_level(logging.INFO):
        info2 = train_asv(more, load_data_dir(data / "train"), root / "asv_orig")
    assert "resumed" in caplog.text and len(info2["history"]) == 2
    assert (root / "asv_orig" / "embedding_model.ckpt").stat().st_mtime_ns != first
    caplog.clear()
    with caplog.at_level(logging.INFO):
        train_asv(more, load_data_dir(data / "train"), root / "asv_orig")
    assert "kept" in caplog.text
    assert load_asv(root / "asv_orig").shape.emb_dim == 24


def test_scenarios_scores_and_skips(trained):
    root, data, _, _ = trained
    model_dir = root / "asv_orig"
    store = EmbeddingStore(load_asv(model_dir), model_dir, root / "res" / "emb", -30.0, 1.0)
    lists = find_trial_lists(["ev"], data)
    res = evaluate_asv(lists, ["original", "ignorant", "lazy-informed", "semi-informed"],
                       {"orig": store, "anon": "asv_anon: not trained (run stage 6)"}, data, "_anon",
                       root / "res", {})
    assert res["skipped"] == {"semi-informed": "asv_anon: not trained (run stage 6)"}
    per = res["trial_sets"]["ev"]
    assert set(per) == {"original", "ignorant", "lazy-informed"}
    # same audio on both sides: every scenario scores identically, and the file agrees with the EER
    assert per["original"]["eer"] == pytest.approx(per["ignorant"]["eer"])
    rows, tar, non = read_scores(per["original"]["scores"])
    assert len(tar) == 12 and len(non) == 36
    assert 100 * compute_eer(tar, non)[0] == pytest.approx(per["original"]["eer"])
    assert res["average"]["original"]["eer"] == pytest.approx(per["original"]["eer"])
    assert (root / "res" / "emb" / "ev.npz").is_file()


def test_trial_errors_name_the_ids(trained, tmp_path):
    root, data, _, _ = trained
    bad = tmp_path / "data"
    shutil.copytree(data / "ev", bad / "ev")
    store = EmbeddingStore(load_asv(root / "asv_orig"), root / "asv_orig", tmp_path / "emb", -30.0, 1.0)

    def run(trials, enrolls=None):
        write_trials(bad / "ev" / "trials", trials)
        if enrolls is not None:
            (bad / "ev" / "enrolls").write_text("".join(f"{u}\n" for u in enrolls))
        return evaluate_asv(find_trial_lists(["ev"], bad), ["original"], {"orig": store}, bad, "_anon",
                            tmp_path / "res", {})

    with pytest.raises(TrialError, match="unknown to the enrollment dir.*ghost"):
        run([Trial("ghost", "spk10-u03", False)])
    with pytest.raises(TrialError, match="missing from .*: nope-u01"):
        run([Trial("spk10", "nope-u01", True)])
    with pytest.raises(TrialError, match="no utterances in .*enrolls: spk11"):
        run([Trial("spk11", "spk10-u03", False)], enrolls=["spk10-u00", "spk10-u01"])
    res = run([Trial("spk10", "spk10-u03", True)], enrolls=["spk10-u00"])
    assert "EER undefined" in res["trial_sets"]["ev"]["original"]["error"]
    assert "no non-target" in res["trial_sets"]["ev"]["original"]["error"]


def test_vpc_layout_pairs_trials_with_enrollment(tmp_path):
    for name in ("libri_dev_enrolls", "libri_dev_trials_f", "libri_dev_trials_m", "libri_test_enrolls",
                 "libri_test_trials_f"):
        d = tmp_path / name
        d.mkdir()
        (d / "wav.scp").write_text("")
        (d / ("enrolls" if name.endswith("enrolls") else "trials")).write_text("")
    lists = find_trial_lists(["libri_dev_enrolls", "libri_dev_trials_f", "libri_dev_trials_m",
                              "libri_test_enrolls", "libri_test_trials_f"], tmp_path)
    assert [(t.name, t.enroll_set) for t in lists] == [
        ("libri_dev_trials_f", "libri_dev_enrolls"), ("libri_dev_trials_m", "libri_dev_enrolls"),
        ("libri_test_trials_f", "libri_test_enrolls")]
    with pytest.raises(TrialError, match="no eval set has an 'enrolls'"):
        find_trial_lists(["libri_dev_trials_f"], tmp_path)


@pytest.mark.slow
def test_ddp_training_with_torchrun_on_cpu(tmp_path):
    """Two processes (gloo) train one model through the same command run.sh uses on GPUs."""
    data = make_dir(tmp_path / "train", n_spk=4, n_utt=4, n_enroll=0)
    conf = tmp_path / "conf.yaml"
    conf.write_text("asv: " + str({**TINY, "features": "online", "device": "cpu"}).replace("'", '"') + "\n")
    out = tmp_path / "model"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "voxanon.bin.train_asv", "--conf", str(conf), str(data), str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 process(es)" in proc.stderr
    assert load_asv(out).shape.channels == 32
    # the same optimizer steps and learning rates as one process (one global batch split over two)
    one = train_asv(AsvConfig(**{**TINY, "features": "online", "device": "cpu"}), load_data_dir(data), tmp_path / "m1")
    two = json.loads((out / "asv.json").read_text())
    assert two["steps"] == one["steps"] > 0
    assert [h["lr"] for h in two["history"]] == pytest.approx([h["lr"] for h in one["history"]])


def test_last_batch_of_one_row_is_left_out(trained, tmp_path):
    """BatchNorm after the ECAPA pooling cannot train on a single row: such a last batch is skipped."""
    root, data, _, info1 = trained
    n = info1["train_rows"]
    info = train_asv(AsvConfig(**{**TINY, "batch_size": n - 1}), load_data_dir(data / "train"), tmp_path / "m")
    assert info["steps"] == 1 and info["train_rows"] == n


def test_chunks_decoded_alone_equal_the_crops_of_whole_reads(tmp_path):
    """The training loader decodes only each row's crops (FLAC and WAV, sample-exact); another rate
    is read whole: every item equals the whole-file path's."""
    from voxanon.eval.asv_train import ChunkSet

    rng = np.random.default_rng(3)
    d = tmp_path / "d"
    (d / "wav").mkdir(parents=True)
    scp = {}
    for utt, (sec, fmt) in {"a-1": (7.3, "FLAC"), "a-2": (3.1, "WAV"), "b-1": (4.2, "FLAC")}.items():
        x = (0.3 * rng.standard_normal(int(sec * 16000))).clip(-1, 1)
        sf.write(d / "wav" / f"{utt}.{fmt.lower()}", x, 16000, format=fmt, subtype="PCM_16")
        scp[utt] = f"wav/{utt}.{fmt.lower()}"
    sf.write(d / "wav" / "rec.wav", (0.3 * rng.standard_normal(8 * 8000)).clip(-1, 1), 8000, subtype="PCM_16")
    (d / "wav.scp").write_text("".join(f"{u} {w}\n" for u, w in scp.items()) + "b-2 wav/rec.wav\n")
    (d / "utt2spk").write_text("a-1 a\na-2 a\nb-1 b\nb-2 b\n")
    data = load_data_dir(d)
    utts = ["a-1", "a-2", "b-1", "b-2"]
    samples = {u: len(data.audio(u).samples) for u in utts}
    for raw_len in (0, 4 * 16000):
        sets = [ChunkSet(data, utts, {"a": 0, "b": 1}, 3 * 16000, None, False, raw_len, s) for s in (None, samples)]
        starts = list(rng.random(6)) if raw_len else []
        for s in sets:
            s.plan, s.raw_starts = epoch_plan([0, 0, 1, 2, 3, 3], 1986, 0), starts
        for i in range(6):
            whole, windows = sets[0][i], sets[1][i]
            assert whole[2] == windows[2]
            np.testing.assert_array_equal(whole[0].numpy(), windows[0].numpy())
            np.testing.assert_array_equal(whole[1].numpy(), windows[1].numpy())
            assert len(windows[1]) == raw_len
