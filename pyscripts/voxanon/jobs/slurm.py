"""utils/slurm.pl: run a command, or an array of tasks, as a Slurm job, and wait for it.

    slurm.pl [--max-jobs-run N] [--gpu N] [--mem X] [--num-threads N] [--time T] [--partition P] \\
        [--config conf/slurm.conf] [JOB=1:N] <log> <prog> [args ...]

Same convention and logs as run.pl. Submits one ``sbatch --array=1-N%M`` job (M = --max-jobs-run),
the options mapped to sbatch arguments through conf/slurm.conf; polls squeue until every task has
left the queue; each task's log holds the command, node, start, end and exit status. Exit status 0
when every task succeeded; otherwise 1, after naming every failed task's log on stderr (a task that
Slurm killed gets Slurm's own message and the sacct state appended to its log). Ctrl-C or SIGTERM
cancels the job. A GPU request that no usable node of the partition can satisfy fails before
submitting. Slurm's own files (job script, exit status, Slurm messages) go to ``<log dir>/q/``.
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
from voxanon.jobs.common import (OPTIONS, JobSpec, UsageError, job_name, parse_args, report_failures,
                                 write_task_script)

RUNNER = "slurm.pl"
DEFAULT_CONF = Path(__file__).resolve().parents[3] / "conf" / "slurm.conf"
STATUS_WAIT_S = 30  # how long a finished task's status file may lag behind squeue (NFS)
UNUSABLE_STATES = ("down", "drain", "drng", "fail", "maint", "unk", "inval", "futr", "npc", "boot")


class SlurmError(RuntimeError):
    """Slurm refused or could not run the job; the message says what to do."""


@dataclass(frozen=True)
class SlurmConf:
    """conf/slurm.conf: ``rules`` are (option, exact value or None, sbatch argument template)."""

    always: tuple[str, ...]
    defaults: dict[str, str]
    rules: tuple[tuple[str, str | None, str], ...]
    path: Path

    def sbatch_args(self, options: dict[str, str]) -> list[str]:
        """sbatch arguments for the caller's options (defaults filled in), in the conf's line order."""
        opts = {**self.defaults, **{k: v for k, v in options.items() if k not in ("config", "max-jobs-run")}}
        unmapped = [o for o in opts if not any(r[0] == o for r in self.rules)]
        if unmapped:
            raise UsageError(f"{self.path} has no line for option(s) {', '.join('--' + o for o in unmapped)}")
        args = list(self.always)
        done = set()
        for name, value, template in self.rules:
            if name in opts and name not in done and value in (None, opts[name]):
                done.add(name)
                args += shlex.split(template.replace("{}", opts[name]))
        return args


def read_conf(path: str | Path) -> SlurmConf:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"config {path} not found")
    always, defaults, rules = [], {}, []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, rest = line.partition(" ")
        rest = rest.strip()
        if key == "always":
            always += shlex.split(rest)
        elif key == "default":
            name, _, value = rest.partition(" ")
            if name not in _known() or not value.strip():
                raise UsageError(f"{path}:{lineno}: expected 'default <option> <value>', got {raw.strip()!r}")
            defaults[name] = value.strip()
        else:
            name, eq, value = key.partition("=")
            if name not in _known():
                raise UsageError(f"{path}:{lineno}: unknown option {name!r} (known: {', '.join(_known())})")
            rules.append((name, value if eq else None, rest))
    return SlurmConf(tuple(always), defaults, tuple(rules), path)


def _known() -> tuple[str, ...]:
    return tuple(o for o in OPTIONS if o not in ("config", "max-jobs-run"))


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


def submit(spec: JobSpec, sbatch_args: list[str], qdir: Path, name: str) -> tuple[str, Path]:
    """Write the task script, submit it; the Slurm job id and the status file template."""
    status = qdir / f"{name}.{spec.var}.rc" if spec.var else qdir / f"{name}.rc"
    script = write_task_script(spec, RUNNER, str(status))
    for task in spec.tasks:  # stale statuses from an earlier run would read as this run's
        Path(spec.for_task(str(status), task)).unlink(missing_ok=True)
    out = qdir / (f"{name}.%a.slurm" if spec.var else f"{name}.slurm")
    cmd = ["sbatch", "--parsable", f"--job-name={name}", f"--output={out}", *sbatch_args]
    if spec.var:
        throttle = spec.int_option("max-jobs-run")
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
        conf = read_conf(spec.options.get("config", DEFAULT_CONF))
        sbatch_args = conf.sbatch_args(spec.options)
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
    try:
        gpus = int(conf.defaults.get("gpu", 0)) if "gpu" not in spec.options else spec.int_option("gpu")
        if gpus:
            check_gpus(gpus, _partition(sbatch_args))
        job_id, status = submit(spec, sbatch_args, qdir, name)
        print(f"{RUNNER}: Slurm job {job_id}, {len(spec.tasks)} task(s), logs {spec.log}", file=sys.stderr)
        wait(job_id)
        failed = collect(spec, job_id, status, qdir, name)
    except SlurmError as err:
        print(f"{RUNNER}: {err}", file=sys.stderr)
        return 1
    if failed:
        print(report_failures(f"{RUNNER} (Slurm job {job_id})", spec, failed), file=sys.stderr)
        return 1
    return 0
