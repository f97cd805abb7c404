"""utils/slurm.pl: run a command, or an array of tasks, as a Slurm job, and wait for it.

    slurm.pl [--config conf/slurm.conf] [--max-jobs-run N] [--num-threads N] [--gpu N] [--mem X]
        [--any-option V] [-x V] [JOB=1:N] <log> <prog> [args ...]

Kaldi's calling convention and logs, as run.pl. Submits one ``sbatch --array=1-N%M`` job (M =
--max-jobs-run); the options become sbatch arguments through a Kaldi/ESPnet slurm.conf (--config,
else ./conf/slurm.conf, else a built-in default: ``--mem`` per CPU as in Kaldi, ``--mem 0`` asks
for nothing); an option the conf does not describe is an error; ``-x V`` options go to sbatch as
they are. Polls squeue until every task has left the queue. Exit status 0 when every task
succeeded; otherwise 1, after naming every failed task's log on stderr (a task that Slurm killed
gets Slurm's own message and the sacct state appended to its log). SIGINT, SIGTERM or SIGHUP, or
the death of its parent, cancels the job. A GPU request that no usable node of the partition can
satisfy fails before submitting. Slurm's own files (job script, exit status, Slurm messages) go
to ``<log dir>/q/``. While the job runs, its progress is printed on stderr, aggregated over the
tasks (voxanon.jobs.monitor).
"""
from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from voxanon.jobs import common
from voxanon.jobs.common import (JobSpec, UsageError, end_with_parent, job_name, parse_args, report_failures,
                                 write_task_script)
from voxanon.jobs.monitor import Monitor

RUNNER = "slurm.pl"
STATUS_WAIT_S = 30  # how long a finished task's status file may lag behind squeue (NFS)
UNUSABLE_STATES = ("down", "drain", "drng", "fail", "maint", "unk", "inval", "futr", "npc", "boot")


class SlurmError(RuntimeError):
    """Slurm refused or could not run the job; the message says what to do."""


# Used when neither --config nor ./conf/slurm.conf exists (Kaldi's slurm.pl has one built in too).
DEFAULT_CONF = """\
command sbatch
option time=* --time $0
option mem=* --mem-per-cpu $0
option mem=0
option num_threads=* --cpus-per-task $0
option num_threads=1 --cpus-per-task 1
default gpu=0
option gpu=0
option gpu=* --gres=gpu:$0
"""


@dataclass(frozen=True)
class SlurmConf:
    """A Kaldi/ESPnet conf/slurm.conf: ``command <submit command>``, ``option <name>=* <args with
    $0>``, ``option <name>=<value> [<args>]`` (wins over ``=*`` for that value), ``default
    <name>=<value>``; ``#`` starts a comment."""

    command: tuple[str, ...]
    defaults: dict[str, str]
    any_value: dict[str, str]
    exact: dict[tuple[str, str], str]
    source: str

    def options(self, given: dict[str, str]) -> dict[str, str]:
        """The caller's options with the conf's defaults filled in."""
        return {**self.defaults, **{k: v for k, v in given.items() if k not in ("config", "max_jobs_run")}}

    def sbatch_args(self, given: dict[str, str]) -> list[str]:
        """Submit arguments for the caller's options, in the order given (defaults first)."""
        args = []
        for name, value in self.options(given).items():
            if (name, value) in self.exact:
                args += shlex.split(self.exact[(name, value)])
            elif name in self.any_value:
                args += shlex.split(self.any_value[name].replace("$0", value))
            else:
                raise UsageError(f"option --{name.replace('_', '-')} {value} is not described in {self.source} "
                                 f"(add 'option {name}=* ...' or 'option {name}={value} ...')")
        return args


