"""utils/slurm.pl against a real Slurm: slurmctld + slurmd + slurmdbd started by utils/local_slurm.sh.

Needs root (the one-node cluster's daemons run as root); skipped with the reason when not root
or when the cluster cannot be started. A cluster already running (same $VOXANON_SLURM_DIR) is
used and left running; one started here is stopped at the end.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxanon.data.kaldi import load_data_dir

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[1]
LOCAL_SLURM = ROOT / "utils" / "local_slurm.sh"
SLURM_PL = str(ROOT / "utils" / "slurm.pl")


@pytest.fixture(scope="module")
def slurm_env():
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster needs root (utils/local_slurm.sh start); run the slurm tests as root")
    started = subprocess.run([LOCAL_SLURM, "status"], capture_output=True, text=True).returncode != 0
    if started:
        res = subprocess.run([LOCAL_SLURM, "start"], capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            subprocess.run([LOCAL_SLURM, "stop"], capture_output=True)
            pytest.skip(f"Slurm could not be started here: {(res.stderr or res.stdout).strip()[-500:]}")
    rt = os.environ.get("VOXANON_SLURM_DIR", "/tmp/voxanon-slurm")
    env = {**os.environ, "SLURM_CONF": f"{rt}/slurm.conf"}
    yield env
    if started:
        subprocess.run([LOCAL_SLURM, "stop"], capture_output=True, timeout=120)


def job_id_of(stderr: str) -> str:
    line = next(line for line in stderr.splitlines() if line.startswith("slurm.pl: Slurm job "))
    return line.split()[3].rstrip(",")


def sacct(env, job_id, n, timeout=30) -> dict[str, tuple[str, str]]:
    """Task -> (state, exit code) from sacct, once slurmdbd holds all ``n`` records."""
    deadline = time.time() + timeout
    while True:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", job_id, "-o", "JobID,State,ExitCode"],
                             capture_output=True, text=True, env=env).stdout
        rows = {jid.partition("_")[2]: (state, code) for jid, state, code in
                (line.split("|") for line in out.splitlines())}
        done = [r for r in rows.values() if r[0] not in ("PENDING", "RUNNING")]
        if len(done) == n or time.time() > deadline:
            return rows
        time.sleep(1)


def test_array_with_one_failing_task(slurm_env, tmp_path):
    res = subprocess.run([SLURM_PL, "--max-jobs-run", "2", "--mem", "100M", "JOB=1:4", "log/x.JOB.log",
                          "echo", "task", "JOB", ";", "test", "JOB", "!=", "3"],
                         cwd=tmp_path, env=slurm_env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert "1 of 4 tasks failed" in res.stderr and "log/x.3.log (exit status 1)" in res.stderr
    assert "x.1.log" not in res.stderr.split("failed")[1]
    job = job_id_of(res.stderr)
    for task in range(1, 5):
        lines = (tmp_path / f"log/x.{task}.log").read_text().splitlines()
        assert lines[0] == f"# echo task {task} ; test {task} '!=' 3"
        assert lines[1].startswith("# Started at ")
        assert lines[2].startswith("# Running on ") and lines[2].endswith(f"(Slurm job {job}_{task})")
        assert lines[3] == f"task {task}"
        assert lines[-2].startswith("# Accounting: time=") and lines[-2].endswith(" threads=1")
        assert lines[-1].startswith(f"# Ended (code {1 if task == 3 else 0}) at ")
    rows = sacct(slurm_env, job, 4)
    assert rows == {"1": ("COMPLETED", "0:0"), "2": ("COMPLETED", "0:0"), "3": ("FAILED", "1:0"),
                    "4": ("COMPLETED", "0:0")}


def test_gpu_request_fails_fast(slurm_env, tmp_path):
    t0 = time.time()
    res = subprocess.run([SLURM_PL, "--gpu", "1", "JOB=1:2", "log/g.JOB.log", "nvidia-smi"],
                         cwd=tmp_path, env=slurm_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and time.time() - t0 < 20
    assert "--gpu 1 cannot be satisfied: no usable node in the default partition has 1 GPU(s)" in res.stderr
    assert "Slurm job" not in res.stderr  # nothing was submitted
    # A request no node can meet, refused by sbatch itself: reported at once, with sbatch's reason.
    res = subprocess.run([SLURM_PL, "--mem", "100000000M", "log/m.log", "true"],
                         cwd=tmp_path, env=slurm_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "sbatch refused the job" in res.stderr


def test_interrupt_cancels_the_job(slurm_env, tmp_path):
    proc = subprocess.Popen([SLURM_PL, "JOB=1:2", "log/k.JOB.log", "sleep", "300"], cwd=tmp_path, env=slurm_env,
                            stderr=subprocess.PIPE, text=True)
    job = job_id_of(proc.stderr.readline())
    for _ in range(60):  # until both tasks run
        if (tmp_path / "log/k.2.log").exists() and (tmp_path / "log/k.1.log").exists():
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert f"cancelled Slurm job {job}" in proc.stderr.read()
    rows = sacct(slurm_env, job, 2)
    assert len(rows) == 2 and all(state.startswith("CANCELLED") for state, _ in rows.values()), rows
    queue = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True, env=slurm_env).stdout
    assert queue.strip() == ""


def test_espnet_conf_mem_per_cpu_and_sbatch_options(slurm_env, tmp_path):
    """ESPnet's conf/slurm.conf as it is (in ./conf, found from the working dir); --mem per CPU."""
    from test_runners import ESPNET_CONF

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "slurm.conf").write_text(ESPNET_CONF.replace("--export=PATH", "--export=ALL"))
    res = subprocess.run([SLURM_PL, "--mem", "50M", "--num-threads", "2", "-J", "espnet_x", "log/e.log",
                          "bash", "-c", "echo $SLURM_MEM_PER_CPU $SLURM_CPUS_PER_TASK"],
                         cwd=tmp_path, env=slurm_env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "log/e.log").read_text().splitlines()[3] == "50 2"
    assert "threads=2" in (tmp_path / "log/e.log").read_text()


