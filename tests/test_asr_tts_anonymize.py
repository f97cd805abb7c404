"""The asr_tts anonymizer: end to end through the generic runner on a small generated data dir,
transcript caching, empty transcripts, missing voices, and the shipped confs."""
from __future__ import annotations

import json
import logging
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import yaml

from asr_tts_helpers import SENTENCE, packaged_or_skip
from voxanon.anonymize import asr_tts
from voxanon.anonymize.base import BuildContext, Utterance, build_system
from voxanon.audio import SAMPLE_RATE, Audio, read_audio
from voxanon.bin import anonymize
from voxanon.data.kaldi import DataDir, load_data_dir, write_data_dir
from voxanon.experiment import load_experiment
from voxanon.registry import ModelMissing
from voxanon.tts.config import TtsConfig
from voxanon.tts.synth import Tts

ROOT = Path(__file__).resolve().parents[1]
SMALL_PARAMS = {"asr": {"model": "whisper-tiny.en-ct2", "compute_type": "int8", "cpu_threads": 2},
                "tts": {"piper_voices": ["piper-joe-medium"], "espeak_voices": ["en-us+f2"]}}


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """The transcript cache's default, exp/asr_transcripts, is relative to the recipe dir."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def packaged():
    packaged_or_skip("whisper-tiny.en-ct2")
    packaged_or_skip("piper-joe-medium")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")


@pytest.fixture
def speech_dir(packaged, tmp_path) -> Path:
    """Three utterances of a speaker who is none of the anonymizer's voices (espeak-ng en-gb
    variant Andy), plus one of silence."""
    from voxanon.audio import write_wav

    speaker = Tts(TtsConfig(piper_voices=(), espeak_voices=("en-gb-x-rp+Andy",)))
    sentences = [SENTENCE, "Don't ask me to carry an oily rag like that.", "The meeting is at 10:30 on May 2nd."]
    wav_scp, utt2spk, text = {}, {}, {}
    for i, sentence in enumerate(sentences):
        utt = f"andy-u{i}"
        write_wav(tmp_path / "wav" / f"{utt}.wav", speaker.synthesize(sentence, speaker.speakers[0]))
        wav_scp[utt], utt2spk[utt], text[utt] = f"wav/{utt}.wav", "andy", sentence.upper()
    write_wav(tmp_path / "wav" / "quiet-u0.wav", Audio(np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE))
    wav_scp["quiet-u0"], utt2spk["quiet-u0"], text["quiet-u0"] = "wav/quiet-u0.wav", "quiet", ""
    data = tmp_path / "data"
    write_data_dir(DataDir(wav_scp, utt2spk, {"text": text, "spk2gender": {"andy": "m", "quiet": "f"}}), data)
    for utt in wav_scp:  # relative paths in wav.scp resolve against the data dir
        (data / "wav").mkdir(exist_ok=True)
        shutil.copy(tmp_path / "wav" / f"{utt}.wav", data / "wav" / f"{utt}.wav")
    return data


def write_conf(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump({"exp": "t", "anonymizer": {"system": "asr_tts", "seed": 3, "device": "cpu",
                                                               "params": params}}))
    return path


def test_end_to_end_through_the_runner(speech_dir, tmp_path):
    conf = write_conf(tmp_path / "conf.yaml", SMALL_PARAMS)
    out, records = tmp_path / "out", tmp_path / "records"
    args = ["--conf", str(conf), "--record-dir", str(records), str(speech_dir), str(out)]
    assert anonymize.main(["job", *args]) == 0
    assert anonymize.main(["finalize", *args]) == 0

    result = load_data_dir(out)
    source = load_data_dir(speech_dir)
    assert result.utts == source.utts and result.table("text") == source.table("text")
    lines = [json.loads(line) for line in (records / "records.1.jsonl").read_text().splitlines()]
    by_utt = {r["utt"]: r for r in lines}
    assert set(by_utt) == set(source.utts)
    assert stat.S_IMODE((records / "records.1.jsonl").stat().st_mode) == 0o600
    for utt in source.utts:
        audio = read_audio(result.wav_scp[utt])
        assert audio.sample_rate == SAMPLE_RATE
        record = by_utt[utt]
        assert record["system"] == "asr_tts"
        assert record["speaker"] in ("piper:en_US-joe-medium", "espeak:en-us+f2")
        if utt.startswith("andy"):
            assert audio.duration > 1.0 and np.abs(audio.samples).max() > 0.3
    # the words survive: "greasy wash water" spoken by Andy, heard by tiny.en, said by a new voice
    assert "wash water" in by_utt["andy-u0"]["transcript"].lower()
    # nothing about the records leaks into the data dir
    assert not any("transcript" in p.read_text(errors="ignore") for p in out.iterdir() if p.is_file())


class CountingAsr:
    def __init__(self, text: str):
        self.text, self.calls, self.batches = text, 0, []

    def transcribe_batch(self, audios):
        self.calls += len(audios)
        self.batches.append(len(audios))
        return [self.text] * len(audios)


def build_with_asr(monkeypatch, work_dir, asr, **asr_settings) -> asr_tts.AsrTtsAnonymizer:
    monkeypatch.setattr(asr_tts, "load_asr", lambda config, device: asr)
    params = {**SMALL_PARAMS, "asr": {**SMALL_PARAMS["asr"], **asr_settings}}
    return build_system("asr_tts", params, BuildContext(5, "cpu", work_dir))


def test_transcripts_are_cached_per_audio(packaged, monkeypatch, tmp_path):
    utt = Utterance("u1", "s1", Audio(np.full(8000, 0.1, np.float32), SAMPLE_RATE))
    first = CountingAsr("Hello there, 42 times.")
    a = build_with_asr(monkeypatch, tmp_path / "work", first)(utt)
    assert first.calls == 1 and a.record["transcript"] == "Hello there, 42 times."

    rerun = CountingAsr("something else")  # a re-run (new process) reuses the cached transcript
    b = build_with_asr(monkeypatch, tmp_path / "work", rerun)(utt)
    assert rerun.calls == 0 and b.record == a.record  # same transcript, same seeded speaker

    changed = Utterance("u1", "s1", Audio(np.full(8000, 0.2, np.float32), SAMPLE_RATE))
    build_with_asr(monkeypatch, tmp_path / "work", rerun)(changed)  # other audio under the same id: transcribed anew
    assert rerun.calls == 1


def test_transcript_cache_is_shared_by_experiments_and_keyed_on_asr_settings(packaged, monkeypatch, tmp_path):
    """Another experiment (its own work dir, e.g. an admixture part at another p) meeting the same
    audio under another id reuses the transcript; threads and batch size do not change the text,
    the beam does."""
    audio = Audio(np.full(8000, 0.1, np.float32), SAMPLE_RATE)
    build_with_asr(monkeypatch, tmp_path / "exp_a", CountingAsr("Hello."))(Utterance("a-u1", "s1", audio))
    other = CountingAsr("never asked")
    result = build_with_asr(monkeypatch, tmp_path / "exp_b", other, cpu_threads=1, batch_size=4)(
        Utterance("b-u7", "s9", audio))
    assert other.calls == 0 and result.record["transcript"] == "Hello."
    wider = CountingAsr("Hello!")
    assert build_with_asr(monkeypatch, tmp_path / "exp_c", wider, beam_size=2)(
        Utterance("a-u1", "s1", audio)).record["transcript"] == "Hello!"
    assert wider.calls == 1
    cache = tmp_path / "exp" / "asr_transcripts"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    dirs = sorted(cache.iterdir())
    assert len(dirs) == 2 and all(len(list(d.glob("*.json"))) == 2 for d in dirs)  # settings + one transcript
    assert {json.loads((d / "settings.json").read_text())["asr"]["beam_size"] for d in dirs} == {5, 2}


@pytest.mark.parametrize("transcript", ["", "   ", "♪ ♪"])
def test_empty_transcript_gives_silence_of_the_input_length(packaged, monkeypatch, tmp_path, caplog, transcript):
    anonymizer = build_with_asr(monkeypatch, tmp_path / "work", CountingAsr(transcript))
    utt = Utterance("noise-1", "s1", Audio(np.random.default_rng(0).standard_normal(12345).astype(np.float32) * 0.1,
                                           SAMPLE_RATE))
    with caplog.at_level(logging.WARNING, logger="voxanon.asr_tts"):
        result = anonymizer(utt)
    assert len(result.audio.samples) == 12345 and not result.audio.samples.any()
    assert "noise-1" in caplog.text and "empty transcript" in caplog.text
    assert result.record["transcript"] == transcript


def test_missing_voice_fails_the_job_with_one_line(packaged, speech_dir, tmp_path, capfd):
    params = {**SMALL_PARAMS, "tts": {"piper_voices": [str(tmp_path / "voices" / "en_US-gone-medium.onnx")]}}
    with pytest.raises(ModelMissing) as err:
        build_system("asr_tts", params, BuildContext(1, "cpu", tmp_path / "work"))
    assert "en_US-gone-medium.onnx" in str(err.value) and "\n" not in str(err.value)
    conf = write_conf(tmp_path / "conf.yaml", params)
    code = anonymize.main(["job", "--conf", str(conf), "--record-dir", str(tmp_path / "rec"), str(speech_dir),
                           str(tmp_path / "out")])
    errors = [line for line in capfd.readouterr().err.splitlines() if " ERROR " in line]
    assert code != 0 and len(errors) == 1 and "en_US-gone-medium.onnx" in errors[0]


@pytest.mark.parametrize("name", ["whisper_vits.yaml", "asr_tts_offline.yaml"])
def test_shipped_confs_parse(name):
    exp = load_experiment(ROOT / "conf" / name)
    assert exp.anonymizer.system == "asr_tts"
    params = exp.params
    assert params.asr.model and (params.tts.piper_voices or params.tts.espeak_voices)


def test_a_batch_decodes_the_uncached_transcripts_together(packaged, monkeypatch, tmp_path):
    """The runner's batch: one transcribe_batch call for the utterances not in the cache; the
    results equal one-at-a-time conversion (same transcripts, same seeded speakers)."""
    utts = [Utterance(f"u{i}", "s1", Audio(np.full(4000 + i, 0.1, np.float32), SAMPLE_RATE)) for i in range(5)]
    asr = CountingAsr("Hello.")
    anonymizer = build_with_asr(monkeypatch, tmp_path / "work", asr, batch_size=4)
    assert (anonymizer.batch_size, anonymizer.bucket) == (4, 4)
    anonymizer(utts[0])
    results = anonymizer.convert_batch(utts)
    assert asr.batches == [1, 4]  # u0 was cached
    again = build_with_asr(monkeypatch, tmp_path / "work", CountingAsr("unused"))
    assert [r.record for r in results] == [again(u).record for u in utts]

    monkeypatch.setattr(anonymizer.tts, "synthesize", lambda text, speaker: (_ for _ in ()).throw(OSError("disk")))
    failed = anonymizer.convert_batch(utts[:2])
    assert all(isinstance(r, OSError) for r in failed)  # each utterance fails alone, the batch goes on