def read_conf(path: str | Path | None) -> SlurmConf:
    """The conf at ``path``; None: ./conf/slurm.conf when it exists, else :data:`DEFAULT_CONF`."""
    if path is None:
        path = Path("conf/slurm.conf") if Path("conf/slurm.conf").is_file() else None
    elif not Path(path).is_file():
        raise UsageError(f"config {path} not found")
    text, source = (Path(path).read_text(encoding="utf-8"), str(path)) if path else (DEFAULT_CONF, "the default config")
    command, defaults, any_value, exact = None, {}, {}, {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"\s*#.*", "", raw)
        if not line:
            continue
        if m := re.match(r"command (.+)", line):
            command = tuple(shlex.split(m.group(1)))
        elif m := re.match(r"option ([^=]+)=(\S+)\s?(.*)$", line):
            name, value, args = m.groups()
            if value == "*":
                any_value[name] = args
            else:
                exact[(name, value)] = args
        elif m := re.match(r"default (\S+)=(\S+)", line):
            defaults[m.group(1)] = m.group(2)
        else:
            raise UsageError(f"{source}:{lineno}: unable to parse line {raw.strip()!r}")
    if not command:
        raise UsageError(f"{source} has no 'command sbatch ...' line")
    return SlurmConf(command, defaults, any_value, exact, source)


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise SlurmError(f"{cmd[0]} not found: is this a Slurm cluster (slurm-client installed)?") from None


def _partition(args: list[str]) -> str | None:
    """The partition the sbatch arguments ask for (the last one wins, as in sbatch)."""
    part = None
    for i, a in enumerate(args):
        if a.startswith("--partition="):
            part = a.split("=", 1)[1]
        elif a in ("-p", "--partition") and i + 1 < len(args):
            part = args[i + 1]
    return part


def _gpu_count(gres: str) -> int:
    """GPUs in a sinfo %G field: ``gpu:2``, ``gpu:a100:4(S:0-1)``, ``gpu:1,shard:8``, ``(null)``."""
    n = 0
    for item in re.sub(r"\([^)]*\)", "", gres).split(","):
        parts = item.split(":")
        if parts[0] == "gpu" and parts[-1].isdigit():
            n += int(parts[-1])
    return n


def check_gpus(n: int, partition: str | None) -> None:
    """Fail now, rather than pend forever, when no usable node of the partition has ``n`` GPUs."""
    res = _run(["sinfo", "-h", "-N", "-o", "%N|%P|%G|%t"])
    if res.returncode != 0:
        raise SlurmError(f"sinfo failed: {res.stderr.strip()}")
    nodes = []
    for line in res.stdout.splitlines():
        node, part, gres, state = line.split("|")
        if (part.rstrip("*") == partition) if partition else part.endswith("*"):
            nodes.append((node, _gpu_count(gres), state))
    where = f"partition {partition}" if partition else "the default partition"
    if not nodes:
        raise SlurmError(f"{where} has no nodes (sinfo)")
    if not any(g >= n and not state.rstrip("*~#!%$@^-").startswith(UNUSABLE_STATES) for _, g, state in nodes):
        seen = ", ".join(f"{node}: {g} GPU(s), {state}" for node, g, state in nodes)
        raise SlurmError(
            f"--gpu {n} cannot be satisfied: no usable node in {where} has {n} GPU(s) ({seen}). "
            "Point the gpu line of conf/slurm.conf at a GPU partition, or use run.pl for this command.")


def submit(spec: JobSpec, command: tuple[str, ...], sbatch_args: list[str], qdir: Path, name: str) -> tuple[str, Path]:
    """Write the task script, submit it; the Slurm job id and the status file template."""
    status = qdir / f"{name}.{spec.var}.rc" if spec.var else qdir / f"{name}.rc"
    script = write_task_script(spec, RUNNER, str(status))
    for task in spec.tasks:  # stale statuses from an earlier run would read as this run's
        Path(spec.for_task(str(status), task)).unlink(missing_ok=True)
    out = qdir / (f"{name}.%a.slurm" if spec.var else f"{name}.slurm")
    cmd = [*command, "--parsable", f"--job-name={name}", f"--output={out}", *sbatch_args]
    if spec.var:
        throttle = spec.int_option("max_jobs_run")
        cmd.append(f"--array={spec.first}-{spec.last}" + (f"%{throttle}" if throttle else ""))
    cmd.append(str(script))
    res = _run(cmd)
    if res.returncode != 0:
        raise SlurmError(f"sbatch refused the job: {res.stderr.strip()}\n  command: {shlex.join(cmd)}")
    return res.stdout.strip().split(";")[0], status


