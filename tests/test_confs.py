"""Every shipped conf runs end to end: run.sh stages 0-8 on a tiny corpus, on CPU, with the
random-weight stand-ins of tests/model_cache.py in place of every registry model.

A conf runs as shipped, through an overlay (``conf: conf/<name>.yaml``) that only points the data
recipe at tiny corpora (fake VPC 2024 / LibriSpeech / IEMOCAP in their published layouts, or a
small synthetic mini corpus), the devices at the CPU, and shrinks training to seconds. The egs
studies run their rows the same way, on a setup conf made of those overlays. A few representative
confs run by default; the rest carry the ``confs`` marker, which .ci/run runs after the default suite.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import link_recipe
from corpora_fakes import fake_iemocap, fake_librispeech, fake_voxceleb, fake_vpc
from model_cache import build_model_cache
from voxanon.config import read_conf
from voxanon.data.kaldi import load_data_dir
from voxanon.experiment import load_experiment

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (ROOT / "conf").glob("*.yaml") if p.stem != "models")
DEFAULT = ("admixture_p0.4",)  # the submitted system: kNN-VC + cascade, stages 2-3 through the admixture
POOL_TARGET = "id10001"  # a speaker of the fake VoxCeleb1 pool (the converter's target)

# Training shrunk to seconds; the systems' own settings stay as shipped. (The VPC epoch plan makes one
# row per whole 0.1 s chunk: batches of 256 keep an epoch to a few steps.)
ASV = {"channels": 16, "attention_channels": 8, "emb_dim": 16, "epochs": 1, "batch_size": 256, "chunk_s": 0.1,
       "step_size": 2, "num_workers": 0, "device": "cpu"}
TRAIN = {"device": "cpu", "pairs": {"target": POOL_TARGET, "valid_utts": 2},
         "model": {"feat_dim": 64, "hidden": 16, "heads": 2, "ffn_dim": 16, "encoder_layers": 1, "decoder_layers": 1},
         "objectives": {"adversary": {"channels": 8, "embedding_dim": 8},
                        "discrete": {"units": 4, "kmeans_frames": 500}},
         "optim": {"batch_size": 2, "max_steps": 4, "warmup_steps": 1, "checkpoint_every": 2, "valid_every": 2,
                   "log_every": 1, "num_workers": 0, "amp": False}}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A recipe dir linking to this checkout, with the model cache and the fake corpora."""
    top = link_recipe(tmp_path_factory.mktemp("confs"))
    cache, paths = build_model_cache(top / "models")
    corpora = top / "corpora"
    fake_vpc(corpora / "vpc")
    fake_librispeech(corpora / "LibriSpeech", "train-clean-360")
    # three targets in each pool: conf/knnvc_pooled.yaml pools three per utterance. Speech-like audio,
    # for stage 2 trims the pool's audio with a VAD (a steady tone would be cut away whole).
    fake_voxceleb(corpora / "VoxCeleb1")
    fake_librispeech(corpora / "LibriSpeech", "train-clean-100", speakers=("1034", "26", "19"), speech=True)
    fake_iemocap(corpora / "IEMOCAP")
    return top, cache, paths


def overlay(name: str, recipe) -> dict:
    """The test overlay of conf/<name>.yaml (see the module docstring)."""
    top, _, paths = recipe
    shipped = read_conf(ROOT / "conf" / f"{name}.yaml")
    conf = {"conf": str(ROOT / "conf" / f"{name}.yaml"), "exp": name, "models": {"paths": paths},
            "anonymizer": {"device": "cpu"}, "asv": ASV, "eval": {"device": "cpu"}}
    recipe_name = shipped["data"]["recipe"]
    if recipe_name == "vpc2024":
        # corpus locations come from db.sh (run.sh's environment here, see run()); only the sets are narrowed
        conf["data"] = {  # dev enrolls + female trials only: the other sets take the same code path
                        "eval_sets": [s for s in shipped["data"]["eval_sets"] if s.startswith("libri_dev_")
                                      and not s.endswith("_m")],
                        "emotion_sets": [s for s in shipped["data"]["emotion_sets"] if s.endswith("_dev")]}
    else:
        assert recipe_name == "mini", f"conf/{name}.yaml: no tiny corpus for data.recipe {recipe_name}"
        conf["data"] = {"options": {"train_utts": 2, "eval_utts": 3, "enroll_utts": 1}}
    if "features" in shipped:
        conf["features"] = {"device": "cpu"}
    if "targets" in shipped:
        conf["targets"] = {"min_minutes": 0.0}
    if "train" in shipped:
        conf["train"] = TRAIN
    if name not in DEFAULT and shipped.get("anonymizer", {}).get("system") == "admixture":
        # The mixture-aware attacker (2 more anonymizations and ASVs per part) runs in the default
        # admixture conf and tests/test_mixture_attack.py; the other admixtures leave it out for CI's time.
        conf["eval"]["scenarios"] = ["original", "ignorant", "lazy-informed", "semi-informed"]
    return conf


