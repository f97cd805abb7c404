"""Kaldi's job-runner calling convention, shared by utils/run.pl and utils/slurm.pl.

    <runner> [--option value ...] [JOB=1:N] <log> <prog> [args ...]

``JOB=1:N`` runs an array of N tasks; every ``JOB`` in the log name and the arguments becomes the
task's index (any name works: ``TASK=1:4``; ``JOB=3`` runs task 3 only). Without it one task runs.
The command is run by ``bash -o pipefail -c``: an argument that is a shell operator on its own
(``"|"``, ``">"``, ``"2>&1"``, ``"&&"``, a redirection like ``">out.txt"``; write ``\\|`` or
``"|"`` in the caller) stays an operator, every other argument is quoted and reaches the program
as one word (``"<unk>"`` and ``"a | b"`` included).

Options are Kaldi's: any ``--name value`` (``--num-threads`` and ``--num_threads`` are the same
option), and ``-x value`` options meant for the queue (slurm.pl passes them to sbatch; run.pl
ignores them, as Kaldi's does).

Each task's log is Kaldi's: ``# <command>``, ``# Started at <date>``, ``# Running on <host>``
(with the Slurm job id), the output, ``# Accounting: time=<s> threads=<n>`` and
``# Ended (code <n>) at <date>, elapsed time <s> seconds``. Both runners produce it with the
same bash wrapper (:func:`task_script`), so local and Slurm logs look alike.
"""
from __future__ import annotations

import ctypes
import os
import re
import shlex
import signal
from dataclasses import dataclass, field
from pathlib import Path

from voxanon.fileio import atomic_write_text

# Options whose value must be a number (gpu may be 0); names as Kaldi's conf files spell them.
INT_OPTIONS = ("max_jobs_run", "gpu", "num_threads")

_SPEC = re.compile(r"^([A-Za-z_]\w*)=(\d+)(?::(\d+))?$")
# A shell operator, or a redirection with its target attached ("2>&1", ">out.txt", "2>/dev/null").
_OPERATOR = re.compile(r"^(\|\|?|\|&|&&|;|&|(\d*|&)(>>?|<)(&\d+|&-|[^\s'\"<>|;&]*))$")


class UsageError(ValueError):
    """The runner was called wrongly; the message says how."""


@dataclass(frozen=True)
class JobSpec:
    """One runner call. ``var`` is None for a single task; tasks are ``first..last`` inclusive."""

    log: str
    command: tuple[str, ...]
    options: dict[str, str] = field(default_factory=dict)  # --num-threads 4 -> {"num_threads": "4"}
    queue_args: tuple[str, ...] = ()  # "-x value" options for the queue's own submit command
    var: str | None = None
    first: int = 1
    last: int = 1

    @property
    def tasks(self) -> list[int | None]:
        return list(range(self.first, self.last + 1)) if self.var else [None]

    def for_task(self, template: str, task: int | None) -> str:
        """``template`` (a log or file name) with the variable replaced by the task's index."""
        return template if task is None else template.replace(self.var, str(task))

    def log_of(self, task: int | None) -> str:
        return self.for_task(self.log, task)

    def int_option(self, name: str, default: int | None = None) -> int | None:
        return int(self.options[name]) if name in self.options else default


def parse_args(argv: list[str]) -> JobSpec:
    """``[--opt value ...] [VAR=a:b] <log> <prog> [args]`` to a :class:`JobSpec`."""
    options: dict[str, str] = {}
    queue_args: list[str] = []
    args = list(argv)
    while len(args) >= 2 and args[0].startswith("-"):
        switch, value = args.pop(0), args.pop(0)
        if not switch.startswith("--"):
            queue_args += [switch, value]
            continue
        name = switch[2:].replace("-", "_")
        if name in INT_OPTIONS and not (value.isdigit() and (name == "gpu" or int(value) > 0)):
            raise UsageError(f"{switch} takes a {'non-negative' if name == 'gpu' else 'positive'} integer, got {value!r}")
        options[name] = value
    var, first, last = None, 1, 1
    m = _SPEC.match(args[0]) if args else None
    if m:
        args.pop(0)
        var, first = m.group(1), int(m.group(2))
        last = int(m.group(3)) if m.group(3) is not None else first
        if last < first:
            raise UsageError(f"empty task range {m.group(0)}")
        if first <= 0:  # Kaldi's rule (GridEngine and Slurm arrays start at 1)
            raise UsageError(f"invalid task range {m.group(0)}: start must be strictly positive")
    if len(args) < 2:
        raise UsageError("expected a log file and a command")
    log, command = args[0], tuple(args[1:])
    if var and var not in log and last > first:
        raise UsageError(f"{last - first + 1} tasks would share one log {log}: put {var} in the log name")
    return JobSpec(log, command, options, tuple(queue_args), var, first, last)


