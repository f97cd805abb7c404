"""Evaluation caches: every utterance is embedded once per model across trial lists and scenarios,
a killed run resumes from what it saved, and a SER fold's cache keeps all its speakers."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from voxanon.testing.datadirs import iemocap_dir, make_dir, speaker_wave
from voxanon.data.kaldi import DataDir, load_data_dir, write_data_dir
from voxanon.eval.asv_model import EMBEDDING_FILE, EcapaShape, build_ecapa, load_asv
from voxanon.eval.cache import ArrayCache, audio_stamp
from voxanon.eval.scoring import SCENARIOS, EmbeddingStore, evaluate_asv, find_trial_lists

SETS = ["libri_dev_enrolls", "libri_dev_trials_f", "libri_dev_trials_m"]


@pytest.fixture(scope="module")
def vpc_layout(tmp_path_factory):
    """libri_dev_enrolls + trials_f / trials_m (VPC layout) and their "_anon" copies (other files);
    two tiny ECAPA models standing in for ASV_orig and ASV_anon."""
    root = tmp_path_factory.mktemp("vpc_layout")
    src = load_data_dir(make_dir(root / "src", n_spk=4, n_utt=4, n_enroll=2))
    gender = src.table("spk2gender")
    enrolls = set(src.enrolls)
    data = root / "data"
    for name in SETS:
        if name == "libri_dev_enrolls":
            utts = sorted(enrolls)
        else:
            utts = [u for u in src.utts if u not in enrolls and gender[src.utt2spk[u]] == name[-1]]
        trials = None if name == "libri_dev_enrolls" else tuple(t for t in src.trials if t.utt in set(utts))
        d = DataDir({u: str(src.path / src.wav_scp[u]) for u in utts}, {u: src.utt2spk[u] for u in utts},
                    {"spk2gender": gender}, tuple(utts) if trials is None else None, trials)
        write_data_dir(d, data / name)
        anon = data / f"{name}_anon"
        (anon / "wav").mkdir(parents=True)
        for u in utts:  # other files, other audio
            sf.write(anon / "wav" / f"{u}.wav", 0.5 * sf.read(d.wav_scp[u], dtype="float32")[0][::-1], 16000)
        write_data_dir(DataDir({u: f"wav/{u}.wav" for u in utts}, d.utt2spk, d.tables, d.enrolls, trials), anon)
    models = {}
    for i, key in enumerate(("orig", "anon")):
        torch.manual_seed(i)
        (root / key).mkdir()
        torch.save(build_ecapa(EcapaShape(40, 32, 16, 24)).state_dict(), root / key / EMBEDDING_FILE)
        models[key] = root / key
    return data, models, len(src.utts)


def counting_stores(models, cache_root, calls, fail_after=None):
    stores = {}
    for key, path in models.items():
        model = load_asv(path)
        orig_embed = model.embed

        def embed(samples, raw=None, key=key, orig_embed=orig_embed):
            if fail_after is not None and sum(len(v) for v in calls.values()) >= fail_after:
                raise KeyboardInterrupt  # a killed stage 7
            calls.setdefault(key, []).append(len(samples))
            return orig_embed(samples)

        model.embed = embed
        stores[key] = EmbeddingStore(model, path, cache_root / f"asv_{key}", -30.0, 1.0)
    return stores


SCORED = [s for s, spec in SCENARIOS.items() if spec[2] in ("orig", "anon")]  # the two models given


def test_each_utterance_embedded_once_per_model(vpc_layout, tmp_path):
    data, models, n_utts = vpc_layout
    lists = find_trial_lists(SETS, data)
    calls: dict[str, list] = {}
    stores = counting_stores(models, tmp_path / "emb", calls)
    res = evaluate_asv(lists, SCORED, stores, data, "_anon", tmp_path / "res", {})
    # ASV_orig: original audio (original, ignorant enrollment) + anonymized audio (ignorant trials,
    # lazy-informed); ASV_anon: the anonymized audio only. Two trial lists share the enrollment.
    assert len(calls["orig"]) == 2 * n_utts and len(calls["anon"]) == n_utts
    assert stores["orig"].n_embedded == 2 * n_utts and stores["anon"].n_embedded == n_utts
    assert set(res["average"]) == set(SCORED)
    # the enrollment set's file holds the enrollment of both trial lists
    enroll = load_data_dir(data / "libri_dev_enrolls")
    saved = ArrayCache(tmp_path / "emb" / "asv_orig" / "libri_dev_enrolls.npz", stores["orig"].tag)
    assert len(saved.load({u: audio_stamp(enroll, u) for u in enroll.utts})) == len(enroll.utts)
    # a new run (a new process) embeds nothing and scores the same
    again: dict[str, list] = {}
    res2 = evaluate_asv(lists, SCORED, counting_stores(models, tmp_path / "emb", again), data, "_anon",
                        tmp_path / "res2", {})
    assert again == {}
    assert {k: v["eer"] for k, v in res2["average"].items()} == {k: v["eer"] for k, v in res["average"].items()}
    # a request returns exactly the utterances asked for
    one = stores["orig"].get(enroll, "libri_dev_enrolls", {enroll.utts[0]})
    assert list(one) == [enroll.utts[0]]


def test_killed_scoring_resumes(vpc_layout, tmp_path):
    src, models, n_utts = vpc_layout
    data = tmp_path / "data"
    shutil.copytree(src, data)  # the anonymized dirs' audio comes along (relative wav.scp)
    lists = find_trial_lists(SETS, data)
    calls: dict[str, list] = {}

    def run(calls, fail_after=None):
        evaluate_asv(lists, ["ignorant"], counting_stores({"orig": models["orig"]}, tmp_path / "emb", calls,
                                                          fail_after), data, "_anon", tmp_path / "res", {})

    with pytest.raises(KeyboardInterrupt):
        run(calls, fail_after=5)
    assert len(calls["orig"]) == 5
    rest: dict[str, list] = {}
    run(rest)
    assert len(rest["orig"]) == n_utts - 5  # original enrollment + anonymized trials, the rest of them
    # replaced audio is embedded again, nothing else
    trials = load_data_dir(data / "libri_dev_trials_f_anon")
    sf.write(trials.path / trials.wav_scp[trials.utts[0]], speaker_wave(7, 0, 1.1), 16000)
    more: dict[str, list] = {}
    run(more)
    assert len(more["orig"]) == 1


def test_array_cache_keeps_other_entries_and_survives_a_broken_file(tmp_path):
    path = tmp_path / "c.npz"
    a = ArrayCache(path, "m1")
    a.save({"u1": np.ones(3)}, {"u1": "s1"})
    b = ArrayCache(path, "m1")
    b.save({"u2": np.zeros(3)}, {"u2": "s2"})  # another request: u1 stays
    c = ArrayCache(path, "m1")
    assert sorted(c.load({"u1": "s1", "u2": "s2"})) == ["u1", "u2"]
    assert c.load({"u1": "other audio"}) == {}
    assert ArrayCache(path, "m2").load({"u1": "s1"}) == {}  # another model
    path.write_bytes(b"cut short")
    assert ArrayCache(path, "m1").load({"u1": "s1"}) == {}


def test_ser_fold_cache_keeps_all_speakers(tmp_path):
    from voxanon.testing.vpc_models import make_vpc_ser
    from voxanon.eval import ser

    models = make_vpc_ser(tmp_path / "ser", folds=2)
    orig = iemocap_dir(tmp_path / "IEMOCAP_dev")  # 4 speakers, two per fold
    test = iemocap_dir(tmp_path / "IEMOCAP_test", n_spk=2)
    calls, loads = [], []
    posteriors, init = ser.FoldModel.posteriors, ser.FoldModel.__init__

    def counted(self, samples):
        calls.append(len(samples))
        return posteriors(self, samples)

    def counted_init(self, *a, **k):
        loads.append(a[0])
        init(self, *a, **k)

    ser.FoldModel.posteriors, ser.FoldModel.__init__ = counted, counted_init
    try:
        loaded: dict = {}
        first = ser.evaluate_uar(orig, None, models, tmp_path / "cache", loaded=loaded)
        assert len(calls) == len(orig.utts) and len(loads) == 2
        ser.evaluate_uar(test, None, models, tmp_path / "cache", loaded=loaded)
        assert len(loads) == 2  # the second emotion set reuses the loaded fold models
        for fold in ("1", "2"):
            spks = [s for s, f in orig.table("spk2fold").items() if f == fold]
            utts = [u for u in orig.utts if orig.utt2spk[u] in spks]
            cache = ArrayCache(tmp_path / "cache" / f"IEMOCAP_dev.fold_{fold}.npz", loaded[fold].tag)
            assert len(spks) == 2 and len(cache.load({u: audio_stamp(orig, u) for u in utts})) == len(utts)
        calls.clear()
        again = ser.evaluate_uar(orig, None, models, tmp_path / "cache")
        assert calls == [] and again["original"]["uar"] == first["original"]["uar"]
    finally:
        ser.FoldModel.posteriors, ser.FoldModel.__init__ = posteriors, init


def test_evaluate_sets_passive_openmp_waits_before_torch():
    """Stage 7 makes idle OpenMP threads sleep (1 ms-scale ECAPA ops on a shared machine were 10x
    slower with spinning threads); that only works if torch is not imported before main()."""
    code = ("import sys, os; from voxanon.bin import evaluate; assert 'torch' not in sys.modules; "
            "evaluate.quiet_openmp_waits(); print(os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"  # the user's choice stands
