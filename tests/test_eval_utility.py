"""Utility metrics: VPC text normalization, corpus WER with resume, emotion UAR with
speaker-independent folds, and the skips when labels are missing."""
from __future__ import annotations

from pathlib import Path

import pytest

from eval_fixtures import make_dir
from voxanon.data.kaldi import load_data_dir
from voxanon.eval.ser import FeatureExtractor, evaluate_uar, speaker_folds
from voxanon.eval.wer import corpus_wer, normalize_text, split_of, vpc_normalize, wer_of_sets


def test_normalization_and_corpus_wer():
    assert vpc_normalize("Hello, world!  It's done? yes.") == "HELLO WORLD IT'S DONE YES"
    assert normalize_text('"Well -- it\'s 5:30," she said.') == "WELL IT'S 5 30 SHE SAID"
    r = corpus_wer(["a b c", "d e"], ["A, x c.", "d e f"])
    assert (r["substitutions"], r["deletions"], r["insertions"], r["n_words"]) == (1, 0, 1, 5)
    assert r["wer"] == pytest.approx(40.0)
    assert split_of("libri_dev_trials_f") == "dev" and split_of("libri_test_enrolls") == "test"
    assert split_of("timit") is None


def test_wer_resumes_and_lists_failures(tmp_path):
    data = load_data_dir(make_dir(tmp_path / "d", n_spk=2, n_utt=3, n_enroll=1, text=True))
    refs = data.table("text")
    calls = []

    def flaky(audio):
        calls.append(audio.duration)
        if len(calls) == 3:
            raise RuntimeError("decoder blew up")
        return "hello world number 1"

    res = wer_of_sets({"d": data}, {"d": refs}, flaky, tmp_path / "hyp")
    r = res["sets"]["d"]
    assert len(r["failed"]) == 1 and "decoder blew up" in r["failed"][0]
    assert r["n_utts"] == 5
    # every reference is "HELLO WORLD NUMBER <u>": one substitution per utterance with u != 1
    expected = sum(1 for u in r_utts(refs, r) if not refs[u].endswith(" 1")) / (4 * 5) * 100
    assert r["wer"] == pytest.approx(expected)
    assert res["splits"]["all"]["wer"] == pytest.approx(expected)
    calls.clear()
    res2 = wer_of_sets({"d": data}, {"d": refs}, flaky, tmp_path / "hyp")
    assert len(calls) == 1 and res2["sets"]["d"]["n_utts"] == 6  # only the failed one again
    skipped = wer_of_sets({"d": data}, {"d": {}}, flaky, tmp_path / "hyp2")
    assert "no 'text' file" in skipped["sets"]["d"]["skipped"]


def r_utts(refs: dict, r: dict) -> list[str]:
    hyp = dict(line.split(" ", 1) for line in Path(r["hyp_file"]).read_text().splitlines())
    return [u for u in refs if u in hyp]


def test_uar_speaker_independent_folds(tmp_path):
    orig = load_data_dir(make_dir(tmp_path / "emo", n_spk=6, n_utt=9, n_enroll=0, emotions=3,
                                  seconds=(0.8, 1.2)))
    folds = speaker_folds(orig, 3)
    assert sorted(folds.values()) == ["1", "1", "2", "2", "3", "3"]
    res = evaluate_uar(orig, orig, 3, (), 1.0, FeatureExtractor(), tmp_path / "cache", "emo")
    assert res["classes"] == ["e0", "e1", "e2"] and res["chance"] == pytest.approx(100 / 3)
    assert len(res["original"]["folds"]) == 3
    for f in res["original"]["folds"]:  # no test speaker was seen in training
        test_spks = set(res["folds"][f["fold"]])
        assert test_spks and all(folds[s] == f["fold"] for s in test_spks)
    assert res["original"]["uar"] > 60.0
    assert res["anon"]["uar"] == pytest.approx(res["original"]["uar"])  # same audio
    only = evaluate_uar(orig, None, 3, ("e0", "e1"), 1.0, FeatureExtractor(), tmp_path / "cache", "emo2")
    assert only["classes"] == ["e0", "e1"] and "anon" not in only
    nolabels = load_data_dir(make_dir(tmp_path / "plain", n_spk=2, n_utt=2, n_enroll=0))
    assert "no 'utt2emo'" in evaluate_uar(nolabels, None, 3, (), 1.0, FeatureExtractor(), tmp_path, "p")["skipped"]


def test_eval_conf_checks_asr_settings():
    from voxanon.config import ConfigError, from_dict
    from voxanon.eval.config import EvalConfig

    assert from_dict(EvalConfig, {"asr": {"backend": "whisper", "beam_size": 1}}, "eval").asr["beam_size"] == 1
    with pytest.raises(ConfigError, match="eval.asr: unknown key.*beamsize"):
        from_dict(EvalConfig, {"asr": {"beamsize": 1}}, "eval")
    with pytest.raises(ConfigError, match="ser_folds"):
        from_dict(EvalConfig, {"ser_folds": 1}, "eval")
