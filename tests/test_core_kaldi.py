import shutil

import pytest

from voxanon.data.kaldi import DataDirError, load_data_dir, read_table, validate_data_dir, write_data_dir


def test_round_trip_is_lossless(tiny_data_dir, tmp_path):
    data = load_data_dir(tiny_data_dir)
    write_data_dir(data, tmp_path / "copy")
    for name in ("wav.scp", "utt2spk", "spk2utt", "text", "spk2gender", "enrolls", "trials"):
        assert (tmp_path / "copy" / name).read_text() == (tiny_data_dir / name).read_text(), name
    assert validate_data_dir(tmp_path / "copy", check_audio=True, expect_rate=16000) == []


def test_subset_filters_tables_and_trials(tiny_data_dir):
    data = load_data_dir(tiny_data_dir).subset(["spkA-u0", "spkA-u2"])
    assert data.utts == ["spkA-u0", "spkA-u2"]
    assert data.tables["spk2gender"] == {"spkA": "m"}
    assert data.enrolls == ("spkA-u0",)
    assert {t.utt for t in data.trials} == {"spkA-u2"}


def test_validation_names_offending_ids(tiny_data_dir):
    utt2spk = tiny_data_dir / "utt2spk"
    lines = utt2spk.read_text().splitlines()
    utt2spk.write_text("\n".join(reversed(lines[1:])) + "\n")  # unsorted, one utt dropped
    (tiny_data_dir / "wav.scp").open("a").write("zz-extra /nonexistent.wav\n")
    problems = "\n".join(validate_data_dir(tiny_data_dir, check_audio=True))
    assert "utt2spk: not sorted" in problems
    assert "spkA-u0" in problems  # missing from utt2spk
    assert "zz-extra" in problems and "unreadable audio" in problems


def test_duplicate_ids_rejected(tiny_data_dir):
    with open(tiny_data_dir / "text", "a") as f:
        f.write("spkA-u0 AGAIN\n")
    with pytest.raises(DataDirError, match="duplicate id.*spkA-u0"):
        read_table(tiny_data_dir / "text")


def test_empty_and_wrong_rate_audio_listed(tiny_data_dir, tmp_path):
    import numpy as np
    import soundfile as sf

    data = load_data_dir(tiny_data_dir)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    rate8k = tmp_path / "r8k.wav"
    sf.write(rate8k, np.zeros(800, dtype=np.float32), 8000)
    wav = dict(data.wav_scp, **{"spkA-u0": str(empty), "spkA-u1": str(rate8k)})
    (tiny_data_dir / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in sorted(wav.items())))
    problems = "\n".join(validate_data_dir(tiny_data_dir, check_audio=True, expect_rate=16000))
    assert "empty audio: spkA-u0" in problems
    assert "spkA-u1 (8000 Hz)" in problems


def test_real_timit_validates(shared_data, tmp_path):
    assert validate_data_dir(shared_data / "timit", check_audio=True, expect_rate=16000) == []
    copy = tmp_path / "timit"
    shutil.copytree(shared_data / "timit", copy, ignore=shutil.ignore_patterns("*.flac"))
    problems = validate_data_dir(copy, check_audio=True)
    assert problems and "unreadable audio" in problems[0]


def test_relative_wav_paths_are_relative_to_the_data_dir_whatever_the_cwd(tmp_path, monkeypatch):
    """A same-named file in the working dir (another speaker's) is never taken instead, and the
    subset and combine tools keep pointing at the data dir's file."""
    import subprocess
    from pathlib import Path

    import numpy as np
    import soundfile as sf

    from voxanon.audio import read_audio
    from voxanon.data.kaldi import resolve_wav

    root = Path(__file__).resolve().parents[1]
    data, cwd = tmp_path / "data", tmp_path / "elsewhere"
    for d, seconds in ((data, 0.5), (cwd, 1.0)):
        (d / "wav").mkdir(parents=True)
        sf.write(d / "wav" / "u1.wav", np.zeros(int(seconds * 16000), np.float32), 16000)
    for name, text in (("wav.scp", "u1 wav/u1.wav\n"), ("utt2spk", "u1 s\n"), ("spk2utt", "s u1\n")):
        (data / name).write_text(text)
    monkeypatch.chdir(cwd)
    mine = str((data / "wav" / "u1.wav").resolve())
    assert resolve_wav(load_data_dir(data), "u1") == mine
    assert len(read_audio("wav/u1.wav", data).samples) == 8000
    for tool, args in (("subset_data_dir.sh", ["--first", data, "1", tmp_path / "sub"]),
                       ("combine_data.sh", [tmp_path / "comb", data])):
        res = subprocess.run([str(root / "utils" / tool), *map(str, args)], capture_output=True, text=True, cwd=cwd)
        assert res.returncode == 0, res.stderr
        made = load_data_dir(args[-1] if tool.startswith("subset") else args[0])
        assert str(Path(resolve_wav(made, "u1")).resolve()) == mine, tool


def test_a_fifo_in_wav_scp_is_named_not_opened(tmp_path):
    import os

    for name, text in (("wav.scp", "u1 fifo.wav\n"), ("utt2spk", "u1 s\n"), ("spk2utt", "s u1\n")):
        (tmp_path / name).write_text(text)
    os.mkfifo(tmp_path / "fifo.wav")  # opening it for reading would wait for a writer for ever
    for scan in (False, True):
        problems = validate_data_dir(tmp_path, check_audio=True, scan_samples=scan)
        assert problems == [f"wav.scp: unreadable audio: u1 ({tmp_path / 'fifo.wav'}: not a regular file "
                            "(a FIFO, device or dir))"]
