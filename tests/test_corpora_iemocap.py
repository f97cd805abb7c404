"""IEMOCAP (USC layout) -> IEMOCAP_dev / IEMOCAP_test, on a generated tree."""
from __future__ import annotations

import pytest

from corpora_fakes import fake_iemocap
from voxanon.corpora.common import CorpusError, finish
from voxanon.corpora.iemocap import EMOTIONS, prepare_iemocap, speaker_of
from voxanon.data.kaldi import validate_data_dir, write_table


def test_stand_in_split_labels_folds_exactly(tmp_path):
    labels = fake_iemocap(tmp_path / "IEMOCAP")
    sets, warnings = prepare_iemocap(tmp_path / "IEMOCAP")
    assert len(warnings) == 1 and "lists (IEMOCAP_dev/, IEMOCAP_test/ in vpc_data_dir) not found" in warnings[0]
    kept = {u: EMOTIONS[l] for u, l in labels.items() if l in EMOTIONS}  # fru and xxx dropped, exc -> hap
    assert "exc" in labels.values() and "fru" in labels.values() and "xxx" in labels.values()
    dev, test = sets["IEMOCAP_dev"], sets["IEMOCAP_test"]
    assert dev.tables["utt2emo"] == {u: e for u, e in kept.items() if u[5] == "F"}
    assert test.tables["utt2emo"] == {u: e for u, e in kept.items() if u[5] == "M"}
    for data in (dev, test):
        assert data.utt2spk == {u: u[:5] + u.rsplit("_", 1)[1][0] for u in data.utt2spk}
        spks = set(data.utt2spk.values())
        assert data.tables["spk2fold"] == {s: str(int(s[3:5])) for s in spks}
        assert data.tables["spk2gender"] == {s: s[-1].lower() for s in spks}
        assert set(data.tables["text"].values()) <= {f"WELL IT'S TURN {n}" for n in range(4)}
    assert dev.wav_scp["Ses01F_impro01_F000"] == str(
        (tmp_path / "IEMOCAP" / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_F000.wav").resolve())
    for name, data in sets.items():
        finish(data, tmp_path / "data" / name)
        assert validate_data_dir(tmp_path / "data" / name, check_audio=True) == []


def test_vpc_lists_decide_the_split_and_folds(tmp_path):
    labels = fake_iemocap(tmp_path / "IEMOCAP")
    usable = sorted(u for u, l in labels.items() if l in EMOTIONS)
    lists = {"IEMOCAP_dev": usable[:5], "IEMOCAP_test": usable[5:9] + ["Ses09F_impro01_F000"]}
    for name, utts in lists.items():
        write_table(tmp_path / "vpc" / name / "utt2spk", {u: speaker_of(u) for u in utts})
        write_table(tmp_path / "vpc" / name / "spk2fold", {speaker_of(u): "7" for u in utts})
    sets, warnings = prepare_iemocap(tmp_path / "IEMOCAP", tmp_path / "vpc")
    assert sorted(sets["IEMOCAP_dev"].utt2spk) == usable[:5]
    assert sorted(sets["IEMOCAP_test"].utt2spk) == usable[5:9]
    assert set(sets["IEMOCAP_dev"].tables["spk2fold"].values()) == {"7"}
    assert warnings == [f"IEMOCAP_test: 1 listed utterance(s) without audio or a 4-class label in "
                        f"{tmp_path / 'IEMOCAP'}, dropped (e.g. Ses09F_impro01_F000)"]


def test_bad_layout_is_named(tmp_path):
    (tmp_path / "IEMOCAP" / "Session1" / "sentences").mkdir(parents=True)
    with pytest.raises(CorpusError, match="no label files in .*Session1/dialog/EmoEvaluation"):
        prepare_iemocap(tmp_path / "IEMOCAP")
    with pytest.raises(CorpusError, match="no Session1..Session5"):
        prepare_iemocap(tmp_path)
