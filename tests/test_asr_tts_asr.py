"""ASR backends: openai-whisper with a random-weight checkpoint of the real layout, faster-whisper
with the packaged CTranslate2 models, and their errors."""
from __future__ import annotations

import numpy as np
import pytest

from asr_tts_helpers import make_whisper_checkpoint, packaged_or_skip
from voxanon.asr import AsrConfig, load_asr
from voxanon.audio import Audio
from voxanon.config import ConfigError, from_dict
from voxanon.registry import ModelMissing


def noise(seconds: float, rate: int = 16000, seed: int = 0) -> Audio:
    return Audio((0.05 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32), rate)


def test_openai_whisper_random_checkpoint_batched_and_long(tmp_path):
    ckpt = make_whisper_checkpoint(tmp_path / "tiny-random.pt")
    asr = load_asr(AsrConfig(backend="whisper", model=str(ckpt), beam_size=1, batch_size=2), device="cpu")
    assert not asr.model.is_multilingual and asr.model.dims.n_text_state == 32
    audios = [noise(1.0, seed=1), noise(2.0, 22050, seed=2), Audio(np.zeros(0, np.float32), 16000), noise(0.5, seed=3)]
    texts = asr.transcribe_batch(audios)
    assert len(texts) == 4 and all(isinstance(t, str) for t in texts)
    assert texts[2] == ""  # nothing to recognize
    # same input, same (greedy) output whether batched or alone
    assert asr.transcribe(audios[0]) == texts[0]
    assert isinstance(asr.transcribe(noise(31.0, seed=4)), str)  # > 30 s: whisper's sliding window


def test_openai_whisper_english_only_model_refuses_other_languages(tmp_path):
    ckpt = make_whisper_checkpoint(tmp_path / "tiny-random.pt")
    with pytest.raises(ValueError, match="English-only"):
        load_asr(AsrConfig(backend="whisper", model=str(ckpt), language="de"))


def test_faster_whisper_packaged_tiny_en_on_short_and_empty_input():
    packaged_or_skip("whisper-tiny.en-ct2")
    asr = load_asr(AsrConfig(model="whisper-tiny.en-ct2", compute_type="int8", cpu_threads=2))
    assert asr.transcribe(Audio(np.zeros(50, np.float32), 16000)) == ""
    texts = asr.transcribe_batch([noise(1.0), noise(0.3, 8000)])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_bad_model_specs(tmp_path, monkeypatch):
    with pytest.raises(ModelMissing, match="no-such-model"):
        load_asr(AsrConfig(model="no-such-model"))
    not_ct2 = tmp_path / "empty_dir"
    not_ct2.mkdir()
    with pytest.raises(FileNotFoundError, match="no model.bin"):
        load_asr(AsrConfig(model=str(not_ct2)))
    with pytest.raises(FileNotFoundError, match="checkpoint file"):
        load_asr(AsrConfig(backend="whisper", model=str(not_ct2)))
    monkeypatch.setenv("VOXANON_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelMissing, match="medium.en.pt"):
        load_asr(AsrConfig(backend="whisper", model="whisper-medium.en"))
    with pytest.raises(ConfigError, match="asr.backend"):
        from_dict(AsrConfig, {"backend": "kaldi"}, "asr")
