"""TTS voice pool: Piper (packaged joe, a random-weight multi-speaker VITS), espeak-ng, speaker
choice, gender pools, text that needs normalizing, missing voice files."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import yaml

from asr_tts_helpers import make_piper_voice, packaged_or_skip
from voxanon.audio import SAMPLE_RATE
from voxanon.config import ConfigError, from_dict
from voxanon.registry import ModelMissing
from voxanon.rng import utt_rng
from voxanon.tts.config import TtsConfig
from voxanon.tts.synth import Tts
from voxanon.tts.piper_voice import VoiceFileMissing

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@pytest.fixture(scope="module")
def random_voice(tmp_path_factory):
    return make_piper_voice(tmp_path_factory.mktemp("voice"))


@pytest.fixture(scope="module")
def joe_tts():
    packaged_or_skip("piper-joe-medium")
    espeak = ("en-us+f2", "en-us+m3") if shutil.which("espeak-ng") else ()
    return Tts(TtsConfig(piper_voices=("piper-joe-medium",), espeak_voices=espeak))


def test_packaged_voice_and_espeak_speak_numbers_and_symbols(joe_tts):
    for speaker in joe_tts.speakers:
        audio = joe_tts.synthesize("It costs $5, 10% less than in 1986. Really!", speaker)
        assert audio.sample_rate == SAMPLE_RATE
        assert audio.duration > 1.5, speaker.label  # two sentences of speech, not a blip
        assert np.isfinite(audio.samples).all() and 0.5 < np.abs(audio.samples).max() <= 0.951


def test_unspeakable_text_gives_empty_audio(joe_tts):
    for speaker in joe_tts.speakers:
        assert len(joe_tts.synthesize("♪ ... ?!", speaker).samples) == 0


def test_long_text_is_synthesized_sentence_by_sentence(joe_tts):
    speaker = joe_tts.speakers[0]
    one = joe_tts.synthesize("The cat sat on the mat.", speaker).duration
    many = joe_tts.synthesize(" ".join(["The cat sat on the mat."] * 6), speaker).duration
    assert 4 * one < many < 9 * one


def test_speaker_choice_is_reproducible_and_covers_the_pool(joe_tts):
    first = [joe_tts.choose(utt_rng(1986, f"utt{i}", "asr_tts")).label for i in range(60)]
    again = [joe_tts.choose(utt_rng(1986, f"utt{i}", "asr_tts")).label for i in range(60)]
    other_seed = [joe_tts.choose(utt_rng(7, f"utt{i}", "asr_tts")).label for i in range(60)]
    assert first == again
    assert first != other_seed
    assert set(first) == {s.label for s in joe_tts.speakers}


def test_multi_speaker_voice_pool_restriction_and_genders(random_voice, tmp_path):
    all_speakers = Tts(TtsConfig(piper_voices=(str(random_voice),)))
    assert [s.name for s in all_speakers.speakers] == ["spk_a", "spk_b", "spk_c", "spk_d"]
    assert [s.sid for s in all_speakers.speakers] == [0, 1, 2, 3]
    assert all_speakers.speakers[2].label == "piper:xx_XX-random-tiny:spk_c"

    kept = Tts(TtsConfig(piper_voices=(str(random_voice),), speakers=("spk_b", "spk_d")))
    assert [s.sid for s in kept.speakers] == [1, 3]

    genders = tmp_path / "genders"
    genders.write_text("spk_a f\nspk_b m\nspk_c f\n# spk_d unknown\n")
    same = Tts(TtsConfig(piper_voices=(str(random_voice),), gender="same", speaker_genders=str(genders)))
    assert {s.name for s in same.pool("f")} == {"spk_a", "spk_c"}
    assert {s.name for s in same.pool("m")} == {"spk_b"}
    opposite = Tts(TtsConfig(piper_voices=(str(random_voice),), gender="opposite", speaker_genders=str(genders)))
    for i in range(20):
        assert opposite.choose(utt_rng(0, f"u{i}"), "m").name in {"spk_a", "spk_c"}
    with pytest.raises(ValueError, match="spk2gender"):
        same.pool(None)


def test_numeric_speaker_ids_from_yaml_are_names_and_unknown_ones_are_refused(tmp_path):
    """libritts_r names its speakers by LibriTTS id: ``speakers: [3922, 14]`` in yaml means
    those names, not the model's indices 3922 and 14."""
    voice = make_piper_voice(tmp_path, speakers=("14", "3922", "1001"))
    config = from_dict(TtsConfig, yaml.safe_load(f"piper_voices: [{voice}]\nspeakers: [3922, 14]"), "tts")
    assert config.speakers == ("3922", "14")
    assert [(s.name, s.sid) for s in Tts(config).speakers] == [("14", 0), ("3922", 1)]
    with pytest.raises(ValueError, match=r"tts.speakers \['99'\]: no multi-speaker Piper voice"):
        Tts(TtsConfig(piper_voices=(str(voice),), speakers=(14, 99)))


def test_multi_speaker_voice_synthesizes_each_speaker(random_voice):
    tts = Tts(TtsConfig(piper_voices=(str(random_voice),)))
    outputs = [tts.synthesize("Hello there 42.", s).samples for s in tts.speakers]
    assert all(len(o) > 0 and np.isfinite(o).all() for o in outputs)


