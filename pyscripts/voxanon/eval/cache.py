"""Evaluation caches keyed on the audio itself, not on the set name.

Every cached value (an embedding, a transcript, SER posteriors) is stored with the *stamp* of the
audio it came from: the resolved wav.scp entry and, for a file, its size and mtime. A value whose
stamp no longer matches (audio replaced under the same set name, a dir re-made) is recomputed.
``ArrayCache`` holds arrays in one ``.npz`` per set and model (written atomically);
``TextCache`` is an append-only JSON-lines file, so an interrupted run resumes.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from voxanon.audio import is_pipe
from voxanon.data.kaldi import DataDir, resolve_wav


def audio_stamp(data: DataDir, utt: str) -> str:
    entry = resolve_wav(data, utt)
    if is_pipe(entry):
        return entry
    path = Path(entry) if Path(entry).is_absolute() or data.path is None else data.path / entry
    try:
        st = path.stat()
    except OSError:
        return entry  # missing: loading it fails and names it
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


class ArrayCache:
    """{utt: array} in ``path`` (.npz), valid for one model ``tag`` and the audio stamps."""

    def __init__(self, path: Path, tag: str):
        self.path, self.tag = Path(path), tag

    def load(self, stamps: dict[str, str]) -> dict[str, np.ndarray]:
        if not self.path.is_file():
            return {}
        with np.load(self.path) as z:
            if str(z["__tag__"]) != self.tag:
                return {}
            saved = json.loads(str(z["__stamps__"]))
            return {u: z[u] for u in z.files if u in stamps and saved.get(u) == stamps[u]}

    def save(self, values: dict[str, np.ndarray], stamps: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, __tag__=np.array(self.tag), __stamps__=np.array(json.dumps({u: stamps[u] for u in values})),
                 **values)
        os.replace(tmp, self.path)


class TextCache:
    """{utt: text} appended to ``path`` (JSON lines with the audio stamp)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self, stamps: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by an interruption
                    continue
                if stamps.get(row["utt"]) == row["stamp"]:
                    out[row["utt"]] = row["text"]
        return out

    def append(self, texts: dict[str, str], stamps: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for utt, text in texts.items():
                f.write(json.dumps({"utt": utt, "stamp": stamps[utt], "text": text}) + "\n")