def run(top: Path, cache: Path, *cmd: str) -> subprocess.CompletedProcess:
    corpora = top / "corpora"
    db = {"VPC2024_DATA": corpora / "vpc", "VPC2024_AUDIO": corpora / "vpc", "LIBRISPEECH": corpora / "LibriSpeech",
          "IEMOCAP": corpora / "IEMOCAP", "VOXCELEB1": corpora / "VoxCeleb1",
          "VOXCELEB1_META": corpora / "VoxCeleb1" / "vox1_meta.csv"}  # db.sh's variables
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VOXANON_")}, "VOXANON_CACHE": str(cache),
           "OMP_NUM_THREADS": "1", **{k: str(v) for k, v in db.items()}}
    return subprocess.run(cmd, cwd=top, env=env, capture_output=True, text=True, timeout=1800)


def check_results(top: Path, exp: str) -> None:
    """What stages 5-8 must leave: every set anonymized with its ids, EERs, the report page."""
    resolved = load_experiment(top / "confs" / f"{exp}.yaml")
    pool_name = resolved.data.target_pool
    suffix = resolved.anonymizer.suffix
    data_root = top / "data"
    for s in resolved.data.anonymized_sets:
        original, anon = load_data_dir(data_root / s), load_data_dir(data_root / f"{s}{suffix}")
        assert sorted(anon.utt2spk) == sorted(original.utt2spk) and all(Path(p).is_file() for p in anon.wav_scp.values())
    if resolved.uses_targets:
        pool = top / "exp" / "targets" / pool_name  # stage 3 built the matching sets
        assert (pool / ".targets.json").is_file() and len(set(load_data_dir(data_root / pool_name).utt2spk.values())) == 3
    results = (top / "exp" / exp / "results" / "results.json").read_text()
    assert "semi-informed" in results and "EER" in results.upper()
    assert (top / "exp" / exp / "report" / "index.html").is_file()


def newest_log(top: Path) -> str:
    """The tail of the job log written last (run.sh shows only its stage log's tail)."""
    logs = sorted((p for p in top.glob("exp/**/*.log") if not p.name.startswith("stage")), key=lambda p: p.stat().st_mtime)
    return f"{logs[-1]}:\n{logs[-1].read_text()[-3000:]}" if logs else ""


def run_conf(name: str, recipe) -> None:
    top, cache, _ = recipe
    conf = overlay(name, recipe)
    path = top / "confs" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    done = run(top, cache, "./run.sh", "--conf", str(path), "--nj", "1")
    assert done.returncode == 0, f"conf/{name}.yaml failed:\n{done.stderr[-2000:]}\n{newest_log(top)}"
    check_results(top, name)


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=() if n in DEFAULT else pytest.mark.confs) for n in SHIPPED])
def test_shipped_conf_runs_stages_0_to_8(name, recipe):
    run_conf(name, recipe)


def test_admixture_runs_under_the_vpc2026_protocol(recipe):
    """The submitted admixture composed with conf/base/vpc2026_track1.yaml, dev sets only: the mixed
    trials, asv_ssl as ASV_eval, the semi-informed attacker fine-tuned from it (chunks and WavLM crops
    shrunk, batches small enough to be full with drop_last), the Track 1 results layout."""
    top, cache, _ = recipe
    name = DEFAULT[0]
    conf = overlay(name, recipe)
    conf.update({"conf": [conf["conf"], str(ROOT / "conf" / "base" / "vpc2026_track1.yaml")], "exp": f"{name}_vpc26",
                 "asv": {**ASV, "chunk_s": 1.0, "batch_size": 16, "wavlm_crop_s": 0.5}})
    conf["data"] = {"eval_sets": ["libri_dev_enrolls", "libri_dev_trials_mixed"], "emotion_sets": ["IEMOCAP_dev"]}
    path = top / "confs" / f"{conf['exp']}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    done = run(top, cache, "./run.sh", "--conf", str(path), "--nj", "1")
    assert done.returncode == 0, f"{path.name} failed:\n{done.stderr[-2000:]}\n{newest_log(top)}"
    check_results(top, conf["exp"])
    exp = top / "exp" / conf["exp"]
    info = yaml.safe_load((exp / "asv_anon" / "asv.json").read_text())
    assert info["init_model"].endswith("asv_ssl") and info["steps"] > 0
    track1 = (exp / "results_summary" / "track1" / f"result_for_rank_{conf['exp']}").read_text()
    assert "mixed" in track1.split("---- ASV_eval^anon results ----")[1]


@pytest.mark.parametrize("rows", sorted((ROOT / "egs").glob("*/rows*.tsv")), ids=lambda p: p.name)
def test_every_egs_row_is_a_shipped_conf(rows):
    """The studies run their rows' confs through run.sh: each must be one the conf test runs."""
    names = [line.split("\t")[2] for line in rows.read_text().splitlines() if line and not line.startswith("#")]
    assert names and all(n == "-" or n in SHIPPED for n in names), names