def test_gender_needs_a_mapping_and_a_speaker_of_each_gender(random_voice, tmp_path):
    with pytest.raises(ConfigError, match="speaker_genders"):
        from_dict(TtsConfig, {"gender": "same"}, "tts")
    genders = tmp_path / "genders"
    genders.write_text("spk_a f\n")
    with pytest.raises(ValueError, match="gender 'm'"):
        Tts(TtsConfig(piper_voices=(str(random_voice),), gender="f", speaker_genders=str(genders)))
    genders.write_text("spk_a female\n")
    with pytest.raises(ValueError, match=r"genders:1"):
        Tts(TtsConfig(piper_voices=(str(random_voice),), gender="f", speaker_genders=str(genders)))


def test_missing_voice_files_give_one_line_errors(random_voice, tmp_path, monkeypatch):
    with pytest.raises(ModelMissing) as err:
        Tts(TtsConfig(piper_voices=(str(tmp_path / "nowhere.onnx"),)))
    assert "nowhere.onnx" in str(err.value) and "\n" not in str(err.value)

    lone = tmp_path / "lone.onnx"
    shutil.copyfile(random_voice, lone)  # no lone.onnx.json beside it
    with pytest.raises(VoiceFileMissing) as err:
        Tts(TtsConfig(piper_voices=(str(lone),)))
    assert "lone.onnx.json" in str(err.value) and "\n" not in str(err.value)

    monkeypatch.setenv("VOXANON_CACHE", str(tmp_path / "empty_cache"))
    with pytest.raises(ModelMissing) as err:
        Tts(TtsConfig(piper_voices=("piper-libritts_r-medium",)))
    message = str(err.value)
    assert "en_US-libritts_r-medium.onnx" in message and "https://" in message and "\n" not in message


@needs_espeak
def test_unknown_espeak_voice_fails_at_build():
    Tts(TtsConfig(piper_voices=(), espeak_voices=("en-us+f2", "en+m1", "en-gb-x-rp+Andy")))  # known ones pass
    with pytest.raises(ValueError, match="unknown language 'no-such-voice'"):
        Tts(TtsConfig(piper_voices=(), espeak_voices=("no-such-voice",)))
    with pytest.raises(ValueError, match="unknown variant 'nosuch'"):
        Tts(TtsConfig(piper_voices=(), espeak_voices=("en-us+nosuch",)))


@pytest.fixture(scope="module")
def kokoro_tts():
    packaged_or_skip("kokoro-82m-int8")
    return Tts(TtsConfig(piper_voices=(), kokoro_voices=("jf_alpha", "jm_kumo"), cpu_threads=2))


@needs_espeak
def test_kokoro_voices_speak_english_with_the_clause_punctuation(kokoro_tts):
    assert kokoro_tts.kokoro.phonemize("Yes: the dog; it was, well, big.") == "jˈɛs: ðə dˈɑːɡ; ɪt wˈʌz, wˈɛl, bˈɪɡ."
    assert [s.label for s in kokoro_tts.speakers] == ["kokoro:jf_alpha", "kokoro:jm_kumo"]
    for speaker in kokoro_tts.speakers:
        audio = kokoro_tts.synthesize("It costs $5, 10% less than in 1986. Really!", speaker)
        assert audio.sample_rate == SAMPLE_RATE and audio.duration > 2.0, speaker.label
        assert np.isfinite(audio.samples).all() and 0.5 < np.abs(audio.samples).max() <= 0.951
        assert len(kokoro_tts.synthesize("♪ ... ?!", speaker).samples) == 0


@needs_espeak
def test_kokoro_sentence_beyond_the_model_context_is_spoken_in_pieces(kokoro_tts):
    from voxanon.tts.kokoro import MAX_PHONEMES, _pieces

    phonemes = kokoro_tts.kokoro.phonemize(" ".join(["the cat sat on the mat and"] * 30) + " slept.")
    pieces = _pieces(phonemes)
    assert len(phonemes) > MAX_PHONEMES and len(pieces) == 2 and all(len(p) <= MAX_PHONEMES for p in pieces)
    assert " ".join(pieces) == phonemes  # cut at a space, nothing lost
    audio = kokoro_tts.kokoro.synthesize(" ".join(["the cat sat on the mat and"] * 30) + " slept.", "jf_alpha")
    assert audio.duration > 20


@needs_espeak
def test_unknown_kokoro_voice_fails_at_build(kokoro_tts):
    with pytest.raises(ValueError, match="'af_heart' is not a voice of kokoro-82m-int8 .*jf_alpha"):
        Tts(TtsConfig(piper_voices=(), kokoro_voices=("af_heart",)))


def test_sessions_use_the_jobs_threads(monkeypatch):
    from voxanon.tts.synth import job_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert job_threads() == 3 and job_threads(5) == 5
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert job_threads() == len(os.sched_getaffinity(0))


@needs_espeak
def test_kokoro_speed_slows_the_speech(kokoro_tts):
    slow = Tts(TtsConfig(piper_voices=(), kokoro_voices=("jm_kumo",), kokoro_speed=0.8, cpu_threads=2))
    sentence = "The emperor had a mean temper, and his servants feared him."
    ratio = slow.synthesize(sentence, slow.speakers[0]).duration / kokoro_tts.synthesize(
        sentence, kokoro_tts.speakers[1]).duration
    assert 1.1 < ratio < 1.4  # 1 / 0.8 = 1.25
    with pytest.raises(ValueError, match="kokoro_speed"):
        TtsConfig(kokoro_voices=("jm_kumo",), kokoro_speed=0)
