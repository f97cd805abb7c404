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
