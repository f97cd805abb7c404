"""The mixture-aware attacker and training-set filtering (voxanon.eval.mixture_attack) through
stages 6-8 (local/train_attacker.sh, local/evaluate.sh, make_report) on a tiny admixture of two
McAdams settings, and the pieces: one-hot part confs, the classifier, the per-trial choice of ASV."""
from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from voxanon.bin import anonymize as cli
from voxanon.config import read_conf
from voxanon.data.kaldi import Trial
from voxanon.eval.mixture_attack import mixture_aware_scores
from voxanon.eval.mixture_classifier import Classifier, accuracy_vs_draws
from voxanon.eval.mixture_parts import part_confs
from voxanon.testing.datadirs import make_dir

ROOT = Path(__file__).resolve().parents[1]
TINY_ASV = {"n_mels": 40, "channels": 32, "emb_dim": 24, "attention_channels": 16, "epochs": 1, "batch_size": 8,
            "chunk_s": 1.0, "lr": 0.01, "step_size": 20, "features": "precomputed", "num_workers": 0,
            "device": "cpu", "orig_model": ""}
# Two parts that sound clearly different: McAdams with the poles pulled far down or nearly left alone.
CONF = {"exp": "mix", "data": {"eval_sets": ["ev"], "asv_train_set": "train"},
        "anonymizer": {"system": "admixture", "suffix": "_mix", "seed": 7, "device": "cpu", "params": {"systems": [
            {"system": "mcadams", "p": 0.5, "params": {"alpha": 0.5}},
            {"system": "mcadams", "p": 0.5, "params": {"alpha": 0.95}}]}},
        "asv": TINY_ASV,
        "eval": {"metrics": ["asv"], "device": "cpu", "scenarios": ["lazy-informed", "semi-informed", "mixture-aware"]}}


def test_part_confs_are_the_admixture_with_one_part(tmp_path):
    conf = tmp_path / "mix.yaml"
    conf.write_text(yaml.safe_dump(CONF))
    paths = part_confs(conf, tmp_path / "exp")
    assert [p.name for p in paths] == ["part0.yaml", "part1.yaml"]
    for i, path in enumerate(paths):
        anon = read_conf(path)["anonymizer"]
        assert anon["suffix"] == f"_mix_part{i}" and anon["seed"] == 7
        assert [s["p"] for s in anon["params"]["systems"]] == [1.0 - i, float(i)]
        assert [s["params"]["alpha"] for s in anon["params"]["systems"]] == [0.5, 0.95]  # resolved params


def test_classifier_and_per_trial_choice():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (20, 3)), rng.normal(3, 1, (20, 3))])
    clf = Classifier.fit(x, np.repeat([0, 1], 20))
    assert (clf.predict(x) == np.repeat([0, 1], 20)).mean() > 0.9
    again = Classifier.from_json(json.loads(json.dumps(clf.to_json())))
    np.testing.assert_array_equal(again.predict(x), clf.predict(x))
    assert accuracy_vs_draws({"a": 0, "b": 1}, {"a": 0, "b": 0, "c": 1}) == {"accuracy": 0.5, "n_utts": 2}

    # speaker s enrolled on e0 (part 0) and e1 (part 1): a part-1 trial uses part 1's ASV on e1 only;
    # speaker r has part-0 enrollment only: its part-1 trial is cross-component (the ASV on both)
    enroll = {"s": ["e0", "e1"], "r": ["f0"]}
    labels = {"e0": 0, "e1": 1, "f0": 0, "t": 1}
    unit = {"x": np.array([1.0, 0.0]), "y": np.array([0.0, 1.0])}
    part0 = {"e0": unit["x"], "e1": unit["x"], "f0": unit["x"], "t": unit["x"]}
    part1 = {"e0": unit["x"], "e1": unit["y"], "f0": unit["x"], "t": unit["y"]}
    both = {"e0": unit["y"], "e1": unit["y"], "f0": unit["x"], "t": unit["x"]}
    scores, cross = mixture_aware_scores([Trial("s", "t", True), Trial("r", "t", False)], enroll, labels,
                                         [(part0, part0), (part1, part1)], (both, both),
                                         [(1.0, 0.0), (2.0, 1.0)], (10.0, -5.0))
    assert cross == 1
    np.testing.assert_allclose(scores, [2.0 * 1.0 + 1.0, 10.0 * 1.0 - 5.0])


