"""Progress lines for long jobs, written to the job's log (stderr) at a bounded rate."""
from __future__ import annotations

import logging
import sys
import time


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", force=True)


class Progress:
    """``Progress(total, "anonymize")``; call ``step()`` per item; logs done/total, rate and ETA."""

    def __init__(self, total: int, what: str, every_s: float = 10.0, log: logging.Logger | None = None):
        self.total, self.what, self.every_s = total, what, every_s
        self.log = log or logging.getLogger("voxanon")
        self.done = 0
        self.start = self.last = time.monotonic()

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            self.log.info("%s: %d/%d (%.2f/s, eta %s)", self.what, self.done, self.total, rate, fmt_duration(eta))


def fmt_duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
