"""The knnvc anonymizer: reproducible targets, paper variants, bad input, and an end-to-end run
(features -> matching sets -> anonymized data dir) with random models in the published layouts."""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from knnvc_helpers import make_pool, save_tiny_models, voiced, one_torch_thread  # noqa: F401 (autouse fixture)
from voxanon.anonymize.base import BuildContext, Utterance, build_system
from voxanon.anonymize.knnvc import resample_frames, speed_perturb
from voxanon.audio import Audio, AudioError, read_audio
from voxanon.bin import anonymize as cli
from voxanon.bin import make_targets, make_wavlm
from voxanon.data.kaldi import load_data_dir, validate_data_dir, write_data_dir
from voxanon.features.wavlm import extract_layer

ROOT = Path(__file__).resolve().parents[1]


def write_conf(path: Path, root: Path, layout: str = "original", **params) -> Path:
    base = {"matching_sets": str(root / "targets" / "pool"), "vocoder": str(root / "models" / "prematch_g.pt")}
    path.write_text(json.dumps({
        "exp": "knnvc_test",
        "data": {"recipe": "mini", "target_pool": "pool"},
        "features": {"dir": str(root / "feats"), "checkpoint": str(root / "models" / f"wavlm_{layout}.pt"), "layer": 3},
        "targets": {"dir": str(root / "targets"), "min_minutes": 0.0},
        "anonymizer": {"system": "knnvc", "device": "cpu", "seed": 1986, "params": {**base, **params}},
    }))
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Tiny models (WavLM in the torchaudio layout here; the e2e test uses the original one),
    a 4-speaker pool, its features and matching sets."""
    root = tmp_path_factory.mktemp("knnvc")
    wavlm, _ = save_tiny_models(root / "models", "torchaudio")
    pool = make_pool(root / "data", {f"t{i}": [voiced(0.8, 100 + 40 * i, i)] for i in range(4)})
    conf = write_conf(root / "conf.yaml", root, "torchaudio")
    assert make_wavlm.main(["--checkpoint", str(wavlm), "--layer", "3", str(pool), str(root / "feats" / "pool")]) == 0
    assert make_wavlm.main(["--finalize", str(pool), str(root / "feats" / "pool")]) == 0
    assert make_targets.main(["--conf", str(conf), str(pool), str(root / "feats" / "pool"),
                              str(root / "targets" / "pool")]) == 0
    return root


def system(root: Path, seed: int = 1986, **params):
    base = {"matching_sets": str(root / "targets" / "pool"), "vocoder": str(root / "models" / "prematch_g.pt")}
    return build_system("knnvc", {**base, **params}, BuildContext(seed, "cpu", root / "work"))


def utt(uid: str, seconds: float = 0.25, freq: float = 180.0) -> Utterance:
    return Utterance(uid, "src", Audio(voiced(seconds, freq, 9), 16000))


def test_targets_reproducible_and_varied(prepared):
    a, b = system(prepared, targets_per_utt=2, target_weights="random"), system(prepared, targets_per_utt=2,
                                                                                 target_weights="random")
    choices = [a.choose(f"u{i}") for i in range(40)]
    assert choices == [b.choose(f"u{i}") for i in range(40)]  # same seed + utt -> same choice
    assert len({tuple(c["targets"]) for c in choices}) > 5
    assert all(len(set(c["targets"])) == 2 and abs(sum(c["weights"]) - 1) < 1e-5 for c in choices)
    other = system(prepared, seed=7, targets_per_utt=2, target_weights="random")
    assert [other.choose(f"u{i}") for i in range(40)] != choices
    single = system(prepared, length_variation=True)
    factors = [single.choose(f"u{i}")["length_factor"] for i in range(40)]
    assert 0.8 <= min(factors) < 0.9 and 1.1 < max(factors) <= 1.2


def test_convert_record_and_variants(prepared):
    plain = system(prepared)
    out = plain(utt("a1"))
    assert len(out.audio.samples) == 12 * 320 and np.isfinite(out.audio.samples).all()
    assert out.record == {"system": "knnvc", "targets": out.record["targets"], "weights": [1.0], "length_factor": 1.0}

    lenvar = system(prepared, length_variation=True)  # default: speed perturbation of the audio
    res = lenvar(utt("a1"))
    factor = res.record["length_factor"]
    assert factor != 1.0 and res.record["targets"] == out.record["targets"]
    sped = speed_perturb(utt("a1").audio, factor)
    assert len(sped.samples) == round(4000 * factor)
    assert len(res.audio.samples) == len(extract_layer(lenvar.wavlm, sped, lenvar.layer)) * 320
    frames = system(prepared, length_variation=True, length_method="features")(utt("a1"))
    assert frames.record == res.record
    assert len(frames.audio.samples) == round(12 * factor) * 320

    noisy = system(prepared, feature_noise=True, noise_bound=32.0)
    res_noisy = noisy(utt("a1"))
    assert res_noisy.record["targets"] == out.record["targets"]
    assert not np.array_equal(res_noisy.audio.samples, out.audio.samples)
    np.testing.assert_array_equal(noisy(utt("a1")).audio.samples, res_noisy.audio.samples)


@pytest.mark.parametrize("factor", [0.8, 0.937, 1.2])
def test_speed_perturbation_changes_duration_and_pitch_by_the_factor(factor):
    rate, f0 = 16000, 200.0
    t = np.arange(rate) / rate
    tone = Audio(np.sin(2 * np.pi * f0 * t).astype(np.float32), rate)
    out = speed_perturb(tone, factor)
    assert out.sample_rate == rate and len(out.samples) == round(rate * factor)
    spectrum = np.abs(np.fft.rfft(out.samples * np.hanning(len(out.samples)), n=16 * len(out.samples)))
    peak = np.argmax(spectrum) * rate / (16 * len(out.samples))
    assert peak == pytest.approx(f0 / factor, rel=2e-3)


def test_resample_frames():
    x = torch.arange(10.0)[:, None].repeat(1, 3)
    y = resample_frames(x, 1.2)
    assert y.shape == (12, 3) and y[0, 0] == 0 and y[-1, 0] == 9


def test_bad_input(prepared, tmp_path):
    plain = system(prepared)
    with pytest.raises(AudioError, match="short1: .*shorter than one WavLM frame"):
        plain(Utterance("short1", "s", Audio(np.zeros(300, np.float32), 16000)))
    silent = plain(Utterance("quiet", "s", Audio(np.zeros(4000, np.float32), 16000)))
    assert np.isfinite(silent.audio.samples).all() and len(silent.audio.samples) == 12 * 320
    with pytest.raises(ValueError, match="targets_per_utt=9 but .* has only 4"):
        system(prepared, targets_per_utt=9)
    with pytest.raises(FileNotFoundError, match="run stage 3"):
        system(prepared, matching_sets=str(tmp_path / "none"))


def test_end_to_end_python(prepared, tmp_path, monkeypatch):
    """Original-layout WavLM checkpoint: features -> matching sets -> anonymize -> complete data dir."""
    monkeypatch.chdir(tmp_path)
    root = prepared
    conf = write_conf(tmp_path / "c.yaml", root, "original", targets_per_utt=2, length_variation=True,
                      feature_noise=True)
    save_tiny_models(root / "models", "original")
    # A separate matching-set dir from original-layout features (same weights as the torchaudio file).
    pool, feats, sets = root / "data" / "pool", tmp_path / "feats", tmp_path / "sets"
    assert make_wavlm.main(["--checkpoint", str(root / "models" / "wavlm_original.pt"), "--layer", "3",
                            "--nj", "2", "--job", "1", str(pool), str(feats)]) == 0
    assert make_wavlm.main(["--finalize", "--nj", "2", str(pool), str(feats)]) == 1  # shard 2 missing
    assert make_wavlm.main(["--checkpoint", str(root / "models" / "wavlm_original.pt"), "--layer", "3",
                            "--nj", "2", "--job", "2", str(pool), str(feats)]) == 0
    assert make_wavlm.main(["--finalize", "--nj", "2", str(pool), str(feats)]) == 0
    assert make_targets.main(["--conf", str(conf), str(pool), str(feats), str(sets)]) == 0
    conf = write_conf(tmp_path / "c.yaml", root, "original", matching_sets=str(sets), targets_per_utt=2,
                      length_variation=True, feature_noise=True)
    src = make_pool(tmp_path / "src", {"spkA": [voiced(0.4, 130, 1), voiced(0.3, 140, 2)],
                                       "spkB": [voiced(0.35, 220, 3)]})
    out = tmp_path / "anon"
    assert cli.main(["job", "--conf", str(conf), "--record-dir", str(tmp_path / "rec"), str(src), str(out)]) == 0
    assert cli.main(["finalize", "--conf", str(conf), "--record-dir", str(tmp_path / "rec"), str(src),
                        str(out)]) == 0
    validate_data_dir(out)
    data = load_data_dir(out)
    assert data.utts == load_data_dir(src).utts
    for u in data.utts:
        audio = read_audio(data.wav_scp[u])
        assert audio.sample_rate == 16000 and len(audio.samples) > 0
    records = [json.loads(line) for line in (tmp_path / "rec" / "records.1.jsonl").read_text().splitlines()]
    assert {r["utt"] for r in records} == set(data.utts) and all(len(r["targets"]) == 2 for r in records)


def timit_subset(shared: Path, dest: Path, speakers: slice, utts_per_speaker: int) -> Path:
    d = load_data_dir(shared / "timit")
    spks = sorted(set(d.utt2spk.values()))[speakers]
    keep = [u for u in d.utts if d.utt2spk[u] in spks]
    keep = [u for s in spks for u in [x for x in keep if d.utt2spk[x] == s][:utts_per_speaker]]
    wav = {u: str((d.path / d.wav_scp[u]).resolve()) for u in keep}
    genders = {s: g for s, g in (d.table("spk2gender") or {}).items() if s in spks}
    write_data_dir(replace(d, wav_scp=wav, utt2spk={u: d.utt2spk[u] for u in keep}, tables={"spk2gender": genders},
                           enrolls=(), trials=()), dest)
    return dest


@pytest.mark.slow
def test_end_to_end_scripts_on_timit(shared_data, tmp_path):
    """As a user would: steps/make_wavlm.sh, local/make_targets.sh, steps/anonymize.sh on real speech
    (a TIMIT subset: 4 target speakers, 6 source utterances), random tiny models, both layouts."""
    root = tmp_path
    save_tiny_models(root / "models", "original")
    save_tiny_models(root / "models", "torchaudio")
    data = root / "data"
    timit_subset(shared_data, data / "pool", slice(0, 4), 10)
    timit_subset(shared_data, data / "src", slice(8, 10), 3)
    env = {"PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    for layout in ("original", "torchaudio"):
        conf = write_conf(root / f"{layout}.yaml", root / layout, layout, targets_per_utt=2)
        (root / layout / "models").mkdir(parents=True)
        for f in (root / "models").iterdir():
            shutil.copy(f, root / layout / "models" / f.name)

        def sh(*cmd):
            proc = subprocess.run([str(ROOT / c) if i == 0 else str(c) for i, c in enumerate(cmd)], cwd=root,
                                  env=env, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

        sh("local/make_features.sh", "--nj", "2", conf, data)
        sh("local/make_targets.sh", conf, data / "pool")
        out = data / f"src_anon_{layout}"
        sh("steps/anonymize.sh", "--nj", "2", conf, data / "src", out)
        validate_data_dir(out)
        assert load_data_dir(out).utts == load_data_dir(data / "src").utts