def test_killing_the_parent_cancels_the_job(slurm_env, tmp_path):
    proc = subprocess.Popen(["bash", "-c", '"$@"', "parent", SLURM_PL, "JOB=1:2", "log/p.JOB.log", "sleep", "300"],
                            cwd=tmp_path, env=slurm_env, stderr=subprocess.PIPE, text=True)
    job = job_id_of(proc.stderr.readline())
    for _ in range(60):  # until both tasks run
        if (tmp_path / "log/p.1.log").exists() and (tmp_path / "log/p.2.log").exists():
            break
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGTERM)  # the parent script, not slurm.pl
    proc.wait(timeout=30)
    rows = sacct(slurm_env, job, 2)
    assert len(rows) == 2 and all(state.startswith("CANCELLED") for state, _ in rows.values()), rows
    assert subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True, env=slurm_env).stdout == ""


def test_anonymize_stage_through_slurm(slurm_env, tmp_path):
    """run.sh stage 5 (steps/anonymize.sh) with cmd.sh switched by VOXANON_RUNNER=slurm.pl."""
    data = tmp_path / "data" / "tiny"
    (data / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = {"wav.scp": [], "utt2spk": []}
    for i, spk in enumerate(["s1", "s1", "s2", "s2"]):
        utt = f"{spk}-{i}"
        t = np.arange(16000) / 16000
        x = 0.1 * np.sin(2 * np.pi * 140 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(16000)
        sf.write(data / "wav" / f"{utt}.wav", x, 16000)
        lines["wav.scp"].append(f"{utt} wav/{utt}.wav")
        lines["utt2spk"].append(f"{utt} {spk}")
    for name, ls in lines.items():
        (data / name).write_text("\n".join(ls) + "\n")
    (data / "spk2utt").write_text("s1 s1-0 s1-1\ns2 s2-2 s2-3\n")
    conf = tmp_path / "tiny.yaml"
    conf.write_text("exp: slurm_tiny\ndata:\n  recipe: mini\n  eval_sets: [tiny]\n"
                    "anonymizer:\n  system: mcadams\n  suffix: _mc\n  seed: 1\n  device: cpu\n")
    env = {**slurm_env, "VOXANON_RUNNER": "slurm.pl"}
    step = (f"steps/anonymize.sh --nj 2 --cmd \"$train_cmd\" --record-dir {tmp_path}/exp/rec {conf} {data} "
            f"{tmp_path}/data/tiny_mc")
    res = subprocess.run(["bash", "-c", f". ./path.sh && . ./cmd.sh && {step}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    out = load_data_dir(tmp_path / "data" / "tiny_mc")
    assert out.utts == ["s1-0", "s1-1", "s2-2", "s2-3"]
    for utt in out.utts:
        audio, rate = sf.read(out.wav_scp[utt] if os.path.isabs(out.wav_scp[utt]) else out.path / out.wav_scp[utt])
        assert rate == 16000 and len(audio) > 8000 and np.isfinite(audio).all()
    job = job_id_of(res.stderr)
    for task in (1, 2):
        log = (tmp_path / "data" / "tiny_mc" / "log" / f"anonymize.{task}.log").read_text().splitlines()
        assert log[2].endswith(f"(Slurm job {job}_{task})") and log[-1].startswith("# Ended (code 0) at ")
    assert sacct(slurm_env, job, 2) == {"1": ("COMPLETED", "0:0"), "2": ("COMPLETED", "0:0")}
