"""steps/anonymize.sh must never publish original speech as anonymized nor destroy audio:
unsafe ids, input = output, foreign dirs, concurrent runs, kill -9, lost records, changed inputs,
bad inputs, the public seed, NaN/clipping. Real files and real step runs (the cheap McAdams system)."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import tone_audio
from voxanon.anonymize import base, outdir, runner
from voxanon.audio import read_audio
from voxanon.bin import anonymize as cli
from voxanon.config import fingerprint
from voxanon.data.ids import UnsafeIdError, child_path, id_problem
from voxanon.data.kaldi import DataDir, Trial, load_data_dir, validate_data_dir, write_data_dir

ROOT = Path(__file__).resolve().parents[1]
CONF = "exp: t\nanonymizer: {system: mcadams, seed: 11, device: cpu}\n"


def make_data(path: Path, utts: dict[str, str], entries: dict[str, str] | None = None, **tables) -> Path:
    """A data dir of ``utts`` (id -> speaker) with generated tones; ``entries`` overrides wav.scp lines."""
    wavs = path.parent / f"{path.name}_wavs"
    wavs.mkdir(parents=True, exist_ok=True)
    wav = {}
    for i, utt in enumerate(sorted(utts)):
        f = wavs / f"w{i}.wav"
        sf.write(f, tone_audio(0.5, 150 + 20 * i, seed=i), 16000)
        wav[utt] = str(f)
    wav.update(entries or {})
    write_data_dir(DataDir(wav, dict(utts), **tables), path)
    return path


@pytest.fixture
def work(tmp_path):
    (tmp_path / "c.yaml").write_text(CONF)
    return tmp_path


def step(work: Path, *args, script="steps/anonymize.sh", wait=True, **kw):
    env = {**os.environ, "VOXANON_EXP": str(work / "exp"), "OMP_NUM_THREADS": "1"}
    cmd = [str(ROOT / script), *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=180)


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def two_speakers(n: int = 2) -> dict[str, str]:
    return {f"{s}-{i}": s for s in ("spkA", "spkB") for i in range(n)}


# --- 1: ids -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,why", [("../../victim/orig", "separator"), ("a..b", "'..'"), ("-rf", "'-'"),
                                      ("a\u200bb", "unprintable"), ("", "empty"), ("a\\b", "separator"),
                                      (".", "'.'"), ("é" * 101, "202 bytes long")])
def test_unsafe_ids_are_named(name, why):
    assert why in id_problem(name)
    assert id_problem("1272-128104-0000_x.1") is None


def test_traversal_id_is_refused_and_the_victim_untouched(work):
    victim = work / "victim" / "orig.wav"
    victim.parent.mkdir()
    sf.write(victim, tone_audio(0.5), 16000)  # original speech that must not be listed as anonymized
    before = victim.read_bytes()
    src = make_data(work / "data" / "in", {"../../victim/orig": "spkA", "ok-1": "spkA"})
    res = step(work, "c.yaml", src, work / "data" / "out")
    assert res.returncode == 1
    assert "utterance id '../../victim/orig': contains a path separator" in res.stderr
    assert "Traceback" not in res.stderr
    assert victim.read_bytes() == before and not list((work / "data" / "out").rglob("*.wav"))
    assert not (work / "data" / "out" / "wav.scp").exists()
    problems = validate_data_dir(src)
    assert any("'../../victim/orig'" in p for p in problems)


def test_a_planted_symlink_in_the_output_is_not_followed(tmp_path):
    (tmp_path / "wav").mkdir()
    (tmp_path / "outside.wav").write_bytes(b"original")
    (tmp_path / "wav" / "u1.wav").symlink_to(tmp_path / "outside.wav")
    with pytest.raises(UnsafeIdError, match="outside"):
        child_path(tmp_path / "wav", "u1", ".wav")


# --- 2: ownership ---------------------------------------------------------------------------

def test_input_as_output_is_refused_and_left_untouched(work):
    src = make_data(work / "data" / "in", two_speakers())
    before = snapshot(src), snapshot(work / "data" / "in_wavs")
    res = step(work, "--overwrite", "true", "c.yaml", src, src)
    assert res.returncode == 1 and "is the input dir" in res.stderr
    assert (snapshot(src), snapshot(work / "data" / "in_wavs")) == before  # not even a lock file


@pytest.mark.parametrize("overwrite", ["false", "true"])
def test_a_foreign_dir_is_refused_and_left_untouched(work, overwrite):
    src = make_data(work / "data" / "in", two_speakers())
    other = make_data(work / "data" / "other", {"x-1": "x"})
    (other / "wav").mkdir()
    sf.write(other / "wav" / "spkA-0.wav", tone_audio(0.3), 16000)
    before = snapshot(other)
    res = step(work, "--overwrite", overwrite, "c.yaml", src, other)
    assert res.returncode == 1 and "was not written by steps/anonymize.sh" in res.stderr
    assert snapshot(other) == before


# --- 3 and the kill -9 resume: one writer per dir ----------------------------------------------

def slow_pipe(wav: str, seconds: float) -> str:
    return f"sleep {seconds}; cat {wav} |"


def test_a_second_run_fails_at_once_naming_the_holder(work, monkeypatch):
    utts = two_speakers()
    src = make_data(work / "data" / "in", utts)
    entries = load_data_dir(src).wav_scp
    make_data(src, utts, {"spkB-1": slow_pipe(entries["spkB-1"], 3)})
    out = work / "data" / "out"
    first = step(work, "--allow-pipes", "true", "c.yaml", src, out, wait=False)
    deadline = time.time() + 60
    while not ((out / ".lock").is_file() and "pid" in (out / ".lock").read_text()) and time.time() < deadline:
        time.sleep(0.2)
    second = step(work, "--allow-pipes", "true", "--overwrite", "true", "c.yaml", src, out)
    assert first.poll() is None, "the first run ended before the second was tried"
    assert second.returncode == 1
    assert f"is being written by another run (pid {first.pid} on" in second.stderr
    assert first.wait(timeout=120) == 0, first.stderr.read()
    stamps = {p.read_text() for p in (out / ".done").iterdir()}
    assert len(stamps) == 4 and validate_data_dir(out, check_audio=True) == []
    monkeypatch.setenv("VOXANON_EXP", str(work / "exp"))
    records = [json.loads(line) for p in outdir.default_record_dir(out).glob("records.*.jsonl")
               for line in p.read_text().splitlines()]
    assert sorted(r["utt"] for r in records) == sorted(utts)


def test_kill_9_then_resume_finishes_only_the_rest(work):
    utts = two_speakers()
    src = make_data(work / "data" / "in", utts)
    entries = load_data_dir(src).wav_scp
    make_data(src, utts, {"spkB-1": slow_pipe(entries["spkB-1"], 8)})  # the last one, job 1 of 1
    out = work / "data" / "out"
    proc = step(work, "--allow-pipes", "true", "c.yaml", src, out, wait=False, start_new_session=True)
    deadline = time.time() + 90
    while len(list((out / ".done").glob("*"))) < 3 and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the step and run.pl; the job (its own session) runs on
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in (out / "wav").iterdir()}
    assert len(done) == 3 and not (out / "wav.scp").exists()
    res = step(work, "--allow-pipes", "true", "c.yaml", src, out)
    assert res.returncode == 1 and "is being written by another run" in res.stderr  # the job holds the lock
    deadline = time.time() + 90
    while subprocess.run(["flock", "-n", str(out / ".lock"), "true"]).returncode != 0 and time.time() < deadline:
        time.sleep(0.2)
    res = step(work, "--allow-pipes", "true", "c.yaml", src, out)  # the lock ended with its last holder
    assert res.returncode == 0, res.stderr
    assert {n: (out / "wav" / n).stat().st_mtime_ns for n in done} == done
    assert load_data_dir(out).utts == sorted(utts)


# --- 6: a fixed input is retried without --overwrite -----------------------------------------

def test_fixing_a_bad_input_file_retries_only_it(work):
    utts = two_speakers()
    src = make_data(work / "data" / "in", utts)
    bad = load_data_dir(src).wav_scp["spkA-1"]
    sf.write(bad, np.full(8000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")  # opens; fails when read
    out = work / "data" / "out"
    res = step(work, "c.yaml", src, out)
    assert res.returncode == 1 and "see" in res.stderr and "re-run to retry" in res.stderr
    assert "utterance spkA-1 failed" in (out / "log" / "anonymize.1.log").read_text()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "wav").iterdir()}
    assert len(before) == 3
    sf.write(bad, tone_audio(0.5), 16000)
    res = step(work, "c.yaml", src, out)
    assert res.returncode == 0, res.stderr
    assert {n: (out / "wav" / n).stat().st_mtime_ns for n in before} == before
    assert load_data_dir(out).utts == sorted(utts)


# --- 8: records ---------------------------------------------------------------------------

@pytest.fixture
def gain_system(monkeypatch, tmp_path):
    monkeypatch.setitem(base.SYSTEMS, "gain_test", "gain_system")
    monkeypatch.chdir(tmp_path)
    conf = tmp_path / "g.yaml"
    conf.write_text("exp: t\nanonymizer: {system: gain_test, seed: 3, params: {gain: 4.0}}\n")
    return conf


def test_a_failed_record_write_never_publishes_the_wav(gain_system, tmp_path, monkeypatch, capfd):
    src = make_data(tmp_path / "in", two_speakers())
    out, rec = tmp_path / "out", tmp_path / "rec"
    real = runner.append_record

    def failing(code):
        def append(records, line):
            if '"spkA-1"' in line:
                raise OSError(code, os.strerror(code))
            real(records, line)
        return append

    args = ["--conf", str(gain_system), "--record-dir", str(rec), str(src), str(out)]
    monkeypatch.setattr(runner, "append_record", failing(errno.EIO))
    assert cli.main(["job", *args]) == 1  # one utterance failed, the rest done
    assert (out / "log" / "failed.1").read_text() == "spkA-1\n"
    monkeypatch.setattr(runner, "append_record", failing(errno.ENOSPC))
    assert cli.main(["job", *args]) == 2  # a full disk stops the job with one line
    err = capfd.readouterr().err
    assert f"disk full writing the record of spkA-1 to {rec / 'records.1.jsonl'};" in err and "Traceback" not in err
    assert not (out / "wav" / "spkA-1.wav").exists() and not (out / ".done" / "spkA-1").exists()
    monkeypatch.setattr(runner, "append_record", real)
    real_open = outdir.open_records

    def full(*_):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outdir, "open_records", full)
    assert cli.main(["job", *args]) == 2  # a full record dir at the start names the dir and the utterance
    assert f"disk full writing the records of job 1 to {rec} (first utterance spkA-1);" in capfd.readouterr().err
    monkeypatch.setattr(outdir, "open_records", real_open)
    assert cli.main(["job", *args]) == 0 and cli.main(["finalize", *args]) == 0
    published = load_data_dir(out).utts
    recorded = {json.loads(line)["utt"] for p in rec.glob("records.*.jsonl") for line in p.read_text().splitlines()}
    assert recorded == set(published) == set(two_speakers())


def test_record_dirs_are_keyed_by_the_full_output_path(gain_system, tmp_path, capfd):
    src = make_data(tmp_path / "in", two_speakers(1))
    a, b = tmp_path / "a" / "anon", tmp_path / "b" / "anon"
    assert outdir.default_record_dir(a) != outdir.default_record_dir(b)
    shared = ["--record-dir", str(tmp_path / "rec")]
    assert cli.main(["job", "--conf", str(gain_system), *shared, str(src), str(a)]) == 0
    assert cli.main(["prepare", "--conf", str(gain_system), *shared, "--overwrite", "true", str(src), str(b)]) == 2
    assert "holds the records of" in capfd.readouterr().err
    assert len(list((tmp_path / "rec").glob("records.*.jsonl"))) == 1  # a's records kept


# --- 11: full scale ------------------------------------------------------------------------

def test_output_above_full_scale_is_scaled_not_clipped(gain_system, tmp_path, capfd):
    src = make_data(tmp_path / "in", two_speakers(1))
    out, rec = tmp_path / "out", tmp_path / "rec"
    args = ["--conf", str(gain_system), "--record-dir", str(rec), str(src), str(out)]
    assert cli.main(["job", *args]) == 0 and cli.main(["finalize", *args]) == 0
    assert "2 of 2 output(s) went above full scale and were scaled down" in capfd.readouterr().err
    data, anon = load_data_dir(src), load_data_dir(out)
    for utt in data.utts:
        x, y = read_audio(data.wav_scp[utt]).samples, read_audio(anon.wav_scp[utt]).samples
        assert 0.99 < np.max(np.abs(y)) <= 1.0
        ratio = np.max(np.abs(y)) / np.max(np.abs(x))
        np.testing.assert_allclose(y, ratio * x, atol=2e-4)  # same shape: scaled, not clipped
    records = [json.loads(line) for p in rec.glob("*.jsonl") for line in p.read_text().splitlines()]
    assert all(0 < r["scaled"] < 1 for r in records)


def test_validator_reports_nan_inf_and_clipping(tmp_path):
    src = make_data(tmp_path / "in", {"n-1": "n", "c-1": "c", "ok-1": "o"})
    wav = load_data_dir(src).wav_scp
    x = tone_audio(0.5)
    x[100] = np.inf
    sf.write(wav["n-1"], x, 16000, subtype="FLOAT")
    sf.write(wav["c-1"], np.clip(4 * tone_audio(0.5), -1, 1), 16000)
    warnings = []
    problems = validate_data_dir(src, check_audio=True, warnings=warnings)
    assert problems == ["wav.scp: audio with NaN or inf samples: n-1"]
    assert len(warnings) == 1 and "clipped audio" in warnings[0] and "c-1 (" in warnings[0]


# --- 5, 9, 10: inputs, seed, errors ------------------------------------------------------------

def test_bad_inputs_are_refused_before_any_job_naming_the_ids(gain_system, tmp_path, capfd):
    def prepare(src):
        rc = cli.main(["prepare", "--conf", str(gain_system), str(src), str(tmp_path / f"out_{src.name}")])
        return rc, capfd.readouterr().err

    src = make_data(tmp_path / "extra", two_speakers(1))
    (src / "wav.scp").write_text((src / "wav.scp").read_text() + f"zz-9 {load_data_dir(src).wav_scp['spkA-0']}\n")
    rc, err = prepare(src)
    assert rc == 2 and "utterance(s) missing from utt2spk: zz-9" in err
    src = make_data(tmp_path / "missing", two_speakers(1))
    (src / "wav.scp").write_text((src / "wav.scp").read_text().splitlines()[0] + "\n")
    rc, err = prepare(src)
    assert rc == 2 and "utterance(s) missing from wav.scp: spkB-0" in err
    src = make_data(tmp_path / "trials", two_speakers(1), trials=(Trial("spkA", "nobody-1", True),))
    rc, err = prepare(src)
    assert rc == 2 and "trials: utterance(s) not in utt2spk: nobody-1" in err
    src = make_data(tmp_path / "latin1", two_speakers(1), tables={"text": {"spkA-0": "A", "spkB-0": "B"}})
    (src / "text").write_bytes(b"spkA-0 A\nspkB-0 caf\xe9\n")
    rc, err = prepare(src)
    assert rc == 2 and "text:2: not UTF-8 text" in err
    assert not list(tmp_path.glob("out_*/wav/*.wav")) and "Traceback" not in err
    src = make_data(tmp_path / "tabs", two_speakers(1))
    (src / "wav.scp").write_text((src / "wav.scp").read_text().replace(" ", "\t"))
    assert prepare(src)[0] == 0


def test_a_conf_without_seed_needs_public_seed(work):
    (work / "noseed.yaml").write_text("exp: t\nanonymizer: {system: mcadams, device: cpu}\n")
    src = make_data(work / "data" / "in", two_speakers(1))
    res = step(work, "noseed.yaml", src, work / "data" / "out")
    assert res.returncode == 1 and "no anonymizer.seed" in res.stderr and "--public-seed true" in res.stderr
    assert not (work / "data" / "out").exists()
    res = step(work, "--public-seed", "true", "--nj", "2", "noseed.yaml", src, work / "data" / "out")
    warning = "anonymizer.seed is the public default 1986"
    assert res.returncode == 0 and res.stderr.count(warning) == 1  # once per step, not per job
    job_logs = list((work / "data" / "out" / "log").glob("anonymize.*.log"))
    assert len(job_logs) == 2 and not any(warning in p.read_text() for p in job_logs)


@pytest.mark.parametrize("nj", ["0", "-1", "abc"])
def test_nj_must_be_a_positive_number(work, nj):
    src = make_data(work / "data" / "in", two_speakers(1))
    before = sorted(p.name for p in work.iterdir())
    res = step(work, "--nj", nj, "c.yaml", src, work / "data" / "out")
    assert res.returncode == 1 and res.stderr.strip() == f"{ROOT}/steps/anonymize.sh: --nj must be a positive " \
                                                        f"whole number, got '{nj}'"
    assert sorted(p.name for p in work.iterdir()) == before


@pytest.mark.parametrize("content", ["garbage", "truncated", "wrong_keys"])
def test_a_bad_converter_checkpoint_is_one_line_naming_it(tmp_path, monkeypatch, capfd, content):
    import torch

    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "final.pt"
    if content == "garbage":
        ckpt.write_bytes(b"\x80\x02not a checkpoint at all")
    else:
        torch.save({"model_config": {}, "converter": {"nope.weight": torch.zeros(3)}}, ckpt)
        if content == "truncated":
            ckpt.write_bytes(ckpt.read_bytes()[:200])
    conf = tmp_path / "w.yaml"
    conf.write_text(f"exp: t\nanonymizer: {{system: wavlm_conv, seed: 2, device: cpu, params: {{checkpoint: {ckpt}}}}}\n")
    src = make_data(tmp_path / "in", two_speakers(1))
    assert cli.main(["job", "--conf", str(conf), "--record-dir", str(tmp_path / "rec"), str(src), str(tmp_path / "o")]) == 2
    err = capfd.readouterr().err
    expected = "does not match this model (missing keys:" if content == "wrong_keys" else "not a readable PyTorch checkpoint"
    assert f"{ckpt}: " in err and expected in err
    assert "Traceback" not in err and "weights_only" not in err
    assert not list((tmp_path / "o" / "wav").glob("*.wav"))


def test_stamps_in_the_output_do_not_reveal_the_seed(work):
    """The published dir holds only config hashes sealed by the owner-only record dir's key: trying
    seeds against them gives nothing; without that key (record dir lost) every utterance is redone."""
    src = make_data(work / "data" / "in", two_speakers())
    out = work / "data" / "out"
    assert step(work, "c.yaml", src, out).returncode == 0
    conf, _ = cli.load_conf(str(work / "c.yaml"), True)
    published = {json.loads((out / ".anonymizer.json").read_text())["config"],
                 *(p.read_text().strip() for p in (out / ".done").iterdir())}
    data = load_data_dir(src)
    for seed in range(conf.seed - 50, conf.seed + 50):  # an attacker's guesses, the true seed among them
        plain = fingerprint(replace(conf, seed=seed))
        assert plain not in published
        assert not {outdir.utt_stamp(plain, data, u) for u in data.utts} & published
    (records,) = (work / "exp" / "anon_records").iterdir()
    key = records / outdir.STAMP_KEY
    assert key.stat().st_mode & 0o777 == 0o600
    key.unlink()  # the key is gone with the record dir: the stamps no longer vouch for the audio
    refused = step(work, "c.yaml", src, out)
    assert refused.returncode != 0 and "another anonymizer config" in refused.stderr, refused.stderr
    redo = step(work, "--overwrite", "true", "c.yaml", src, out)
    assert redo.returncode == 0 and "4 of 4 utterance(s) to do" in redo.stdout + redo.stderr, redo.stderr


# --- record dirs, symlinked dirs, FIFOs, ids, the cwd ----------------------------------

def test_ids_the_output_cannot_hold_are_refused_before_anything_is_written(work):
    long_id = "u" * 306
    src = make_data(work / "data" / "in", {".": "spkA", long_id: "spkA", "ok-1": "spkA"})
    out = work / "data" / "out"
    res = step(work, "c.yaml", src, out)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "utterance id '.': is '.'" in res.stderr and "(and 1 more)" in res.stderr
    assert not out.exists()
    assert any(f"'{long_id}': is 306 bytes long" in p for p in validate_data_dir(src))


@pytest.mark.parametrize("where", ["in the output dir", "the input dir"])
def test_a_record_dir_in_the_output_or_the_input_is_refused(work, where):
    src = make_data(work / "data" / "in", two_speakers(1))
    out = work / "data" / "out"
    rec = out / "records" if where == "in the output dir" else src
    before, mode = snapshot(src), src.stat().st_mode
    res = step(work, "--record-dir", rec, "c.yaml", src, out)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"record dir {rec} {'lies in the output dir' if rec != src else 'is the input dir'}" in res.stderr
    assert not out.exists() and snapshot(src) == before and src.stat().st_mode == mode


def test_another_users_record_dir_is_refused(work):
    src = make_data(work / "data" / "in", two_speakers(1))
    rec = work / "rec"
    rec.mkdir(mode=0o755)
    (rec / ".stamp_key").write_text("00" * 32 + "\n")  # planted: the attacker knows the key
    try:
        os.chown(rec, 65534, 65534)
    except PermissionError:
        pytest.skip("needs root to give a dir to another user")
    res = step(work, "--record-dir", rec, "c.yaml", src, work / "data" / "out")
    assert res.returncode == 1 and f"record dir {rec} belongs to another user (uid 65534)" in res.stderr
    assert not (work / "data" / "out").exists() and sorted(p.name for p in rec.iterdir()) == [".stamp_key"]


@pytest.mark.parametrize("plant", ["readable key", "symlinked records"])
def test_planted_keys_and_records_are_refused(gain_system, tmp_path, capfd, plant):
    src, out, rec = make_data(tmp_path / "in", two_speakers(1)), tmp_path / "out", tmp_path / "rec"
    rec.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    victim.chmod(0o644)
    if plant == "readable key":
        (rec / ".stamp_key").write_text("00" * 32 + "\n")
        (rec / ".stamp_key").chmod(0o644)
    else:
        (rec / "records.1.jsonl").symlink_to(victim)
    assert cli.main(["job", "--conf", str(gain_system), "--record-dir", str(rec), str(src), str(out)]) == 2
    err = capfd.readouterr().err
    assert ("is not a private file of yours" if plant == "readable key" else "records.1.jsonl is a symlink") in err
    assert victim.read_text() == "keep me\n" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not list(out.glob("wav/*.wav"))


def test_a_symlinked_wav_dir_is_not_written_through(work):
    src = make_data(work / "data" / "in", two_speakers(1))
    out, victim = work / "data" / "out", work / "victim"
    assert step(work, "c.yaml", src, out).returncode == 0
    victim.mkdir()
    (victim / "spkA-0.wav").write_bytes(b"someone else's file")
    shutil.rmtree(out / "wav")
    (out / "wav").symlink_to(victim)
    res = step(work, "--overwrite", "true", "c.yaml", src, out)
    assert res.returncode == 1 and f"{out / 'wav'} is a symlink (to {victim})" in res.stderr
    assert snapshot(victim) == {"spkA-0.wav": b"someone else's file"}


def test_a_fifo_in_wav_scp_is_refused_not_waited_on(work):
    fifo = work / "fifo.wav"
    os.mkfifo(fifo)
    src = make_data(work / "data" / "in", two_speakers(1), {"spkB-0": str(fifo)})
    res = step(work, "c.yaml", src, work / "data" / "out")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"spkB-0 ({fifo}: not a regular file" in res.stderr


def test_the_default_record_dir_does_not_depend_on_the_cwd(tmp_path, monkeypatch):
    out = tmp_path / "data" / "out"
    out.parent.mkdir()
    monkeypatch.setenv("VOXANON_EXP", "exp/t")  # relative, as run.sh sets it
    dirs = set()
    for cwd in (tmp_path, out.parent):
        monkeypatch.chdir(cwd)
        dirs.add(outdir.default_record_dir(Path(os.path.relpath(out))))
    assert len(dirs) == 1 and next(iter(dirs)).parent == ROOT / "exp" / "t" / "anon_records"
