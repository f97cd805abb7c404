"""A step's progress aggregated over its tasks, read from their logs while the runner waits.

The tasks log progress lines (voxanon.progress: ``... INFO voxanon: anonymize job 3: 40/120
(1.50/s, eta 0m53s)``). While its tasks run, run.pl / slurm.pl read the newest such line of every
task's log every ``$VOXANON_PROGRESS_S`` seconds (default 10; 0: never) and, when it changed,
print one line on stderr::

    run.pl: anonymize: 120/400 (3.10/s, eta 1m30s), 4 of 4 tasks reporting; logs data/x/log/anonymize.*.log

done / total summed over the tasks (the task number dropped from the name: ``anonymize job 3``
counts as ``anonymize``), the rate summed over the tasks still at work, the eta of the slowest of
them. A task counts once its log has been rewritten by this run and holds a progress line; tasks
still loading models or waiting in the queue do not count yet ("2 of 4 tasks reporting"). A final
line is printed when the tasks have ended.
"""
from __future__ import annotations

import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from voxanon.jobs.common import JobSpec
from voxanon.progress import fmt_duration

EVERY_S = float(os.environ.get("VOXANON_PROGRESS_S", "10"))
# The message of a voxanon.progress line, after the logging prefix "<time> <LEVEL> <logger>: ".
_LINE = re.compile(r" [A-Z]+ \S+: (?P<what>.+): (?P<done>\d+)/(?P<total>\d+) \((?P<rate>[\d.]+)/s, eta [^)]*\)$")
_TASK = re.compile(r"\s*\bjob \d+\b")


@dataclass(frozen=True)
class TaskProgress:
    what: str
    done: int
    total: int
    rate: float  # items per second

    @property
    def eta_s(self) -> float:
        left = self.total - self.done
        return 0.0 if left <= 0 else left / self.rate if self.rate > 0 else float("inf")


def parse_line(line: str) -> TaskProgress | None:
    """A voxanon.progress line as a TaskProgress (the task number dropped from its name); None otherwise."""
    m = _LINE.search(line.rstrip("\n"))
    if not m:
        return None
    return TaskProgress(_TASK.sub("", m["what"]), int(m["done"]), int(m["total"]), float(m["rate"]))


def summary(latest: list[TaskProgress], n_tasks: int) -> str:
    """One line for the newest progress of each reporting task, grouped by what they do."""
    parts = []
    for what in dict.fromkeys(p.what for p in latest):
        group = [p for p in latest if p.what == what]
        busy = [p for p in group if p.done < p.total] or group
        eta = max(p.eta_s for p in busy)
        parts.append(f"{what}: {sum(p.done for p in group)}/{sum(p.total for p in group)} "
                     f"({sum(p.rate for p in busy):.2f}/s, eta {fmt_duration(eta)})")
    return "; ".join(parts) + (f", {len(latest)} of {n_tasks} tasks reporting" if n_tasks > 1 else "")


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class LogReader:
    """The newest progress line of one task's log, read incrementally. The log as it was when
    the runner started is the previous run's: it is read only once it has been written again."""

    def __init__(self, path: Path):
        self.path, self.old = path, _stamp(path)
        self.offset, self.latest = 0, None

    def poll(self) -> TaskProgress | None:
        stamp = _stamp(self.path)
        if stamp is None or stamp == self.old:
            return self.latest
        self.old = None
        if stamp[1] < self.offset:  # rewritten: the task started (again)
            self.offset, self.latest = 0, None
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return self.latest
        complete = chunk[:chunk.rfind(b"\n") + 1]  # a line being written is read next time
        self.offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            self.latest = parse_line(line) or self.latest
        return self.latest


class Monitor:
    """``with Monitor("run.pl", spec): <wait for the tasks>`` prints the aggregated progress."""

    def __init__(self, runner: str, spec: JobSpec, every_s: float = EVERY_S):
        self.runner, self.every_s = runner, every_s
        self.logs = spec.log.replace(spec.var, "*") if spec.var else spec.log
        self.readers = [LogReader(Path(spec.log_of(t))) for t in spec.tasks]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.printed = ""

    def line(self) -> str:
        latest = [p for p in (r.poll() for r in self.readers) if p is not None]
        return f"{summary(latest, len(self.readers))}; logs {self.logs}" if latest else ""

    def _print(self) -> None:
        line = self.line()
        if line and line != self.printed:
            print(f"{self.runner}: {line}", file=sys.stderr, flush=True)
            self.printed = line

    def _run(self) -> None:
        while not self.stop.wait(self.every_s):
            self._print()

    def __enter__(self) -> Monitor:
        if self.every_s > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.thread.is_alive():
            self.stop.set()
            self.thread.join()
            if exc[0] is None:
                self._print()
