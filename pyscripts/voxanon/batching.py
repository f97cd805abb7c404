"""Batches that shrink when the GPU runs out of memory: shared by WavLM extraction and vocoding."""
from __future__ import annotations

import logging
from typing import Callable, Iterator, TypeVar

log = logging.getLogger("voxanon")
T = TypeVar("T")
R = TypeVar("R")


def run_halving(groups: list[list[T]], run: Callable[[list[T]], R],
                too_big: Callable[[T], bool] | None = None) -> Iterator[tuple[list[T], R]]:
    """``(group, run(group))`` for every group. A group of several items that runs out of CUDA
    memory is split in halves, which run in its place; a single item that does not fit goes to
    ``too_big`` (True: the caller deals with it, e.g. in smaller chunks), else the error is raised."""
    import torch

    queue = list(groups)
    while queue:
        group = queue.pop()
        try:
            result = run(group)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(group) > 1:
                log.warning("GPU out of memory on a batch of %d; splitting it", len(group))
                queue += [group[: len(group) // 2], group[len(group) // 2:]]
            elif too_big is None or not too_big(group[0]):
                raise
            continue
        yield group, result
