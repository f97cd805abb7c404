"""VPC 2024 release lists + organizers' audio -> eval dirs; and stage 1 of a full VPC conf
(local/prepare_data.sh, recipe vpc2024) on fake corpora in their real layouts."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from corpora_fakes import fake_iemocap, fake_librispeech, fake_vpc, fake_voxceleb
from voxanon.corpora.common import CorpusError, vpc_normalize
from voxanon.corpora.vpc2024 import EVAL_SETS, build_sets, prepare_vpc_set
from voxanon.data.kaldi import load_data_dir, read_table, validate_data_dir
from voxanon.data.sets import DataConfig

ROOT = Path(__file__).resolve().parents[1]


def test_release_set_gets_real_audio_paths_and_normalized_text(tmp_path):
    facts = fake_vpc(tmp_path / "vpc")
    for name in EVAL_SETS:
        data, mismatches = prepare_vpc_set(name, tmp_path / "vpc")
        part = name.split("_")[1]
        want = facts[name]
        assert data.wav_scp == {u: str((tmp_path / "vpc" / f"libri_{part}" / "wav" / u / f"{u}.wav").resolve())
                                for u in want["utt2spk"]}
        assert data.utt2spk == want["utt2spk"]
        assert data.tables["text"] == {u: vpc_normalize(t) for u, t in want["text"].items()}
        assert data.tables["spk2gender"] == want["gender"]
        if "trials" in want:
            assert [f"{t.enroll_spk} {t.utt} {'target' if t.target else 'nontarget'}" for t in data.trials] == want["trials"]
        else:
            assert list(data.enrolls) == want["enrolls"]
        # a 4-7 utterance fake differs from the published sizes: reported, per count
        assert len(mismatches) == 1 and mismatches[0].startswith(f"{name}: utts ")
    _, mismatches = prepare_vpc_set("libri_dev_trials_f", tmp_path / "vpc")
    assert mismatches == ["libri_dev_trials_f: utts 3 (published: 1018), target 2 (published: 704), "
                          "nontarget 1 (published: 14566) differ from VPC 2024 (fine for a subset)"]


def test_audio_in_a_separate_dir_and_missing_audio_named(tmp_path):
    fake_vpc(tmp_path / "vpc")
    (tmp_path / "audio").mkdir()
    (tmp_path / "vpc" / "libri_dev").rename(tmp_path / "audio" / "libri_dev")
    with pytest.raises(CorpusError, match="libri_dev audio .*directory not found"):
        prepare_vpc_set("libri_dev_enrolls", tmp_path / "vpc")
    data, _ = prepare_vpc_set("libri_dev_enrolls", tmp_path / "vpc", tmp_path / "audio")
    assert all(p.startswith(str((tmp_path / "audio").resolve())) for p in data.wav_scp.values())
    next((tmp_path / "audio" / "libri_dev" / "wav").glob("2277-1-0001/*.wav")).unlink()
    with pytest.raises(CorpusError, match=r"no audio file under .* for 1 utterance\(s\), e.g. 2277-1-0001"):
        prepare_vpc_set("libri_dev_enrolls", tmp_path / "vpc", tmp_path / "audio")


def test_missing_release_dir_says_where_to_get_it(tmp_path):
    (tmp_path / "vpc").mkdir()
    with pytest.raises(CorpusError, match="libri_test_trials_m/wav.scp not found; unzip the release's data.zip"):
        prepare_vpc_set("libri_test_trials_m", tmp_path / "vpc")


def _vpc_conf(tmp_path: Path, pool: dict) -> Path:
    fake_vpc(tmp_path / "vpc")
    fake_librispeech(tmp_path / "LibriSpeech", "train-clean-360")
    fake_librispeech(tmp_path / "LibriSpeech", "train-clean-100", speakers=("1034", "26"))
    fake_iemocap(tmp_path / "IEMOCAP")
    conf = {
        "exp": "vpc_data_test",
        "data": {
            "recipe": "vpc2024",
            "options": {"vpc_data_dir": str(tmp_path / "vpc"), "librispeech_root": str(tmp_path / "LibriSpeech"),
                        "iemocap_root": str(tmp_path / "IEMOCAP"), "target_pool": pool},
            "eval_sets": list(EVAL_SETS),
            "asv_train_set": "train-clean-360",
            "emotion_sets": ["IEMOCAP_dev", "IEMOCAP_test"],
            "target_pool": "target_pool",
        },
    }
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def test_stage1_builds_every_dir_the_vpc_conf_names(tmp_path):
    conf = _vpc_conf(tmp_path, {"corpus": "librispeech", "subset": "train-clean-100", "max_speakers": 1})
    run = subprocess.run([str(ROOT / "local" / "prepare_data.sh"), "--overwrite", "false", str(conf),
                          str(tmp_path / "data")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    expected = [*EVAL_SETS, "train-clean-360", "IEMOCAP_dev", "IEMOCAP_test", "target_pool"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(expected)
    for name in expected:
        assert validate_data_dir(tmp_path / "data" / name, check_audio=True) == [], name
    assert "libri_dev_enrolls: utts 4 (published: 343), speakers 2 (published: 29) differ from VPC 2024" in run.stderr
    assert "train-clean-360: utts 12 (published: 104014), speakers 3 (published: 921) differ from LibriSpeech" \
        in run.stderr
    assert "IEMOCAP: VPC 2024 lists" in run.stderr
    assert read_table(tmp_path / "data" / "target_pool" / "spk2gender") == {"1034": "m"}
    assert set(read_table(tmp_path / "data" / "IEMOCAP_dev" / "utt2emo").values()) <= {"ang", "hap", "neu", "sad"}

    # re-run without --overwrite: valid dirs are kept, not rebuilt
    before = (tmp_path / "data" / "libri_dev_enrolls" / "wav.scp").stat().st_mtime_ns
    again = subprocess.run([str(ROOT / "local" / "prepare_data.sh"), str(conf), str(tmp_path / "data")],
                           capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0, again.stderr
    assert "exists and is valid, kept" in again.stderr
    assert (tmp_path / "data" / "libri_dev_enrolls" / "wav.scp").stat().st_mtime_ns == before


def test_one_broken_set_does_not_stop_the_others(tmp_path):
    conf = _vpc_conf(tmp_path, {"corpus": "voxceleb", "root": str(tmp_path / "vox")})
    fake_voxceleb(tmp_path / "vox")
    raw = yaml.safe_load(conf.read_text())["data"]
    raw["options"]["iemocap_root"] = str(tmp_path / "nowhere")
    cfg = DataConfig(**{**raw, "eval_sets": tuple(raw["eval_sets"]), "emotion_sets": tuple(raw["emotion_sets"])})
    with pytest.raises(CorpusError, match=r"IEMOCAP_dev, IEMOCAP_test: IEMOCAP root .*directory not found"):
        build_sets(cfg, tmp_path / "data")
    built = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert built == sorted([*EVAL_SETS, "train-clean-360", "target_pool"])
    assert len(load_data_dir(tmp_path / "data" / "target_pool").utt2spk) == 12


def test_unknown_recipe_and_unknown_set_are_refused(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"exp": "x", "data": {"recipe": "nosuch"}}))
    run = subprocess.run([str(ROOT / "local" / "prepare_data.sh"), str(conf), str(tmp_path / "data")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1 and "data.recipe: 'nosuch' is not one of ['mini', 'vpc2024']" in run.stderr
    cfg = DataConfig(recipe="vpc2024", options={"vpc_data_dir": str(tmp_path)}, eval_sets=("libri_dev_trials",))
    with pytest.raises(CorpusError, match="cannot build libri_dev_trials"):
        build_sets(cfg, tmp_path / "data")
