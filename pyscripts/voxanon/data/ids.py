"""Utterance, speaker and set ids that are safe to use as file names.

Ids end up in paths (``<out>/wav/<utt>.wav``, per-speaker dirs, ``data/<set>``), so an id such as
``../../victim/orig`` could make a tool write, or count as finished, a file outside its output dir.
Every id is checked where data enters (the validator, every tool writing per-id files), and every
path built from one is checked again to lie inside the dir it was built under.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable


# Longest id in bytes: a file name holds 255, and the tools add a suffix (``.wav``) and, while
# writing atomically, a temp name around it (``.<id>.wav.<8 random>.tmp``).
MAX_ID_BYTES = 200


class UnsafeIdError(ValueError):
    """An id that cannot be used as a file name; the message names it and why."""


def id_problem(name: str) -> str | None:
    """Why ``name`` is not a safe id, or None when it is."""
    if not name:
        return "empty"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if ".." in name:
        return "contains '..'"
    if name == ".":
        return "is '.' (the dir itself)"
    if len(name.encode()) > MAX_ID_BYTES:
        return f"is {len(name.encode())} bytes long, more than the {MAX_ID_BYTES} a file name allows here"
    if name.startswith("-"):
        return "starts with '-' (would read as an option)"
    if not name.isprintable() or any(c.isspace() for c in name):
        return "contains whitespace or unprintable characters"
    return None


def id_problems(ids: Iterable[str], what: str) -> list[str]:
    """One line per unsafe id (at most 10, then a count), e.g. ``utterance id '../x': contains '..'``."""
    bad = [f"{what} id {i!r}: {p}" for i in dict.fromkeys(ids) if (p := id_problem(i))]
    return bad[:10] + ([f"... {len(bad) - 10} more unsafe {what} id(s)"] if len(bad) > 10 else [])


def check_id(name: str, what: str = "utterance") -> str:
    problem = id_problem(name)
    if problem:
        raise UnsafeIdError(f"{what} id {name!r} {problem}; rename it in the data dir (ids become file names)")
    return name


def child_path(base: str | Path, name: str, suffix: str = "", what: str = "utterance") -> Path:
    """``base/<name><suffix>`` for a checked id, verified to lie inside ``base`` (symlinks resolved)."""
    path = Path(base) / f"{check_id(name, what)}{suffix}"
    root = Path(base).resolve()
    if path.resolve().parent != root:
        raise UnsafeIdError(f"{path} would lie outside {root}; refusing to write there")
    return path
