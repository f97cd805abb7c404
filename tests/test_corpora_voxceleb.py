"""VoxCeleb layout -> target pool dir (wav read in place, m4a converted once)."""
from __future__ import annotations

import pytest

from corpora_fakes import fake_voxceleb, have_ffmpeg
from voxanon.corpora.common import CorpusError, finish
from voxanon.corpora.voxceleb import prepare_voxceleb, read_meta
from voxanon.data.kaldi import validate_data_dir


def test_wav_pool_with_meta_genders(tmp_path):
    utts = fake_voxceleb(tmp_path / "vox")
    (tmp_path / "vox1_meta.csv").write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
                                            "id10001\tA.J._Buckley\tm\tIreland\tdev\n"
                                            "id10002\tA.R._Rahman\tm\tIndia\tdev\n"
                                            "id10003\tAamir_Khan\tf\tIndia\tdev\n")
    data = prepare_voxceleb(tmp_path / "vox", tmp_path / "pool", tmp_path / "vox1_meta.csv", max_speakers=2,
                            max_utts_per_speaker=3)
    assert sorted(data.utt2spk) == [u for u in utts if u.startswith(("id10001", "id10002"))
                                    and not u.endswith("7w0IBEWc9Qw-00002")]
    spk, video, n = "id10002", "7w0IBEWc9Qw", "00001"
    assert data.wav_scp[f"{spk}-{video}-{n}"] == str((tmp_path / "vox" / spk / video / f"{n}.wav").resolve())
    assert data.tables["spk2gender"] == {"id10001": "m", "id10002": "m"}
    finish(data, tmp_path / "pool")
    assert validate_data_dir(tmp_path / "pool", check_audio=True) == []


def test_vox2_meta_format(tmp_path):
    p = tmp_path / "vox2_meta.csv"
    p.write_text("Id ,VGGFace2 ID ,Gender ,Set \nid00012 ,n000012 ,m ,dev \nid00015 ,n000015 ,f ,test \n")
    assert read_meta(p) == {"id00012": "m", "id00015": "f"}


@pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg not installed")
def test_m4a_converted_once_to_16k_wav(tmp_path):
    utts = fake_voxceleb(tmp_path / "vox", m4a=True)
    data = prepare_voxceleb(tmp_path / "vox", tmp_path / "pool", max_speakers=1)
    assert sorted(data.utt2spk) == [u for u in utts if u.startswith("id10001")]
    assert all(p == str((tmp_path / "pool" / "wav" / f"{u}.wav").resolve()) for u, p in data.wav_scp.items())
    finish(data, tmp_path / "pool")
    assert validate_data_dir(tmp_path / "pool", check_audio=True, expect_rate=16000) == []
    first = tmp_path / "pool" / "wav" / f"{utts[0]}.wav"
    mtime = first.stat().st_mtime_ns
    prepare_voxceleb(tmp_path / "vox", tmp_path / "pool", max_speakers=1)  # resumed: existing wavs kept
    assert first.stat().st_mtime_ns == mtime


def test_no_speakers_is_named(tmp_path):
    (tmp_path / "vox" / "notaspeaker").mkdir(parents=True)
    with pytest.raises(CorpusError, match="no id<NNNNN>/ speaker dirs"):
        prepare_voxceleb(tmp_path / "vox", tmp_path / "pool")