def wait(job_id: str) -> None:
    """Poll squeue until no task of the job is pending, running or completing."""
    delay, failures = 0.5, 0
    while True:
        res = _run(["squeue", "-h", "-j", job_id, "-o", "%T"])
        if res.returncode == 0 and not res.stdout.strip():
            return
        if res.returncode != 0:
            if "Invalid job id" in res.stderr:  # already purged from slurmctld's memory
                return
            failures += 1
            if failures >= 10:
                raise SlurmError(f"squeue keeps failing for job {job_id}: {res.stderr.strip()}")
            print(f"{RUNNER}: squeue failed ({res.stderr.strip()}); retrying", file=sys.stderr)
        time.sleep(delay)
        delay = min(delay * 1.5, 10.0)


def sacct_states(job_id: str) -> dict[str, str]:
    """Task id ('' for a plain job) -> 'STATE exit X:Y on NODE' from sacct, when accounting works."""
    res = _run(["sacct", "-X", "-n", "-P", "-j", job_id, "-o", "JobID,State,ExitCode,NodeList"])
    states = {}
    if res.returncode == 0:
        for line in res.stdout.splitlines():
            jid, state, code, node = line.split("|")
            states[jid.partition("_")[2]] = f"{state} exit {code} on {node}"
    return states


def collect(spec: JobSpec, job_id: str, status: Path, qdir: Path, name: str) -> list[tuple[int | None, str]]:
    """Exit status of every task; a task without one gets Slurm's view appended to its log."""
    def status_of(task):
        return Path(spec.for_task(str(status), task))

    deadline = time.time() + STATUS_WAIT_S
    while time.time() < deadline and not all(status_of(t).exists() for t in spec.tasks):
        time.sleep(1)
    failed, states = [], None
    for task in spec.tasks:
        slurm_out = qdir / (f"{name}.{task}.slurm" if spec.var else f"{name}.slurm")
        if status_of(task).exists():
            rc = int(status_of(task).read_text().strip() or 1)
            if rc:
                failed.append((task, f"exit status {rc}"))
        else:
            states = sacct_states(job_id) if states is None else states
            state = states.get("" if task is None else str(task), "no sacct record")
            note = slurm_out.read_text(errors="replace").strip() if slurm_out.exists() else ""
            with open(spec.log_of(task), "a", encoding="utf-8") as log:
                log.write(f"# {RUNNER}: no exit status from the task; Slurm job {job_id}: {state}\n")
                if note:
                    log.write("".join(f"# slurm: {line}\n" for line in note.splitlines()))
            failed.append((task, f"no exit status; sacct: {state}"))
        if slurm_out.exists() and slurm_out.stat().st_size == 0:
            slurm_out.unlink()
    return failed


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__ + "\n" + common.__doc__, file=sys.stderr)
        return 0 if argv else 1
    try:
        spec = parse_args(argv)
        conf = read_conf(spec.options.get("config"))
        sbatch_args = conf.sbatch_args(spec.options) + list(spec.queue_args)
    except UsageError as err:
        print(f"{RUNNER}: {err}\n{__doc__}", file=sys.stderr)
        return 1
    qdir, name = Path(spec.log).parent / "q", job_name(spec)
    job_id = None

    def cancel(signum, _frame):
        done = "nothing submitted yet"
        if job_id:
            subprocess.run(["scancel", job_id])
            done = f"cancelled Slurm job {job_id}"
        print(f"{RUNNER}: interrupted (signal {signum}); {done}", file=sys.stderr)
        sys.exit(128 + signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, cancel)
    end_with_parent()
    try:
        gpus = int(conf.options(spec.options).get("gpu", 0))
        if gpus:
            check_gpus(gpus, _partition([*conf.command, *sbatch_args]))
        with Monitor(RUNNER, spec) as monitor:
            job_id, status = submit(spec, conf.command, sbatch_args, qdir, name)
            print(f"{RUNNER}: Slurm job {job_id}, {len(spec.tasks)} task(s), logs {monitor.logs}", file=sys.stderr)
            wait(job_id)
        failed = collect(spec, job_id, status, qdir, name)
    except SlurmError as err:
        print(f"{RUNNER}: {err}", file=sys.stderr)
        return 1
    if failed:
        print(report_failures(f"{RUNNER} (Slurm job {job_id})", spec, failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
