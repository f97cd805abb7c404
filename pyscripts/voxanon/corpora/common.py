"""Shared pieces of corpus preparation: errors, text normalization, writing + validating a dir,
and comparing set sizes with the published ones."""
from __future__ import annotations

import logging
import re
from pathlib import Path

from voxanon.data.kaldi import DataDir, validate_data_dir, write_data_dir

log = logging.getLogger("voxanon.corpora")

AUDIO_SUFFIXES = (".wav", ".flac")


class CorpusError(ValueError):
    """A corpus is missing or not in the expected layout; the message names the path."""


def vpc_normalize(text: str) -> str:
    """VPC 2024 text normalization: , ! ? . become spaces, spaces squeezed, upper case."""
    return re.sub(r" +", " ", re.sub(r"[,!?.]", " ", text)).strip().upper()


def require_dir(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not str(path) or not path.is_dir():
        raise CorpusError(f"{what}: directory not found: {path or '(not set)'}")
    return path.resolve()


def finish(data: DataDir, out: Path, check_audio: bool = False) -> None:
    """Write ``data`` to ``out`` and validate it; a problem raises ``CorpusError``."""
    write_data_dir(data, out)
    problems = validate_data_dir(out, check_audio=check_audio)
    if problems:
        raise CorpusError(f"{out}: invalid after preparation:\n  " + "\n  ".join(problems))
    log.info("%s: %d utterances, %d speakers", out, len(data.utt2spk), len(set(data.utt2spk.values())))


def count_mismatches(name: str, got: dict[str, int], expected: dict[str, int], source: str = "VPC 2024") -> list[str]:
    """One line naming every count that differs from the published one, or nothing."""
    diffs = [f"{key} {got.get(key)} (published: {want})" for key, want in expected.items() if got.get(key) != want]
    return [f"{name}: {', '.join(diffs)} differ from {source} (fine for a subset)"] if diffs else []
