"""The wavlm_conv system end to end with tiny random models in the published layouts (kNN-VC
helpers): WavLM features -> matching sets -> pairs -> k-means units -> training -> anonymized
data dir; in Python (default) and through the stage scripts (slow)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from converter_fixtures import one_thread  # noqa: F401
from knnvc_helpers import TINY, make_pool, save_tiny_models, tiny_wavlm, voiced
from voxanon.anonymize.base import BuildContext
from voxanon.anonymize.wavlm_conv import Params, WavLMConversion
from voxanon.audio import read_audio
from voxanon.features.wavlm import save_wavlm
from voxanon.bin import anonymize as cli
from voxanon.bin import make_targets, make_wavlm, train_converter
from voxanon.data.kaldi import load_data_dir, validate_data_dir

ROOT = Path(__file__).resolve().parents[1]
TRAIN = {
    "pairs": {"train_set": "train", "target": "t1", "valid_utts": 1, "recon_share": 0.25},
    "model": {"feat_dim": TINY.encoder_embed_dim, "hidden": 32, "heads": 2, "ffn_dim": 64, "encoder_layers": 1,
              "decoder_layers": 1},
    "objectives": {"adversary": {"enabled": True, "channels": 16, "embedding_dim": 8},
                   "discrete": {"enabled": True, "units": 6}},
    "optim": {"batch_size": 4, "max_steps": 20, "warmup_steps": 5, "checkpoint_every": 10, "valid_every": 10,
              "log_every": 10, "num_workers": 0},
    "device": "cpu",
}


def write_conf(root: Path, train: dict | None = None, dest: Path | None = None) -> Path:
    conf = (dest or root) / "conf.yaml"
    conf.write_text(json.dumps({
        "exp": "conv_test",
        "data": {"recipe": "mini", "target_pool": "pool", "asv_train_set": "train", "eval_sets": ["train"]},
        "features": {"dir": str(root / "feats"), "checkpoint": str(root / "models" / "wavlm_original.pt"),
                     "layer": 3, "device": "cpu", "sets": ["pool", "train"]},
        "targets": {"dir": str(root / "targets"), "min_minutes": 0.0},
        "train": train or TRAIN,
        "anonymizer": {"system": "wavlm_conv", "device": "cpu", "seed": 4242, "params": {
            "wavlm": str(root / "models" / "wavlm_original.pt"), "layer": 3,
            "vocoder": str(root / "models" / "prematch_g.pt")}},
    }))
    return conf


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Tiny models, a 2-speaker target pool and a 3-speaker training set under data/."""
    root = tmp_path_factory.mktemp("conv_e2e")
    save_tiny_models(root / "models", "original")
    (root / "data").mkdir()
    make_pool(root / "p", {f"t{i}": [voiced(0.8, 110 + 60 * i, i), voiced(0.6, 120 + 60 * i, 10 + i)]
                           for i in range(2)}).rename(root / "data" / "pool")
    make_pool(root / "s", {f"s{i}": [voiced(0.5 + 0.1 * j, 90 + 50 * i + 7 * j, 20 + 3 * i + j) for j in range(3)]
                           for i in range(3)}).rename(root / "data" / "train")
    return root


def stage2_3(root: Path, conf: Path) -> None:
    for name in ("pool", "train"):
        args = ["--checkpoint", str(root / "models" / "wavlm_original.pt"), "--layer", "3", "--device", "cpu"]
        assert make_wavlm.main([*args, str(root / "data" / name), str(root / "feats" / name)]) == 0
        assert make_wavlm.main(["--finalize", str(root / "data" / name), str(root / "feats" / name)]) == 0
    assert make_targets.main(["--conf", str(conf), str(root / "data" / "pool"), str(root / "feats" / "pool"),
                              str(root / "targets" / "pool")]) == 0


