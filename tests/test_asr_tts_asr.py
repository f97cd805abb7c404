"""ASR backends: openai-whisper with a random-weight checkpoint of the real layout, faster-whisper
with the packaged CTranslate2 models, and their errors."""
from __future__ import annotations

import numpy as np
import pytest

from asr_tts_helpers import make_whisper_checkpoint, packaged_or_skip
from voxanon.asr import AsrConfig, guard, load_asr
from voxanon.audio import Audio
from voxanon.config import ConfigError, from_dict
from voxanon.registry import ModelMissing


def noise(seconds: float, rate: int = 16000, seed: int = 0) -> Audio:
    return Audio((0.05 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32), rate)


def test_openai_whisper_random_checkpoint_batched(tmp_path):
    ckpt = make_whisper_checkpoint(tmp_path / "tiny-random.pt")
    asr = load_asr(AsrConfig(backend="whisper", model=str(ckpt), beam_size=1, batch_size=2), device="cpu")
    assert not asr.model.is_multilingual and asr.model.dims.n_text_state == 32
    audios = [noise(1.0, seed=1), noise(2.0, 22050, seed=2), Audio(np.zeros(0, np.float32), 16000), noise(0.5, seed=3)]
    texts = asr.transcribe_batch(audios)
    assert len(texts) == 4 and all(isinstance(t, str) for t in texts)
    assert texts[2] == ""  # nothing to recognize


@pytest.mark.slow
def test_openai_whisper_long_input_through_transcribe(tmp_path):
    ckpt = make_whisper_checkpoint(tmp_path / "tiny-random.pt")
    asr = load_asr(AsrConfig(backend="whisper", model=str(ckpt), beam_size=1), device="cpu")
    assert isinstance(asr.transcribe(noise(31.0, seed=4)), str)  # > 30 s: whisper's sliding window


def test_openai_whisper_falls_back_through_every_temperature_in_one_batch(tmp_path):
    """Random weights give improbable or repetitive text: every utterance of the batch is
    re-decoded at each temperature up to 1.0 (sampled, best of 5)."""
    ckpt = make_whisper_checkpoint(tmp_path / "tiny-random.pt")
    asr = load_asr(AsrConfig(backend="whisper", model=str(ckpt), beam_size=2, batch_size=3), device="cpu")
    results = asr.decode_batch([noise(1.0, seed=1).samples, noise(2.5, seed=2).samples])
    assert [r.temperature for r in results] == [guard.TEMPERATURES[-1]] * 2
    assert all(guard.needs_fallback(r.avg_logprob, r.compression_ratio, r.no_speech_prob) for r in results)


def test_guard_rules_are_transcribes():
    assert guard.TEMPERATURES == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert not guard.needs_fallback(avg_logprob=-0.3, compression_ratio=1.5, no_speech_prob=0.1)
    assert guard.needs_fallback(-0.3, 2.5, 0.1)  # too repetitive
    assert guard.needs_fallback(-1.5, 1.5, 0.1)  # too improbable
    assert not guard.needs_fallback(-1.5, 1.5, 0.9)  # silence: no retry ...
    assert guard.is_no_speech(-1.5, 0.9)  # ... and no text
    assert not guard.is_no_speech(-0.5, 0.9)  # probable enough: kept despite no_speech_prob
    assert not guard.is_no_speech(-1.5, 0.5)
    assert guard.is_silent(np.zeros(16000, np.float32)) and guard.is_silent(np.zeros(0, np.float32))
    assert guard.is_silent(np.full(16000, 1e-4, np.float32))  # -80 dBFS
    assert not guard.is_silent(noise(1.0).samples)


def test_packaged_whisper_base_gives_no_words_for_silence_or_noise():
    """Whisper base alone reads 3 s of digital silence as " You" (log-probability above -1, so
    transcribe's thresholds keep it); the level gate and the no-speech rule leave nothing."""
    packaged_or_skip("whisper-base-ct2")
    asr = load_asr(AsrConfig(model="whisper-base-ct2", cpu_threads=2))
    silence = Audio(np.zeros(3 * 16000, np.float32), 16000)
    raw, _ = asr.model.transcribe(silence.samples, language="en", beam_size=5)
    assert " ".join(s.text for s in raw).strip() == "You"  # what the gate is for
    quiet_noise = Audio((0.01 * np.random.default_rng(0).standard_normal(3 * 16000)).astype(np.float32), 16000)
    assert asr.transcribe_batch([silence, quiet_noise]) == ["", ""]


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


def test_faster_whisper_batched_decoding_gives_the_one_at_a_time_text():
    """Batches of 2 (with a silent utterance among them) decode to the text of one utterance at a
    time, which is faster-whisper's own transcribe text on these single-window utterances."""
    packaged_or_skip("whisper-tiny.en-ct2")
    packaged_or_skip("piper-joe-medium")
    from voxanon.tts.config import TtsConfig
    from voxanon.tts.synth import Tts

    tts = Tts(TtsConfig(piper_voices=("piper-joe-medium",), cpu_threads=2))
    sentences = ["She had your dark suit in greasy wash water all year.", "Don't ask me to carry an oily rag.",
                 "The emperor had a mean temper, and his servants feared him."]
    audios = [tts.synthesize(s, tts.speakers[0]) for s in sentences]
    audios.insert(1, Audio(np.zeros(16000, np.float32), 16000))
    asr = load_asr(AsrConfig(model="whisper-tiny.en-ct2", compute_type="int8", cpu_threads=2, batch_size=2))
    one = [asr.transcribe(a) for a in audios]
    assert asr.transcribe_batch(audios) == one and one[1] == ""
    own = [" ".join(s.text.strip() for s in asr.model.transcribe(a.samples, language="en", beam_size=5)[0]).strip()
           for a in audios]
    assert one == own
    assert "wash water" in one[0].lower()


def test_faster_whisper_detects_the_language_when_none_is_given():
    packaged_or_skip("whisper-base-ct2")
    packaged_or_skip("piper-joe-medium")
    from voxanon.tts.config import TtsConfig
    from voxanon.tts.synth import Tts

    tts = Tts(TtsConfig(piper_voices=("piper-joe-medium",), cpu_threads=2))
    asr = load_asr(AsrConfig(model="whisper-base-ct2", compute_type="int8", cpu_threads=2, language=""))
    assert "wash water" in asr.transcribe(tts.synthesize("She had your dark suit in greasy wash water.",
                                                         tts.speakers[0])).lower().replace("washwater", "wash water")
