"""Entry points (``python -m voxanon.bin.<tool>``): each parses its arguments and calls the library."""
from __future__ import annotations

import logging
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
