"""Entry points (``python -m voxanon.bin.<tool>``): each parses its arguments and calls the library."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from voxanon.progress import setup_logging


def exit_code(run: Callable[[], int], logger: str = "voxanon",
              errors: tuple[type[BaseException], ...] = (ValueError, OSError)) -> int:
    """``run()``'s status, with logging set up; an expected error (bad conf or input, a file
    problem, a missing model) becomes one line logged by ``logger`` and status 2, never a traceback."""
    setup_logging()
    try:
        return run()
    except errors as err:
        logging.getLogger(logger).error("%s", err)
        return 2


class KaldiParser(argparse.ArgumentParser):
    """The parser of a Kaldi data-dir tool: a usage error exits 1 (Kaldi's status), not argparse's 2."""

    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(1)


def kaldi_tool(prog: str, run: Callable[[], int]) -> int:
    """``run()``'s status; a data-dir or file error is one line on stderr naming the tool, status 1."""
    from voxanon.data.kaldi import DataDirError

    try:
        return run()
    except (DataDirError, OSError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 1
