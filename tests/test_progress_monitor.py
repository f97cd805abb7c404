"""The runners' progress on the console: the tasks' progress lines aggregated over the tasks
(voxanon.jobs.monitor), through run.pl and through steps/anonymize.sh (run.sh stage 5)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from voxanon.jobs.monitor import TaskProgress, parse_line, summary

ROOT = Path(__file__).resolve().parents[1]


def quick_env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("VOXANON_")}, "VOXANON_PROGRESS_S": "0.2"}


def test_progress_lines_parsed_and_summed():
    line = "16:02:11 INFO voxanon: anonymize job 3: 40/120 (1.50/s, eta 0m53s)\n"
    assert parse_line(line) == TaskProgress("anonymize", 40, 120, 1.5)
    assert parse_line("16:02:11 INFO voxanon: epoch 2/4: 7/10 (0.50/s, eta 0m06s)") == TaskProgress("epoch 2/4", 7, 10, 0.5)
    assert parse_line("16:02:11 INFO voxanon.anonymize: job 1/2: 3 utterances, 0 already done") is None
    tasks = [TaskProgress("anonymize", 40, 120, 1.5), TaskProgress("anonymize", 100, 100, 2.0),
             TaskProgress("anonymize", 10, 110, 0.5)]
    # rate: the tasks still at work; eta: the slowest of them (100 left at 0.5/s)
    assert summary(tasks, 4) == "anonymize: 150/330 (2.00/s, eta 3m20s), 3 of 4 tasks reporting"
    assert summary(tasks[1:2], 1) == "anonymize: 100/100 (2.00/s, eta 0m00s)"  # one task: no count


def test_run_pl_prints_the_aggregate_and_skips_the_previous_runs_logs(tmp_path):
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "x.2.log").write_text("00:00:00 INFO voxanon: thing job 2: 99/99 (9.00/s, eta 0m00s)\n")
    script = ('sleep 0.$((JOB * 3)); for i in 1 2 3 4; do '
              'echo "12:00:00 INFO voxanon: thing job JOB: $i/4 (2.00/s, eta 0m01s)"; sleep 0.3; done')
    res = subprocess.run([str(ROOT / "utils" / "run.pl"), "--max-jobs-run", "3", "JOB=1:3", "log/x.JOB.log",
                          "bash", "-c", script], cwd=tmp_path, env=quick_env(), capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert lines[0] == "run.pl: 3 task(s), logs log/x.*.log"
    progress = [line for line in lines[1:] if line.startswith("run.pl: thing: ")]
    assert progress and all(line.endswith("; logs log/x.*.log") for line in progress), lines
    assert progress[-1].startswith("run.pl: thing: 12/12 (6.00/s, eta 0m00s), 3 of 3 tasks reporting")
    assert "99" not in res.stderr  # the old log of task 2 is not this run's


def test_stage5_step_shows_utterances_done_of_the_set_and_its_logs(tmp_path, tiny_data_dir):
    conf = tmp_path / "c.yaml"
    conf.write_text("exp: t\nanonymizer: {system: mcadams, seed: 3}\n")
    out = tmp_path / "anon"
    env = {**quick_env(), "VOXANON_EXP": str(tmp_path / "exp")}
    res = subprocess.run([str(ROOT / "steps" / "anonymize.sh"), "--nj", "2", str(conf), str(tiny_data_dir), str(out)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"run.pl: 2 task(s), logs {out}/log/anonymize.*.log" in res.stderr
    last = [line for line in res.stderr.splitlines() if line.startswith("run.pl: anonymize: ")][-1]
    assert last.startswith("run.pl: anonymize: 6/6 (") and "2 of 2 tasks reporting" in last
    assert last.endswith(f"; logs {out}/log/anonymize.*.log")