def stages_5_to(last: str, conf: Path, data: Path, exp: Path, suffix: str) -> str:
    """Stage 5 (the runner) of the train and ev sets, then the shell stages 6-8 up to ``last``; their stdout."""
    for s in ("train", "ev"):
        records = ["--record-dir", str(exp / "anon_records" / f"{s}{suffix}")]
        for step in ("job", "finalize"):
            assert cli.main([step, "--conf", str(conf), *records, str(data / s), str(data / f"{s}{suffix}")]) == 0
    env, out = {**os.environ, "OMP_NUM_THREADS": "1"}, ""
    scripts = ["local/train_attacker.sh", "local/evaluate.sh", "local/make_report.sh"]
    for script in scripts[:scripts.index(last) + 1]:
        nj = ["--nj", "1"] if script == "local/train_attacker.sh" else []
        done = subprocess.run([str(ROOT / script), *nj, str(conf), str(data), str(exp)], cwd=conf.parent, env=env,
                              capture_output=True, text=True, timeout=1800)  # minutes on a loaded 2-core machine
        assert done.returncode == 0, f"{script}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        out += done.stdout
    return out


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """Stages 5-8 of the tiny admixture: the mixed sets (runner), then the shell stages 6-8."""
    top = tmp_path_factory.mktemp("mixture")
    data, exp = top / "data", top / "exp" / "mix"
    make_dir(data / "train", n_spk=6, n_utt=6, n_enroll=0, seconds=(1.2, 2.0))
    make_dir(data / "ev", n_spk=4, n_utt=6, n_enroll=3, spk_offset=10, seconds=(1.2, 2.0))
    conf = top / "mix.yaml"
    conf.write_text(yaml.safe_dump(CONF))
    console = stages_5_to("local/make_report.sh", conf, data, exp, "_mix")
    return data, exp, console


def test_stage6_trains_parts_classifier_and_clusters(experiment):
    data, exp, _ = experiment
    for i in (0, 1):
        assert (data / f"train_mix_part{i}" / "wav.scp").is_file()
        assert (exp / "mixture" / f"asv_part{i}" / "embedding_model.ckpt").is_file()
    info = json.loads((exp / "mixture" / "classifier.json").read_text())["info"]
    assert info["held_out_accuracy"] is not None and info["held_out_accuracy"] > 0.8
    assert info["train_vs_draws"]["accuracy"] > 0.8  # the diagnostic against the owner's records
    assert sum(c["utts"] for c in info["clusters"].values()) == 36
    assert any((exp / "mixture" / f"asv_cluster{i}" / "embedding_model.ckpt").is_file() for i in (0, 1))


def test_stage7_scores_mixture_aware_and_filtered(experiment):
    _, exp, console = experiment
    asv = json.loads((exp / "results" / "asv.json").read_text())
    per = asv["trial_sets"]["ev"]
    for scenario in ("semi-informed", "mixture-aware", "filtered"):
        assert "eer" in per[scenario] and scenario in asv["average"], scenario
        assert Path(per[scenario]["scores"]).is_file()
    assert 0 <= per["mixture-aware"]["cross_component_trials"] < 72
    mix = asv["mixture"]
    assert mix["classifier"]["held_out_accuracy"] > 0.8
    assert mix["classifier"]["eval_vs_draws"]["accuracy"] > 0.8
    assert mix["filtered"]["chosen"] in (0, 1)
    assert mix["strongest"] in ("semi-informed", "mixture-aware", "filtered")
    assert "EER ev mixture-aware" in console

    res = json.loads((exp / "results" / "results.json").read_text())
    head = res["headline"]
    assert {"eer_semi_informed", "eer_mixture_aware", "eer_filtered", "mixture_classifier_accuracy"} <= set(head)
    text = (exp / "results" / "results_extended.txt").read_text()
    assert "mixture-aware" in text and "component classifier" in text and "strongest attacker" in text
    page = (exp / "report" / "index.html").read_text()
    assert "mixture-aware" in page and "component classifier" in page


def test_another_p_uses_the_trained_part_asvs(experiment):
    """The sweep's later experiments (asv.part_models): stage 6 trains no part ASVs of its own, stage 7
    scores the mixture-aware attacker with the first experiment's."""
    data, first, _ = experiment
    top = first.parents[1]
    exp = top / "exp" / "mix2"
    conf = copy.deepcopy(CONF)
    conf.update({"exp": "mix2", "asv": {**TINY_ASV, "part_models": str(first / "mixture")}})
    conf["anonymizer"]["suffix"] = "_mix2"
    for system, p in zip(conf["anonymizer"]["params"]["systems"], (0.7, 0.3)):
        system["p"] = p
    path = top / "mix2.yaml"
    path.write_text(yaml.safe_dump(conf))
    out = stages_5_to("local/evaluate.sh", path, data, exp, "_mix2")
    assert f"asv_part0: {first / 'mixture'}/asv_part0 (asv.part_models)" in out
    assert not (exp / "mixture" / "asv_part0").exists() and (data / "train_mix2_part1" / "wav.scp").is_file()
    asv = json.loads((exp / "results" / "asv.json").read_text())
    assert "eer" in asv["trial_sets"]["ev"]["mixture-aware"]
    assert asv["models"]["mixture"].startswith(f"{first / 'mixture'}/asv_part<i>")
