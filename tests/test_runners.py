"""utils/run.pl (real processes) and the Slurm runner's pure parts (conf mapping, gres parsing).

The Slurm path itself is tested against a real cluster in tests/test_slurm.py.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voxanon.jobs.common import UsageError, parse_args, shell_join
from voxanon.jobs.slurm import _gpu_count, _partition, read_conf

ROOT = Path(__file__).resolve().parents[1]
RUN_PL = str(ROOT / "utils" / "run.pl")


def run_pl(*args, cwd, timeout=60):
    return subprocess.run([RUN_PL, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_array_with_one_failing_task_names_its_log(tmp_path):
    res = run_pl("JOB=1:4", "log/x.JOB.log", "echo", "task", "JOB", ";", "test", "JOB", "!=", "3", cwd=tmp_path)
    assert res.returncode == 1
    assert "1 of 4 tasks failed" in res.stderr
    assert "log/x.3.log (exit status 1)" in res.stderr
    assert "x.1.log" not in res.stderr and "x.4.log" not in res.stderr
    for task in range(1, 5):
        lines = (tmp_path / f"log/x.{task}.log").read_text().splitlines()
        assert lines[0] == f"# echo task {task} ; test {task} '!=' 3"  # Kaldi's log lines
        assert lines[1].startswith("# Started at ") and lines[2].startswith("# Running on ")
        assert lines[3] == f"task {task}"
        assert re.fullmatch(r"# Accounting: time=\d+ threads=1", lines[-2])
        assert re.fullmatch(rf"# Ended \(code {1 if task == 3 else 0}\) at .*, elapsed time \d+ seconds", lines[-1])


def test_operators_pipes_and_redirections(tmp_path):
    res = run_pl("JOB=1:2", "log/p.JOB.log", "echo", "a b  JOB", "|", "tr", "a-z", "A-Z", ">", "out.JOB.txt",
                 cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out.2.txt").read_text() == "A B  2\n"
    # pipefail: a failing first stage of a pipe fails the task
    res = run_pl("log/f.log", "false", "|", "cat", cwd=tmp_path)
    assert res.returncode == 1 and "the job failed" in res.stderr and "log/f.log" in res.stderr


def test_max_jobs_run_throttles(tmp_path):
    # Each task counts the tasks running beside it (one dir per running task).
    (tmp_path / "running").mkdir()
    body = "mkdir running/JOB; ls running | wc -l > count.JOB; sleep 0.6; rmdir running/JOB"
    args = ["JOB=1:6", "log/t.JOB.log", "bash", "-c", body]
    assert run_pl("--max-jobs-run", "2", *args, cwd=tmp_path).returncode == 0
    counts = [int((tmp_path / f"count.{i}").read_text()) for i in range(1, 7)]
    assert max(counts) == 2
    assert run_pl("--max-jobs-run", "6", *args, cwd=tmp_path).returncode == 0
    assert max(int((tmp_path / f"count.{i}").read_text()) for i in range(1, 7)) > 2


def test_slurm_options_accepted_and_single_task(tmp_path):
    res = run_pl("--gpu", "1", "--mem", "4G", "--num-threads", "2", "--any-site-option", "x", "-q", "all.q", "JOB=3",
                 "log/s.JOB.log", "echo", "JOB", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "log/s.3.log").read_text().splitlines()[3] == "3"
    assert not (tmp_path / "log/s.1.log").exists()


@pytest.mark.parametrize("args, message", [
    (["--gpu", "-1", "log", "true"], "non-negative integer"),
    (["--max-jobs-run", "0", "JOB=1:2", "l.JOB", "true"], "positive integer"),
    (["JOB=1:2", "one.log", "true"], "put JOB in the log name"),
    (["JOB=0:2", "l.JOB", "true"], "start must be strictly positive"),
    (["JOB=1:2", "l.JOB"], "expected a log file and a command"),
])
def test_usage_errors(tmp_path, args, message):
    res = run_pl(*args, cwd=tmp_path)
    assert res.returncode == 1 and message in res.stderr


def test_sigterm_stops_running_tasks(tmp_path):
    proc = subprocess.Popen([RUN_PL, "JOB=1:2", "log/k.JOB.log", "bash", "-c", "echo $$ > pid.JOB; exec sleep 60"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    pids = _task_pids(tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    assert "interrupted" in proc.stderr.read()
    for pid in pids:  # the tasks (sleep) are gone
        _gone(pid)


def test_parse_and_quote():
    spec = parse_args(["--max-jobs-run", "3", "TASK=2:4", "l/x.TASK.log", "prog", "a b", "2>&1"])
    assert (spec.var, spec.first, spec.last, spec.tasks) == ("TASK", 2, 4, [2, 3, 4])
    assert spec.log_of(3) == "l/x.3.log" and spec.int_option("max_jobs_run") == 3
    assert shell_join(spec.command) == "prog 'a b' 2>&1"
    assert shell_join(("p", "<unk>", "a|b", "2>/dev/null", "|", "q", ">out.txt")) == "p '<unk>' 'a|b' 2>/dev/null | q >out.txt"
    single = parse_args(["l.log", "prog"])
    assert single.tasks == [None] and single.log_of(None) == "l.log"
    with pytest.raises(UsageError):
        parse_args(["JOB=3:1", "l.JOB", "prog"])


# ESPnet's egs2/TEMPLATE conf/slurm.conf, as sites use it.
ESPNET_CONF = """\
# Default configuration
command sbatch --export=PATH
option name=* --job-name $0
option time=* --time $0
option mem=* --mem-per-cpu $0
option mem=0
option num_threads=* --cpus-per-task $0
option num_threads=1 --cpus-per-task 1
option num_nodes=* --nodes $0
default gpu=0
option gpu=0
option gpu=* -p gpu --gres=gpu:$0 -c $0  # Recommend allocating more CPU than, or equal to the number of GPU
# note: the --max-jobs-run option is supported as a special case
# by slurm.pl and you don't have to handle it in the config file.
"""


def test_slurm_conf_kaldi_and_espnet_format(tmp_path):
    conf = read_conf(ROOT / "conf" / "slurm.conf")
    assert conf.command == ("sbatch",)
    assert conf.sbatch_args({"mem": "4G", "max_jobs_run": "2"}) == ["--mem-per-cpu", "4G"]  # per CPU
    assert conf.sbatch_args({"mem": "0"}) == []  # Kaldi: --mem 0 asks for nothing, not the whole node
    assert conf.sbatch_args({"gpu": "2", "num_threads": "4", "time": "1:00:00"}) == [
        "--gres=gpu:2", "--cpus-per-task", "4", "--time", "1:00:00"]
    (tmp_path / "slurm.conf").write_text(ESPNET_CONF)
    conf = read_conf(tmp_path / "slurm.conf")
    assert conf.command == ("sbatch", "--export=PATH")
    spec = parse_args(["--gpu", "1", "--mem", "2G", "--num-threads", "1", "-A", "proj", "JOB=1:2", "l.JOB", "x"])
    assert conf.sbatch_args(spec.options) == ["-p", "gpu", "--gres=gpu:1", "-c", "1", "--mem-per-cpu", "2G",
                                              "--cpus-per-task", "1"]
    assert spec.queue_args == ("-A", "proj")
    assert _partition([*conf.command, *conf.sbatch_args({"gpu": "1"})]) == "gpu"
    with pytest.raises(UsageError, match="--partition cpu is not described in .*slurm.conf"):
        conf.sbatch_args({"partition": "cpu"})
    (tmp_path / "bad.conf").write_text("command sbatch\ngpus --gres=gpu:{}\n")
    with pytest.raises(UsageError, match="bad.conf:2: unable to parse line"):
        read_conf(tmp_path / "bad.conf")
    (tmp_path / "nocmd.conf").write_text("option mem=* --mem $0\n")
    with pytest.raises(UsageError, match="no 'command sbatch"):
        read_conf(tmp_path / "nocmd.conf")


def test_slurm_conf_defaults_to_cwd_then_builtin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert read_conf(None).source == "the default config"
    assert read_conf(None).sbatch_args({"mem": "1G"}) == ["--mem-per-cpu", "1G"]
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "slurm.conf").write_text(ESPNET_CONF)
    assert read_conf(None).command == ("sbatch", "--export=PATH")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_killing_the_parent_ends_the_jobs(tmp_path, sig):
    """``kill PID`` on the script that waits for run.pl (not on its process group)."""
    # A bash parent dies at once on TERM and HUP; on INT a non-interactive bash waits for its
    # foreground child, so the INT case uses a parent that dies on INT (python's default).
    parent = "import subprocess, sys; subprocess.Popen(sys.argv[1:]).wait()" if sig == signal.SIGINT else None
    job = [RUN_PL, "JOB=1:2", "log/k.JOB.log", "bash", "-c", "echo $$ > pid.JOB; exec sleep 60"]
    cmd = [sys.executable, "-c", parent, *job] if parent else ["bash", "-c", '"$@"; echo after', "parent", *job]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    pids = _task_pids(tmp_path)
    os.kill(proc.pid, sig)
    proc.wait(timeout=10)
    for pid in pids:
        _gone(pid)


def test_kill_9_of_run_pl_leaves_no_task_without_the_callers_lock(tmp_path):
    """steps/anonymize.sh holds ``flock`` on fd 9 while run.pl runs its jobs: a task outliving a
    run.pl killed with -9 must still hold it, so no second run starts beside it."""
    lock = tmp_path / ".lock"
    job = f"exec 9>>{lock}; flock -n 9 || exit 3; exec {RUN_PL} JOB=1:2 log/k.JOB.log " \
          "bash -c 'echo $$ > pid.JOB; exec sleep 60'"
    proc = subprocess.Popen(["bash", "-c", job], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    pids = _task_pids(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)  # run.pl (exec'ed by bash); its tasks live on in their sessions
    proc.wait(timeout=10)
    try:
        free = subprocess.run(["flock", "-n", str(lock), "true"], timeout=10).returncode == 0
        assert not free, "a new run could take the lock while the tasks still run"
    finally:
        for pid in pids:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    for pid in pids:
        _gone(pid)
    assert subprocess.run(["flock", "-n", str(lock), "true"], timeout=10).returncode == 0  # freed with them


def _task_pids(cwd: Path) -> list[int]:
    pidfiles = [cwd / "pid.1", cwd / "pid.2"]
    for _ in range(100):
        if all(p.exists() and p.read_text().strip() for p in pidfiles):
            break
        time.sleep(0.1)
    return [int(p.read_text()) for p in pidfiles]


def _gone(pid: int) -> None:
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    raise AssertionError(f"task process {pid} still runs")


def test_gres_parsing():
    assert _gpu_count("(null)") == 0
    assert _gpu_count("gpu:2") == 2
    assert _gpu_count("gpu:a100:4(S:0-1)") == 4
    assert _gpu_count("gpu:a100:2(S:0),gpu:v100:1(S:1),shard:8") == 3
    assert _partition(["--mem=1G", "-p", "long"]) == "long"
    assert _partition([]) is None


def test_run_pl_is_on_path_after_path_sh(tmp_path):
    res = subprocess.run(["bash", "-c", f". {ROOT}/path.sh && cd {tmp_path} && run.pl log/a.log echo ok"],
                         capture_output=True, text=True, env={**os.environ})
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "log/a.log").read_text().splitlines()[3] == "ok"


def test_threads_shared_among_concurrent_tasks(tmp_path, monkeypatch):
    import os

    from voxanon.jobs.common import parse_args
    from voxanon.jobs.local import task_env

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    cores = os.cpu_count() or 1
    spec = parse_args(["JOB=1:8", str(tmp_path / "x.JOB.log"), "true"])
    assert task_env(spec, max_jobs=cores)["OMP_NUM_THREADS"] == "1"
    assert task_env(parse_args([str(tmp_path / "y.log"), "true"]), max_jobs=cores)["OMP_NUM_THREADS"] == str(cores)
    assert task_env(parse_args(["--num-threads", "3", str(tmp_path / "z.log"), "true"]), 1)["MKL_NUM_THREADS"] == "3"
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert task_env(spec, max_jobs=cores)["OMP_NUM_THREADS"] == "7"  # the user's setting wins
