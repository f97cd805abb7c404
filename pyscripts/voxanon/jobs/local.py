"""utils/run.pl: run a command, or an array of tasks, on this machine.

    run.pl [--max-jobs-run N] [--num-threads N] [--gpu N] [--mem X] [--any-option V] [-q V] \\
        [JOB=1:N] <log> <prog> [args ...]

Array tasks run in parallel, at most ``--max-jobs-run`` at a time (default: the number of CPU
cores). Other options (``--gpu --mem --time ...``, ``-q all.q``) are accepted and ignored, as by
Kaldi's run.pl, so that cmd.sh can switch between run.pl and slurm.pl without touching the
recipe. Each task's OMP/MKL threads are ``--num-threads``, by default the cores divided among the tasks running at once. Exit status 0 when
every task succeeded; otherwise 1, after naming every failed task's log on stderr. SIGINT,
SIGTERM or SIGHUP to run.pl, or the death of its parent (a script killed while it waits),
stops the running tasks. The tasks inherit the file descriptors run.pl was given (a caller's lock
fd included: killed with -9, run.pl leaves tasks that still hold it). The task script that ran is kept in ``<log dir>/q/<name>.sh``.
While the tasks run, their progress is printed on stderr, aggregated over the tasks
(voxanon.jobs.monitor).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from voxanon.jobs import common
from voxanon.jobs.common import UsageError, end_with_parent, parse_args, report_failures, write_task_script
from voxanon.jobs.monitor import Monitor

RUNNER = "run.pl"


def task_env(spec, max_jobs: int) -> dict[str, str]:
    """The tasks' environment: unless the user set them, math-library threads per task =
    ``--num-threads``, else the cores shared among the tasks running at once. Torch's default
    (every core in every task) oversubscribes the machine and slows small ops many times over."""
    env = dict(os.environ)
    concurrent = max(1, min(max_jobs, len(spec.tasks)))
    threads = spec.int_option("num_threads", max(1, (os.cpu_count() or 1) // concurrent))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, str(threads))
    return env


def run_tasks(spec, max_jobs: int) -> list[tuple[int | None, str]]:
    """Run every task of ``spec``, ``max_jobs`` at a time; the failed ones with their exit status."""
    script = str(write_task_script(spec, RUNNER))
    env = task_env(spec, max_jobs)
    running: set[subprocess.Popen] = set()
    lock = threading.Lock()
    stopping = threading.Event()

    def one(task):
        if stopping.is_set():
            return task, None
        # Own session: a signal to run.pl reaches the whole task tree through killpg below.
        # close_fds=False: the tasks inherit what the caller passed to run.pl (Kaldi's run.pl does
        # too), a step's lock fd included, so the lock holds while a task runs even if run.pl is
        # killed with -9 (Python's own fds are not inheritable and stay out).
        proc = subprocess.Popen(["bash", script, "" if task is None else str(task)],
                                start_new_session=True, env=env, close_fds=False)
        with lock:
            running.add(proc)
        rc = proc.wait()
        with lock:
            running.discard(proc)
        return task, rc

    def stop(signum, _frame):
        stopping.set()
        with lock:
            for proc in running:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        print(f"{RUNNER}: interrupted (signal {signum}); stopped the running tasks", file=sys.stderr)
        sys.exit(128 + signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    end_with_parent()
    try:
        with Monitor(RUNNER, spec) as monitor, ThreadPoolExecutor(max_workers=max_jobs) as pool:
            if spec.var:
                print(f"{RUNNER}: {len(spec.tasks)} task(s), logs {monitor.logs}", file=sys.stderr)
            results = list(pool.map(one, spec.tasks))
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return [(t, f"exit status {rc}") for t, rc in results if rc]


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__ + "\n" + common.__doc__, file=sys.stderr)
        return 0 if argv else 1
    try:
        spec = parse_args(argv)
    except UsageError as err:
        print(f"{RUNNER}: {err}\n{__doc__}", file=sys.stderr)
        return 1
    max_jobs = spec.int_option("max_jobs_run", os.cpu_count() or 1)
    failed = run_tasks(spec, max_jobs)
    if failed:
        print(report_failures(RUNNER, spec, failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
