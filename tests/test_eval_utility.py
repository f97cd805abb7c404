"""Utility metrics: VPC text normalization, corpus WER, and the eval conf checks."""
from __future__ import annotations

import pytest

from voxanon.eval.wer import corpus_wer, normalize_text, vpc_normalize, words


def test_normalization_and_corpus_wer():
    assert vpc_normalize("Hello, world!  It's done? yes.") == "HELLO WORLD IT'S DONE YES"
    assert normalize_text('"Well -- it\'s 5:30," she said.') == "WELL IT'S 5 30 SHE SAID"
    # the VPC's ASR: hypotheses as decoded, split at single spaces; Whisper: punctuation removed too
    assert words(" A  B", False, "vpc") == ["A", "", "B"]
    assert words("Well -- ok.", False, "whisper") == ["WELL", "OK"]
    r = corpus_wer([words("a b c", True, "vpc"), words("d e", True, "vpc")],
                   [words("A, x c.", True, "vpc"), words("D E F", False, "vpc")])
    assert (r["substitutions"], r["deletions"], r["insertions"], r["n_words"]) == (1, 0, 1, 5)
    assert r["wer"] == pytest.approx(40.0)


def test_eval_conf_checks_asr_settings():
    from voxanon.config import ConfigError, from_dict
    from voxanon.eval.config import EvalConfig

    assert from_dict(EvalConfig, {"asr": {"backend": "whisper", "beam_size": 1}}, "eval").asr["beam_size"] == 1
    with pytest.raises(ConfigError, match="eval.asr: unknown key.*beamsize"):
        from_dict(EvalConfig, {"asr": {"beamsize": 1}}, "eval")
    default = from_dict(EvalConfig, {}, "eval")  # the VPC 2024 evaluation models by default
    assert default.asr == {"backend": "speechbrain", "model": "vpc-asr", "batch_size": 8}
    assert default.ser_model == "vpc-ser"