def shell_join(args: tuple[str, ...]) -> str:
    """The command line for bash: shell operators stay operators, everything else is quoted."""
    return " ".join(a if _OPERATOR.match(a) else shlex.quote(a) for a in args)


def task_script(spec: JobSpec, runner: str, status: str = "", threads: int = 1) -> str:
    """A bash script running one task; the task index is ``$1`` or ``$SLURM_ARRAY_TASK_ID``.

    It writes the log (command, start, host, output, end, exit status), exits with the command's
    status and, when ``status`` (a path template like the log's) is given, also writes the status
    there, atomically, for a runner that cannot see the exit code itself.
    """
    var = spec.var or "JOB"
    sub = (lambda name: f'{name}=${{{name}//{var}/$task}}') if spec.var else (lambda name: ":")
    return f"""#!/usr/bin/env bash
# Written by {runner}: one task of {spec.log}
task=${{1:-${{SLURM_ARRAY_TASK_ID:-}}}}
log={shlex.quote(spec.log)}
cmd={shlex.quote(shell_join(spec.command))}
status={shlex.quote(status)}
{sub('log')}; {sub('cmd')}; {sub('status')}
mkdir -p "$(dirname "$log")" || exit 1
slurm_id=${{SLURM_ARRAY_JOB_ID:+${{SLURM_ARRAY_JOB_ID}}_$SLURM_ARRAY_TASK_ID}}
slurm_id=${{slurm_id:-${{SLURM_JOB_ID:-}}}}
start=$(date +%s)
{{
  printf '# %s\\n' "$cmd"
  echo "# Started at $(date)"
  echo "# Running on $(hostname)${{slurm_id:+ (Slurm job $slurm_id)}}"
}} > "$log" || exit 1
bash -o pipefail -c "$cmd" >> "$log" 2>&1 < /dev/null
rc=$?
elapsed=$(( $(date +%s) - start ))
{{
  echo "# Accounting: time=$elapsed threads={threads}"
  echo "# Ended (code $rc) at $(date), elapsed time $elapsed seconds"
}} >> "$log"
if [ -n "$status" ]; then
  echo "$rc" > "$status.tmp" && mv -f "$status.tmp" "$status"
fi
exit $rc
"""


def job_name(spec: JobSpec) -> str:
    """A name from the log's: exp/x/log/anonymize.JOB.log -> anonymize."""
    name = re.sub(r"\.log$", "", Path(spec.log).name)
    return (name.replace(spec.var, "").replace("..", ".").strip(".") if spec.var else name) or "job"


def write_task_script(spec: JobSpec, runner: str, status: str = "") -> Path:
    """:func:`task_script` saved as ``<log dir>/q/<name>.sh`` (kept: it shows exactly what ran)."""
    path = Path(spec.log).parent / "q" / f"{job_name(spec)}.sh"
    atomic_write_text(path, task_script(spec, runner, status, spec.int_option("num_threads", 1)))
    return path


def end_with_parent() -> None:
    """Have the kernel send us SIGTERM when our parent dies (Linux prctl PR_SET_PDEATHSIG): a
    script killed with TERM or HUP while it waits for the runner thus ends the runner's jobs too."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: only signals sent to the runner itself stop its jobs
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def report_failures(runner: str, spec: JobSpec, failed: list[tuple[int | None, str]]) -> str:
    """One line per failed task, naming its log and why, for the caller's stderr."""
    n = len(spec.tasks)
    head = f"{runner}: {len(failed)} of {n} tasks failed:" if spec.var else f"{runner}: the job failed:"
    return "\n".join([head] + [f"  {spec.log_of(t)} ({why})" for t, why in failed])