def test_python_end_to_end(root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    conf = write_conf(root)
    stage2_3(root, conf)
    feats, out = root / "feats" / "train" / "feats.scp", tmp_path / "exp" / "conv_test" / "converter"
    pairs = out / "pairs"
    common = ["--conf", str(conf), "--feats", str(feats), "--pairs-dir", str(pairs), "--nj", "2"]
    assert train_converter.main(["finalize", *common, "--data", str(root / "data" / "train")]) == 2  # no shards
    for job in ("1", "2"):
        assert train_converter.main(["pairs", *common, "--job", job, "--device", "cpu"]) == 0
    assert train_converter.main(["finalize", *common, "--data", str(root / "data" / "train")]) == 0
    assert (pairs / "units.npy").is_file() and (pairs / "recon.npy").is_file()
    assert train_converter.main(["train", "--conf", str(conf), "--pairs-dir", str(pairs), "--out-dir", str(out),
                                 "--device", "cpu"]) == 0
    assert (out / "final.pt").is_file()

    # the conf names no checkpoint: it is exp/<exp>/converter/final.pt, stage 4's output
    anon = tmp_path / "train_anon"
    src = root / "data" / "train"
    assert cli.main(["job", "--conf", str(conf), "--record-dir", str(tmp_path / "rec"), str(src), str(anon)]) == 0
    assert cli.main(["finalize", "--conf", str(conf), "--record-dir", str(tmp_path / "rec"), str(src),
                        str(anon)]) == 0
    validate_data_dir(anon)
    data = load_data_dir(anon)
    assert data.utts == load_data_dir(src).utts
    for utt in data.utts:
        audio = read_audio(data.wav_scp[utt])
        source = read_audio(load_data_dir(src).wav_scp[utt])
        frames = (len(source.samples) - 400) // 320 + 1  # WavLM frames; the converter keeps their number
        assert audio.sample_rate == 16000 and len(audio.samples) == frames * 320
    records = [json.loads(line) for line in (tmp_path / "rec" / "records.1.jsonl").read_text().splitlines()]
    assert {r["target"] for r in records} == {"t1"}
    refuses_other_features(root, out / "final.pt", tmp_path)


def refuses_other_features(root: Path, final: Path, tmp_path: Path) -> None:
    """The converter is tied to the WavLM weights and layer of its training features: the same
    weights in torchaudio's layout are accepted; another layer or other weights are refused."""
    models = root / "models"
    ctx = BuildContext(seed=0, device="cpu", work_dir=tmp_path / "work")
    build = lambda wavlm, layer: WavLMConversion(  # noqa: E731
        Params(checkpoint=str(final), wavlm=str(wavlm), layer=layer, vocoder=str(models / "prematch_g.pt")), ctx)
    assert build(models / "wavlm_original.pt", 3).target == "t1"
    save_wavlm(tiny_wavlm(), tmp_path / "same_torchaudio.pt", "torchaudio")
    build(tmp_path / "same_torchaudio.pt", 3)
    with pytest.raises(ValueError, match=r"trained on layer-3 features of WavLM weights \w+, but anonymizer.params "
                                         r"asks for layer 2 of"):
        build(models / "wavlm_original.pt", 2)
    save_wavlm(tiny_wavlm(seed=1), tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"layer 3 of .*other.pt \(weights \w+\): use the features.checkpoint"):
        build(tmp_path / "other.pt", 3)


def test_wrong_target_and_changed_pairs_settings_are_named(root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    conf = write_conf(root)
    if not (root / "targets" / "pool").is_dir():
        stage2_3(root, conf)
    feats = root / "feats" / "train" / "feats.scp"
    args = ["--feats", str(feats), "--pairs-dir", str(tmp_path / "pairs"), "--device", "cpu"]
    bad = write_conf(root, {**TRAIN, "pairs": {**TRAIN["pairs"], "target": "nobody"}}, tmp_path)
    assert train_converter.main(["pairs", "--conf", str(bad), *args]) == 2
    assert "train.pairs.target 'nobody' is not a speaker of the matching sets" in capsys.readouterr().err
    assert train_converter.main(["pairs", "--conf", str(conf), *args]) == 0
    other_k = write_conf(root, {**TRAIN, "pairs": {**TRAIN["pairs"], "k": 2}}, tmp_path)
    assert train_converter.main(["pairs", "--conf", str(other_k), *args]) == 2
    assert "holds pairs made with other settings" in capsys.readouterr().err


@pytest.mark.slow
def test_stage_scripts_end_to_end(root, tmp_path):
    """local/train_converter.sh (stage 4) then steps/anonymize.sh (stage 5), as run.sh calls them."""
    conf = write_conf(root)
    if not (root / "targets" / "pool").is_dir():
        stage2_3(root, conf)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VOXANON_")}, "OMP_NUM_THREADS": "1"}
    stage4 = [str(ROOT / "local" / "train_converter.sh"), "--nj", "2", str(conf), str(root / "data"), "exp/conv_test"]
    run = subprocess.run(stage4, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    log = tmp_path / "exp" / "conv_test" / "converter" / "log" / "train.log"
    again = subprocess.run(stage4, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0 and "resumed from" in log.read_text()
    run = subprocess.run([str(ROOT / "steps" / "anonymize.sh"), "--nj", "2", "--record-dir", "exp/rec", str(conf),
                          str(root / "data" / "train"), str(root / "data" / "train_conv")],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    validate_data_dir(root / "data" / "train_conv")
