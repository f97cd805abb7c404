"""The utils/ data-dir tools, run as a user runs them (shell scripts, real files).

Most tests use a small generated VPC-style dir (relative wav paths, enrolls, trials, utt2emo,
spk2gender, text); the TIMIT tests use ../shared/data/timit and skip when it is absent.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxanon.data.kaldi import load_data_dir, resolve_wav

ROOT = Path(__file__).resolve().parents[1]
TIMIT = ROOT.parent / "shared" / "data" / "timit"
SPEAKERS = {"f1": "f", "f2": "f", "m1": "m", "m2": "m", "m3": "m"}


def tool(name, *args, cwd=None):
    return subprocess.run([str(ROOT / "utils" / name), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def make_dir(path: Path, utts_per_spk: int = 4, rate: int = 16000) -> Path:
    """A VPC-style dir: 5 speakers; the first 2 utts of each are enrolls, the rest trials."""
    (path / "wav").mkdir(parents=True)
    files = {n: [] for n in ("wav.scp", "utt2spk", "text", "utt2emo", "enrolls", "trials")}
    for spk in SPEAKERS:
        for i in range(utts_per_spk):
            utt = f"{spk}-u{i}"
            t = np.arange(int(0.2 * rate)) / rate
            sf.write(path / "wav" / f"{utt}.wav", 0.1 * np.sin(2 * np.pi * (200 + 10 * i) * t), rate)
            files["wav.scp"].append(f"{utt} wav/{utt}.wav")
            files["utt2spk"].append(f"{utt} {spk}")
            files["text"].append(f"{utt} WORDS OF {spk.upper()} {i}")
            files["utt2emo"].append(f"{utt} {('ang', 'hap', 'neu', 'sad')[i % 4]}")
            if i < 2:
                files["enrolls"].append(utt)
    for spk in SPEAKERS:
        for i in range(2, utts_per_spk):
            for enr, g in SPEAKERS.items():
                if g == SPEAKERS[spk]:
                    files["trials"].append(f"{enr} {spk}-u{i} {'target' if enr == spk else 'nontarget'}")
    for name, lines in files.items():
        (path / name).write_text("".join(f"{x}\n" for x in lines))
    (path / "spk2gender").write_text("".join(f"{s} {g}\n" for s, g in SPEAKERS.items()))
    (path / "spk2utt").write_text("".join(
        f"{s} {' '.join(f'{s}-u{i}' for i in range(utts_per_spk))}\n" for s in SPEAKERS))
    return path


@pytest.fixture
def vpc_dir(tmp_path):
    return make_dir(tmp_path / "vpc")


@pytest.fixture
def timit_copy(tmp_path):
    if not (TIMIT / "wav.scp").is_file():
        pytest.skip(f"{TIMIT} absent (real-speech sets live in ../shared/data)")
    return Path(shutil.copytree(TIMIT, tmp_path / "timit"))


def test_generated_dir_validates_with_audio(vpc_dir):
    res = tool("validate_data_dir.sh", vpc_dir)
    assert res.returncode == 0, res.stderr
    assert "20 utterances, 5 speakers, 10 enrolls" in res.stdout and "audio checked" in res.stdout


def test_timit_copy_validates_and_split_per_spk_is_disjoint(timit_copy):
    res = tool("validate_data_dir.sh", timit_copy)
    assert res.returncode == 0, res.stderr
    assert "160 utterances, 16 speakers" in res.stdout
    assert tool("split_data.sh", "--per-spk", timit_copy, 3).returncode == 0
    parts = [load_data_dir(timit_copy / "split3" / str(i)) for i in (1, 2, 3)]
    speakers = [set(p.spk2utt) for p in parts]
    assert all(a.isdisjoint(b) for i, a in enumerate(speakers) for b in speakers[i + 1:])
    assert set().union(*speakers) == set(load_data_dir(timit_copy).spk2utt)
    assert sorted(len(p.utts) for p in parts) == [50, 50, 60]  # 16 speakers x 10 utts, whole speakers
    for i, part in enumerate(parts, 1):
        assert part.wav_scp[part.utts[0]].startswith("../../wav/")  # still relative, still valid
        assert Path(resolve_wav(part, part.utts[0])).is_file()
        assert tool("validate_data_dir.sh", "--no-audio", timit_copy / "split3" / str(i)).returncode == 0


def test_timit_corrupted_copy_fails_naming_ids(timit_copy):
    lines = (timit_copy / "wav.scp").read_text().splitlines()
    (timit_copy / "wav.scp").write_text("\n".join(lines[:4] + lines[5:]) + "\n")  # drop faem0-si762
    sf.write(timit_copy / "wav" / "falk0-sa1.flac", np.zeros(8000), 8000)      # wrong sample rate
    (timit_copy / "wav" / "falr0-sa2.flac").write_bytes(b"")                    # unreadable
    res = tool("validate_data_dir.sh", timit_copy)
    assert res.returncode == 1
    assert "utterance(s) missing from wav.scp: faem0-si762" in res.stderr
    assert "falk0-sa1 (8000 Hz)" in res.stderr
    assert "unreadable audio: falr0-sa2" in res.stderr
    # A second corruption that stops the dir from loading: every bad line is listed.
    with open(timit_copy / "utt2spk", "a") as f:
        f.write("faem0-sa1 faem0\nxx1\n")
    res = tool("validate_data_dir.sh", timit_copy)
    assert res.returncode == 1
    assert "utt2spk:161: faem0-sa1: duplicate id (first on line 1)" in res.stderr
    assert "utt2spk:162: xx1: no value" in res.stderr


def test_unsorted_and_mismatched_tables_named(vpc_dir):
    lines = (vpc_dir / "utt2spk").read_text().splitlines()
    (vpc_dir / "utt2spk").write_text("\n".join([lines[1], lines[0]] + lines[2:]) + "\n")
    with open(vpc_dir / "spk2gender", "a") as f:
        f.write("zz x\n")
    with open(vpc_dir / "trials", "a") as f:
        f.write("f1 nobody-u9 target\n")
    res = tool("validate_data_dir.sh", "--no-audio", vpc_dir)
    assert res.returncode == 1
    assert "utt2spk: not sorted (C locale) at id(s): f1-u0" in res.stderr
    assert "spk2gender: id(s) not in the data dir: zz" in res.stderr
    assert "trials: utterance(s) not in utt2spk: nobody-u9" in res.stderr


def test_fix_data_dir_drops_and_records(vpc_dir):
    orig_wav = (vpc_dir / "wav.scp").read_text()
    wav = orig_wav.splitlines()
    (vpc_dir / "wav.scp").write_text("\n".join(wav[:1] + wav[2:] + [wav[3]]) + "\n")  # f1-u1 gone, f1-u3 twice
    text = (vpc_dir / "text").read_text().splitlines()
    (vpc_dir / "text").write_text("\n".join(reversed([t for t in text if not t.startswith("m3-u2")])) + "\n")
    with open(vpc_dir / "spk2gender", "a") as f:
        f.write("ghost m\n")
    res = tool("fix_data_dir.sh", vpc_dir)
    assert res.returncode == 0, res.stderr
    record = (vpc_dir / "fix_data_dir.log").read_text()
    assert "kept 18 of 20 utterance(s), 5 speaker(s)" in record
    assert "utterance f1-u1: not in wav.scp" in record
    assert "utterance m3-u2: not in text" in record
    assert "wav.scp:20: f1-u3: duplicate id (first on line 3)" in record
    assert "spk2gender: speaker(s) without utterances: ghost" in record
    assert "enrolls: utterance(s) not in the data dir: f1-u1" in record
    assert "trials: 3 trial(s) of utterance(s) not in the data dir: m3-u2" in record
    backup = (vpc_dir / ".backup" / "wav.scp").read_text().splitlines()
    assert sum(line.startswith("f1-u3 ") for line in backup) == 2  # the original, kept
    assert tool("validate_data_dir.sh", vpc_dir).returncode == 0
    fixed = load_data_dir(vpc_dir)
    assert "f1-u1" not in fixed.utt2spk and "m3-u2" not in fixed.tables["utt2emo"]
    assert all(t.utt != "m3-u2" for t in fixed.trials)
    # A second run finds nothing and says so.
    assert tool("fix_data_dir.sh", vpc_dir).returncode == 0
    assert (vpc_dir / "fix_data_dir.log").read_text().rstrip().endswith("nothing dropped (files sorted, spk2utt regenerated)")


def test_split_per_utt_partitions_tables_and_trials(vpc_dir):
    res = tool("split_data.sh", vpc_dir, 3)
    assert res.returncode == 0, res.stderr
    full = load_data_dir(vpc_dir)
    parts = [load_data_dir(vpc_dir / "split3" / str(i)) for i in (1, 2, 3)]
    assert [len(p.utts) for p in parts] == [6, 7, 7]
    assert sorted(u for p in parts for u in p.utts) == full.utts
    assert sorted((t for p in parts for t in p.trials), key=str) == sorted(full.trials, key=str)
    assert sorted(u for p in parts for u in p.enrolls) == sorted(full.enrolls)
    for p in parts:
        assert set(p.tables["utt2emo"]) == set(p.utts)
        assert set(p.tables["spk2gender"]) == set(p.spk2utt)
    # Re-splitting replaces the old split; too many parts is an error naming the counts.
    assert tool("split_data.sh", "--per-spk", vpc_dir, 3).returncode == 0
    assert all(len(load_data_dir(vpc_dir / "split3" / str(i)).spk2utt) in (1, 2) for i in (1, 2, 3))
    res = tool("split_data.sh", "--per-spk", vpc_dir, 6)
    assert res.returncode == 1 and "cannot split 5 speaker(s) into 6 parts" in res.stderr


def test_subset_and_combine_keep_vpc_files_consistent(vpc_dir, tmp_path):
    (tmp_path / "spk.list").write_text("f2\nm1\n")
    res = tool("subset_data_dir.sh", "--spk-list", tmp_path / "spk.list", vpc_dir, tmp_path / "a")
    assert res.returncode == 0, res.stderr
    a = load_data_dir(tmp_path / "a")
    assert set(a.spk2utt) == {"f2", "m1"} and set(a.tables["spk2gender"]) == {"f2", "m1"}
    assert set(a.enrolls) == {"f2-u0", "f2-u1", "m1-u0", "m1-u1"}
    assert {t.utt for t in a.trials} == {"f2-u2", "f2-u3", "m1-u2", "m1-u3"}
    assert os.path.isabs(a.wav_scp["f2-u0"]) and Path(a.wav_scp["f2-u0"]).is_file()  # copy elsewhere: absolute
    assert tool("validate_data_dir.sh", tmp_path / "a").returncode == 0
    (tmp_path / "rest.list").write_text("f1\nm2\nm3\n")
    assert tool("subset_data_dir.sh", "--spk-list", tmp_path / "rest.list", vpc_dir, tmp_path / "b").returncode == 0
    res = tool("combine_data.sh", tmp_path / "ab", tmp_path / "a", tmp_path / "b")
    assert res.returncode == 0, res.stderr
    ab, full = load_data_dir(tmp_path / "ab"), load_data_dir(vpc_dir)
    assert ab.utt2spk == full.utt2spk and ab.tables == full.tables
    assert sorted(ab.trials, key=str) == sorted(full.trials, key=str) and sorted(ab.enrolls) == sorted(full.enrolls)
    assert tool("validate_data_dir.sh", "--no-audio", tmp_path / "ab").returncode == 0
    # Overlapping inputs and tables only some inputs have.
    res = tool("combine_data.sh", tmp_path / "bad", tmp_path / "a", vpc_dir)
    assert res.returncode == 1 and "utterance id(s) in both" in res.stderr and "f2-u0" in res.stderr
    (tmp_path / "b" / "utt2emo").unlink()
    res = tool("combine_data.sh", tmp_path / "ab2", tmp_path / "a", tmp_path / "b")
    assert res.returncode == 0 and "utt2emo left out: missing in" in res.stderr
    assert not (tmp_path / "ab2" / "utt2emo").exists()


def test_subset_first_random_and_utt_list(vpc_dir, tmp_path):
    assert tool("subset_data_dir.sh", "--first", 3, vpc_dir, tmp_path / "f").returncode == 0
    assert load_data_dir(tmp_path / "f").utts == ["f1-u0", "f1-u1", "f1-u2"]
    assert tool("subset_data_dir.sh", "--random", 5, "--seed", 1, vpc_dir, tmp_path / "r1").returncode == 0
    assert tool("subset_data_dir.sh", "--random", 5, "--seed", 1, vpc_dir, tmp_path / "r2").returncode == 0
    assert load_data_dir(tmp_path / "r1").utts == load_data_dir(tmp_path / "r2").utts
    (tmp_path / "u.list").write_text("m2-u1\nnope\n")
    res = tool("subset_data_dir.sh", "--utt-list", tmp_path / "u.list", vpc_dir, tmp_path / "u")
    assert res.returncode == 1 and "id(s) not in" in res.stderr and "nope" in res.stderr


def test_utt2spk_to_spk2utt_and_filter_scp(vpc_dir, tmp_path):
    res = tool("utt2spk_to_spk2utt.pl", vpc_dir / "utt2spk")
    assert res.returncode == 0 and res.stdout == (vpc_dir / "spk2utt").read_text()
    (tmp_path / "ids").write_text("f1-u2\nm1-u3 extra fields ignored\n")
    res = tool("filter_scp.pl", tmp_path / "ids", vpc_dir / "wav.scp")
    assert res.stdout == "f1-u2 wav/f1-u2.wav\nm1-u3 wav/m1-u3.wav\n"
    res = tool("filter_scp.pl", "--exclude", tmp_path / "ids", vpc_dir / "wav.scp")
    assert len(res.stdout.splitlines()) == 18 and "f1-u2" not in res.stdout
    res = tool("filter_scp.pl", "-f", 2, tmp_path / "ids", vpc_dir / "trials")  # trials by their utterance
    assert [line.split()[1] for line in res.stdout.splitlines()] == ["f1-u2"] * 2 + ["m1-u3"] * 3
