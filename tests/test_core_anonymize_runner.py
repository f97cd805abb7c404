import json
import stat

import numpy as np
import pytest

from voxanon.anonymize import base, outdir
from voxanon.audio import read_audio
from voxanon.anonymize import runner
from voxanon.bin import anonymize as cli
from voxanon.data.kaldi import load_data_dir, validate_data_dir


@pytest.fixture(autouse=True)
def gain_system(monkeypatch):
    monkeypatch.setitem(base.SYSTEMS, "gain_test", "gain_system")


def write_conf(path, gain=0.5, fail_on="broken"):
    path.write_text(f"exp: t\nanonymizer:\n  system: gain_test\n  seed: 7\n  params: {{gain: {gain}, fail_on: {fail_on}}}\n")
    return path


def run(conf, src, out, *extra, step="job"):
    return cli.main([step, "--conf", str(conf), *extra, str(src), str(out)])


def test_shards_cover_all_once():
    utts = [f"u{i}" for i in range(10)]
    parts = [runner.shard(utts, j, 3) for j in (1, 2, 3)]
    assert sum(parts, []) == utts


def test_complete_dir_resume_and_records(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOXANON_EXP", str(tmp_path / "exp"))
    conf = write_conf(tmp_path / "c.yaml")
    out = tmp_path / "anon"
    assert run(conf, tiny_data_dir, out, "--job", "1", "--nj", "2") == 0
    assert run(conf, tiny_data_dir, out, step="finalize") == 1  # job 2 not done yet: no incomplete dir
    assert not (out / "wav.scp").exists()
    assert run(conf, tiny_data_dir, out, "--job", "2", "--nj", "2") == 0
    assert run(conf, tiny_data_dir, out, step="finalize") == 0
    assert validate_data_dir(out, check_audio=True, expect_rate=16000) == []
    src, dst = load_data_dir(tiny_data_dir), load_data_dir(out)
    assert dst.utts == src.utts and dst.tables == src.tables and dst.trials == src.trials
    a = read_audio(src.wav_scp["spkA-u0"]).samples
    b = read_audio(dst.wav_scp["spkA-u0"]).samples
    np.testing.assert_allclose(b, 0.5 * a, atol=1e-4)
    # The per-utterance record is owner-only and outside the data dir.
    record_dir = outdir.default_record_dir(out)
    assert stat.S_IMODE(record_dir.stat().st_mode) == 0o700
    records = [json.loads(line) for p in record_dir.glob("records.*.jsonl") for line in p.read_text().splitlines()]
    assert sorted(r["utt"] for r in records) == src.utts
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in record_dir.glob("records.*.jsonl"))
    assert not any('"gain"' in p.read_text() for p in out.iterdir() if p.is_file())
    # The stamp holds no seed or params: the seed would let anyone recompute the random choices.
    assert set(json.loads((out / ".anonymizer.json").read_text())) == {"owner", "config", "system"}
    assert stat.S_IMODE((out / "wav.scp").stat().st_mode) & 0o044 == 0o044  # data is shareable
    assert stat.S_IMODE((out / "wav" / "spkA-u0.wav").stat().st_mode) & 0o044 == 0o044
    # Re-running does nothing: every wav is there.
    mtime = (out / "wav" / "spkA-u0.wav").stat().st_mtime_ns
    assert run(conf, tiny_data_dir, out) == 0
    assert (out / "wav" / "spkA-u0.wav").stat().st_mtime_ns == mtime


def test_one_bad_utterance_does_not_sink_the_job(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOXANON_EXP", str(tmp_path / "exp"))
    conf = write_conf(tmp_path / "c.yaml", fail_on="spkB-u1")
    out = tmp_path / "anon"
    assert run(conf, tiny_data_dir, out) == 1
    assert (out / "log" / "failed.1").read_text() == "spkB-u1\n"
    assert len(list((out / "wav").glob("*.wav"))) == 5
    assert run(conf, tiny_data_dir, out, step="finalize") == 1
    # Fixing the cause and re-running finishes only the missing utterance.
    write_conf(conf, fail_on="nothing")
    assert run(conf, tiny_data_dir, out) == 2  # changed config: refused
    assert run(conf, tiny_data_dir, out, step="prepare") == 2
    assert run(conf, tiny_data_dir, out, "--overwrite", "true", step="prepare") == 0
    # Overwrite forgets our finished outputs (their stamps); the wavs are rewritten, never taken as done.
    assert not list((out / ".done").iterdir()) and not (out / "log" / "failed.1").exists()
    assert run(conf, tiny_data_dir, out, step="finalize") == 1
    assert run(conf, tiny_data_dir, out) == 0
    assert run(conf, tiny_data_dir, out, step="finalize") == 0


def test_new_audio_behind_same_ids_redoes_only_that_utterance(tiny_data_dir, tmp_path, monkeypatch):
    import soundfile as sf

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOXANON_EXP", str(tmp_path / "exp"))
    conf = write_conf(tmp_path / "c.yaml")
    out = tmp_path / "anon"
    assert run(conf, tiny_data_dir, out, step="prepare") == 0 and run(conf, tiny_data_dir, out) == 0
    assert run(conf, tiny_data_dir, out, step="finalize") == 0
    before = {p.name: p.stat().st_mtime_ns for p in (out / "wav").iterdir()}
    wav = load_data_dir(tiny_data_dir).wav_scp["spkA-u0"]
    sf.write(wav, np.zeros(4000, dtype=np.float32), 16000)  # the corpus was regenerated
    assert run(conf, tiny_data_dir, out, step="finalize") == 1  # the old output is not taken for finished
    assert run(conf, tiny_data_dir, out, step="prepare") == 0 and not (out / "wav.scp").exists()
    assert run(conf, tiny_data_dir, out) == 0 and run(conf, tiny_data_dir, out, step="finalize") == 0
    assert len(read_audio(str(out / "wav" / "spkA-u0.wav")).samples) == 4000
    after = {p.name: p.stat().st_mtime_ns for p in (out / "wav").iterdir()}
    assert [n for n in before if before[n] != after[n]] == ["spkA-u0.wav"]


def test_unknown_system_is_a_clear_error(tiny_data_dir, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOXANON_EXP", str(tmp_path / "exp"))
    conf = tmp_path / "c.yaml"
    conf.write_text("exp: t\nanonymizer: {system: nosuch}\n")
    assert run(conf, tiny_data_dir, tmp_path / "o") == 2
    assert "anonymizer: unknown anonymization system 'nosuch'" in capfd.readouterr().err
