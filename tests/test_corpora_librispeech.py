"""LibriSpeech (OpenSLR layout) -> Kaldi dir, on a generated tree."""
from __future__ import annotations

import pytest

from corpora_fakes import fake_librispeech
from voxanon.corpora.common import CorpusError, finish, vpc_normalize
from voxanon.corpora.librispeech import prepare_librispeech, read_speakers
from voxanon.data.kaldi import load_data_dir, validate_data_dir


def test_subset_to_kaldi_dir_exactly(tmp_path):
    root = tmp_path / "LibriSpeech"
    words = fake_librispeech(root, "train-clean-360")
    data = prepare_librispeech(root, "train-clean-360")
    finish(data, tmp_path / "out")
    out = load_data_dir(tmp_path / "out")
    assert validate_data_dir(tmp_path / "out", check_audio=True, expect_rate=16000) == []
    assert out.wav_scp == {u: str((root / "train-clean-360" / u.split("-")[0] / u.split("-")[1] / f"{u}.flac").resolve())
                           for u in words}
    assert out.utt2spk == {u: u.split("-")[0] for u in words}
    assert out.tables["text"] == words  # already upper case without punctuation
    assert out.tables["spk2gender"] == {"19": "f", "26": "m", "103": "f"}
    assert (tmp_path / "out" / "spk2utt").read_text().splitlines()[0] == "103 103-100-0000 103-100-0001 103-101-0000 103-101-0001"


def test_limits_take_first_speakers_and_utterances(tmp_path):
    fake_librispeech(tmp_path, "train-clean-100")
    data = prepare_librispeech(tmp_path, "train-clean-100", max_speakers=2, max_utts_per_speaker=3)
    assert sorted(data.utt2spk) == ["103-100-0000", "103-100-0001", "103-101-0000",
                                    "19-100-0000", "19-100-0001", "19-101-0000"]


def test_missing_subset_names_what_exists(tmp_path):
    fake_librispeech(tmp_path, "train-clean-100")
    with pytest.raises(CorpusError, match=r"'train-clean-360' not found .*found: train-clean-100"):
        prepare_librispeech(tmp_path, "train-clean-360")


def test_missing_speakers_file_and_unknown_speaker(tmp_path):
    fake_librispeech(tmp_path, "dev-clean", speakers=("19", "777"))
    with pytest.raises(CorpusError, match="missing from .*SPEAKERS.TXT: 777"):
        prepare_librispeech(tmp_path, "dev-clean")
    (tmp_path / "SPEAKERS.TXT").unlink()
    with pytest.raises(CorpusError, match="SPEAKERS.TXT not found"):
        read_speakers(tmp_path)


def test_missing_transcript_is_named(tmp_path):
    fake_librispeech(tmp_path, "dev-clean", speakers=("19",), chapters=1, utts=2)
    trans = tmp_path / "dev-clean" / "19" / "100" / "19-100.trans.txt"
    trans.write_text(trans.read_text().splitlines()[0] + "\n")
    with pytest.raises(CorpusError, match="no transcript .* 19-100-0001"):
        prepare_librispeech(tmp_path, "dev-clean")


def test_vpc_normalize():
    assert vpc_normalize("hello, world!  is it 3?  yes.") == "HELLO WORLD IS IT 3 YES"
    assert vpc_normalize("HELLO WORLD") == "HELLO WORLD"
